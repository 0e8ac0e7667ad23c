import {
  AGENT_SERVICE_NAME,
  CLUSTER_EVENT_NODE,
  EVENTS_STREAM,
  EVENTS_SUBJECT_PREFIX,
  inboxPrefixOf,
  KV_NODES,
  KV_PLACEMENTS,
  OPERATOR_SUBJECT_PREFIX,
  READ_SUBJECT_PREFIX,
  SCHED_SUBJECT_PREFIX,
  SUBJECT_ROOT,
  USAGE_STREAM,
  usageSubject,
} from '@allot/protocol';
import { NodeIdSchema, TenantIdSchema } from '@allot/core';

/**
 * The roles of a secured deployment and what each may publish and subscribe to on NATS (docs/security.md, "Roles").
 * Identity lives in the subject: an agent serves and publishes only under its node id, a scheduler sends only under
 * its tenant id, and every identity reads replies only on its own inbox, `_INBOX_<its public key>`.
 */
export const ROLES = ['agent', 'coordinator', 'scheduler', 'operator', 'reader', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** One identity: a role, the name it acts as (node id, tenant id, or a label) and its nkey public key. */
export interface Identity {
  readonly role: Role;
  readonly name: string;
  readonly publicKey: string;
}

/** Subjects allowed, as nats-server's `permissions` block takes them. */
export interface Permissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** Publish denials that narrow a broad allow (`$JS.API.>` minus stream administration). */
  readonly publishDeny?: readonly string[];
  /** Services answer on the requester's reply subject, once per request received. */
  readonly allowResponses: boolean;
}

/** Names an identity may have: node and tenant ids for agents and schedulers, the same characters for the others. */
export function checkName(role: Role, name: string): string | undefined {
  const schema = role === 'scheduler' ? TenantIdSchema : NodeIdSchema;
  if (!schema.safeParse(name).success)
    return `"${name}" is not a valid ${role === 'scheduler' ? 'tenant' : role === 'agent' ? 'node' : role} name (letters, digits, "_" and "-")`;
  // The coordinators publish the cluster's own events as node `cluster`: no agent may take that name.
  if (role === 'agent' && name === CLUSTER_EVENT_NODE) return `"${CLUSTER_EVENT_NODE}" is reserved for the coordinators' events`;
  return undefined;
}

const JS = '$JS.API';
/** Micro-service discovery ($SRV.PING/INFO/STATS) for a service of this name. */
const serviceDiscovery = (service: string) => ['$SRV.PING', '$SRV.INFO', '$SRV.STATS', `$SRV.*.${service}`, `$SRV.*.${service}.>`];
/** Read access to a stream: its info, and consumers on it (ephemeral or durable), their messages and acks. */
const streamReader = (stream: string) => [
  `${JS}.STREAM.INFO.${stream}`,
  `${JS}.CONSUMER.*.${stream}`,
  `${JS}.CONSUMER.*.${stream}.>`,
  `${JS}.CONSUMER.MSG.NEXT.${stream}.>`,
];

/** The coordinators' shared durable consumer of the events stream (apps/coordinator/src/quota-events.ts). */
const QUOTA_EVENTS_DURABLE = 'allot-quota-events';
/** Readers may consume the streams, but never touch (delete, steal messages from) the coordinators' durable. */
const keepOffTheDurable = [
  `${JS}.CONSUMER.*.${EVENTS_STREAM}.${QUOTA_EVENTS_DURABLE}`,
  `${JS}.CONSUMER.*.${EVENTS_STREAM}.${QUOTA_EVENTS_DURABLE}.>`,
  `${JS}.CONSUMER.MSG.NEXT.${EVENTS_STREAM}.${QUOTA_EVENTS_DURABLE}`,
  `${JS}.CONSUMER.DURABLE.CREATE.${EVENTS_STREAM}.${QUOTA_EVENTS_DURABLE}`,
];

/** The permissions of one identity. */
export function permissionsOf(identity: Identity): Permissions {
  const inbox = `${inboxPrefixOf(identity.publicKey)}.>`;
  const n = identity.name;
  switch (identity.role) {
    case 'agent':
      return {
        publish: [
          usageSubject(n),
          `${EVENTS_SUBJECT_PREFIX}.${n}.>`,
          // Its own node lease, and reading it back; the buckets and streams exist (made by `allot security setup`).
          `$KV.${KV_NODES}.${n}`,
          `${JS}.DIRECT.GET.KV_${KV_NODES}.$KV.${KV_NODES}.${n}`,
          `${JS}.STREAM.MSG.GET.KV_${KV_NODES}`,
          `${JS}.STREAM.INFO.KV_${KV_NODES}`,
          `${JS}.STREAM.INFO.${USAGE_STREAM}`,
          `${JS}.STREAM.INFO.${EVENTS_STREAM}`,
          `${JS}.INFO`,
        ],
        subscribe: [`${SUBJECT_ROOT}.agent.${n}.>`, inbox, ...serviceDiscovery(AGENT_SERVICE_NAME)],
        allowResponses: true,
      };
    case 'coordinator':
      return {
        publish: [
          `${SUBJECT_ROOT}.agent.>`,
          `${EVENTS_SUBJECT_PREFIX}.${CLUSTER_EVENT_NODE}.>`,
          `$KV.${KV_PLACEMENTS}.>`,
          `${JS}.>`,
          '$JS.ACK.>',
          '$JS.FC.>',
        ],
        // Streams and buckets are made at deploy time, with administrative credentials.
        publishDeny: [
          `${JS}.STREAM.CREATE.>`,
          `${JS}.STREAM.UPDATE.>`,
          `${JS}.STREAM.DELETE.>`,
          `${JS}.STREAM.PURGE.>`,
          `${JS}.STREAM.MSG.DELETE.>`,
        ],
        subscribe: [
          `${SCHED_SUBJECT_PREFIX}.*.>`,
          `${OPERATOR_SUBJECT_PREFIX}.>`,
          `${READ_SUBJECT_PREFIX}.>`,
          inbox,
          ...serviceDiscovery('allot-coordinator'),
        ],
        allowResponses: true,
      };
    case 'scheduler':
      return { publish: [`${SCHED_SUBJECT_PREFIX}.${n}.>`], subscribe: [inbox], allowResponses: false };
    case 'operator':
      // Operators also place and release for any tenant (moving VMs off a drained node).
      return {
        publish: [
          `${OPERATOR_SUBJECT_PREFIX}.>`,
          `${READ_SUBJECT_PREFIX}.>`,
          `${SCHED_SUBJECT_PREFIX}.*.>`,
          ...streamReader(EVENTS_STREAM),
          ...streamReader(USAGE_STREAM),
          `${JS}.INFO`,
          '$JS.FC.>',
        ],
        publishDeny: keepOffTheDurable,
        subscribe: [inbox],
        allowResponses: false,
      };
    case 'reader':
      return {
        publish: [`${READ_SUBJECT_PREFIX}.>`, ...streamReader(EVENTS_STREAM), ...streamReader(USAGE_STREAM), `${JS}.INFO`, '$JS.FC.>'],
        publishDeny: keepOffTheDurable,
        subscribe: [inbox],
        allowResponses: false,
      };
    case 'admin':
      // Deploy-time set-up (streams, buckets) and break-glass: everything.
      return { publish: ['>'], subscribe: ['>'], allowResponses: true };
  }
}
