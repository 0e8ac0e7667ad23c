/**
 * The NATS subject scheme, in one place. Every token that comes from data (node ids, tenant ids) is validated by the
 * schemas in domain.ts to contain no `.`, `*` or `>`, so it cannot escape its position in a subject.
 *
 *   allot.agent.<nodeId>.<verb>         request/reply to one agent (NATS service `allot-agent`); coordinators only
 *   allot.sched.<tenantId>.<verb>       a tenant's scheduler to any coordinator: place, place.batch, release, activate, check, resize, move(.confirm|.abort)
 *   allot.op.<verb>                     operators to any coordinator: quotas, cordon, uncordon, drain, node.decommission/recommission, node.taint/untaint, evacuate, moves, audit, node limits, allocations
 *   allot.read.<verb>                   readers (CLI, dashboards) to any coordinator: usage, efficiency, nodes, node, quota.get, health
 *   allot.usage.<nodeId>                JetStream stream ALLOT_USAGE: usage snapshots, latest few per node
 *   allot.events.<nodeId>.<kind>        JetStream stream ALLOT_EVENTS: allocation lifecycle audit log
 *   KV allot_nodes                      node leases: one key per node id naming the agent that serves it (TTL, renewed)
 *   KV allot_placements                 placement intents and tenant usage records, changed together in atomic batches
 *
 * Identity lives in the subject (the node of an agent, the tenant of a scheduler), so NATS permissions say who may
 * send what (docs/security.md) and the code only checks that a body agrees with its subject.
 */

export const SUBJECT_ROOT = 'allot';

/** Verbs of the agent's endpoints. */
export const AGENT_VERBS = [
  'allocate',
  'release',
  'reserve',
  'activate',
  'check',
  'usage',
  'allocations',
  'fence',
  'resize',
  'preempt',
  'health',
  'limits.get',
  'limits.update',
  'cordon',
  'uncordon',
] as const;
export type AgentVerb = (typeof AGENT_VERBS)[number];

export const AGENT_SERVICE_NAME = 'allot-agent';
/** Agents serve their endpoints in this queue group: should two processes ever serve one node id, each request still reaches one. */
export const AGENT_QUEUE = 'allot-agent';
export const COORDINATOR_SERVICE_NAME = 'allot-coordinator';
/** Coordinators subscribe in this queue group, so each scheduler request reaches exactly one of them. */
export const COORDINATOR_QUEUE = 'allot-coordinators';

export function agentSubject(nodeId: string, verb: AgentVerb): string {
  return `${SUBJECT_ROOT}.agent.${nodeId}.${verb}`;
}

/** Verbs a tenant's scheduler calls, on allot.sched.<tenantId>.<verb>: the tenant is the subject's. */
export const TENANT_VERBS = [
  'place',
  'place.batch',
  'release',
  'activate',
  'check',
  'resize',
  'move',
  'move.confirm',
  'move.abort',
] as const;
export type TenantVerb = (typeof TENANT_VERBS)[number];

/** Verbs that change the cluster's configuration or cost a sweep of every node, on allot.op.<verb>. */
export const OPERATOR_VERBS = [
  'quota.set',
  'quota.import',
  'quota.recount',
  'cordon',
  'uncordon',
  'drain',
  'node.decommission',
  'node.recommission',
  'node.taint',
  'node.untaint',
  'evacuate',
  'moves',
  'audit',
  'limits.get',
  'limits.update',
  'allocations',
] as const;
export type OperatorVerb = (typeof OPERATOR_VERBS)[number];

/** Read-only verbs answered from the coordinator's view, on allot.read.<verb>. */
export const READ_VERBS = ['usage', 'efficiency', 'nodes', 'node', 'quota.get', 'health'] as const;
export type ReadVerb = (typeof READ_VERBS)[number];

/** Every verb served by the coordinators. */
export const SCHED_VERBS = [...TENANT_VERBS, ...OPERATOR_VERBS, ...READ_VERBS] as const;
export type SchedVerb = (typeof SCHED_VERBS)[number];

const TENANT_VERB_SET: ReadonlySet<string> = new Set(TENANT_VERBS);
const OPERATOR_VERB_SET: ReadonlySet<string> = new Set(OPERATOR_VERBS);

export function isTenantVerb(verb: SchedVerb): verb is TenantVerb {
  return TENANT_VERB_SET.has(verb);
}

export const SCHED_SUBJECT_PREFIX = `${SUBJECT_ROOT}.sched`;
export const OPERATOR_SUBJECT_PREFIX = `${SUBJECT_ROOT}.op`;
export const READ_SUBJECT_PREFIX = `${SUBJECT_ROOT}.read`;

/** The subject of a tenant verb for one tenant; `*` in place of the tenant is the pattern coordinators serve. */
export function tenantSubject(tenantId: string, verb: TenantVerb): string {
  return `${SCHED_SUBJECT_PREFIX}.${tenantId}.${verb}`;
}

/** The subject of an operator or read verb. */
export function coordinatorSubject(verb: OperatorVerb | ReadVerb): string {
  return `${OPERATOR_VERB_SET.has(verb) ? OPERATOR_SUBJECT_PREFIX : READ_SUBJECT_PREFIX}.${verb}`;
}

/**
 * The subject a coordinator request goes to: tenant verbs take the tenant from `tenantId`, operator and read verbs
 * ignore it. A tenant verb without a tenant has no subject (undefined): the caller must name the tenant.
 */
export function schedSubject(verb: OperatorVerb | ReadVerb): string;
export function schedSubject(verb: SchedVerb, tenantId: string): string;
export function schedSubject(verb: SchedVerb, tenantId?: string): string | undefined;
export function schedSubject(verb: SchedVerb, tenantId?: string): string | undefined {
  if (!isTenantVerb(verb)) return coordinatorSubject(verb);
  return tenantId === undefined ? undefined : tenantSubject(tenantId, verb);
}

/**
 * The tenant a scheduler request names in its body: `request.tenantId` for place and check, `tenantId` for place.batch,
 * release, activate, resize and the moves. Clients use it to choose the subject; coordinators refuse a body that names another tenant than the
 * subject's.
 */
export function tenantOfBody(verb: TenantVerb, body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const holder = verb === 'place' || verb === 'check' ? (body as { request?: unknown }).request : body;
  if (typeof holder !== 'object' || holder === null) return undefined;
  const tenantId = (holder as { tenantId?: unknown }).tenantId;
  return typeof tenantId === 'string' ? tenantId : undefined;
}

/** The subject of a coordinator request, the tenant taken from the body for tenant verbs (see tenantOfBody). */
export function schedSubjectFor(verb: SchedVerb, body: unknown): string | undefined {
  return isTenantVerb(verb) ? schedSubject(verb, tenantOfBody(verb, body)) : coordinatorSubject(verb);
}

/** The tenant token of a tenant-verb subject (allot.sched.<tenantId>.<verb>), or undefined for another subject. */
export function tenantOfSubject(subject: string): string | undefined {
  // A verb may have a dot of its own (move.confirm): the tenant is the third token whatever follows it.
  const tokens = subject.split('.');
  return tokens.length >= 4 && `${tokens[0]}.${tokens[1]}` === SCHED_SUBJECT_PREFIX ? tokens[2] : undefined;
}

/**
 * The reply-inbox prefix of a connection authenticated by an nkey: private to that identity, so the server lets only
 * it subscribe to its replies (`_INBOX_<public key>.>` in its permissions).
 */
export function inboxPrefixOf(publicKey: string): string {
  return `_INBOX_${publicKey}`;
}

export const USAGE_STREAM = 'ALLOT_USAGE';
export const USAGE_SUBJECT_PREFIX = `${SUBJECT_ROOT}.usage`;
export function usageSubject(nodeId: string): string {
  return `${USAGE_SUBJECT_PREFIX}.${nodeId}`;
}
export const USAGE_SUBJECTS = `${USAGE_SUBJECT_PREFIX}.*`;

export const EVENTS_STREAM = 'ALLOT_EVENTS';
export const EVENTS_SUBJECT_PREFIX = `${SUBJECT_ROOT}.events`;
/** nodeId is `cluster` for events the coordinator emits (node_lost, refused placements). */
export function eventSubject(nodeId: string, kind: string): string {
  return `${EVENTS_SUBJECT_PREFIX}.${nodeId}.${kind}`;
}
export const EVENTS_SUBJECTS = `${EVENTS_SUBJECT_PREFIX}.>`;
export const CLUSTER_EVENT_NODE = 'cluster';

/** Node leases (apps/agent/src/node-lease.ts): one key per node id, so two agents never serve one node. */
export const KV_NODES = 'allot_nodes';
/** A node lease lives this long without a renewal (the bucket's max_age): a crashed holder blocks its node this long. */
export const NODE_LEASE_TTL_MS = 15_000;
/** Agents renew their lease this often: two renewals may fail before it lapses; coordinators count a renewal as liveness. */
export const NODE_LEASE_RENEW_MS = 5_000;
/** Placement intents (`intent.<requestId>`) and tenant usage records (`usage.<tenantId>`), in one bucket for atomic batches. */
export const KV_PLACEMENTS = 'allot_placements';

/** Stream limits: explicit, so a busy cluster cannot fill the NATS server's disk. */
export const STREAM_LIMITS = {
  usage: { maxMsgsPerSubject: 16, maxAgeMs: 24 * 3600 * 1000, maxBytes: 256 * 1024 * 1024 },
  events: { maxAgeMs: 7 * 24 * 3600 * 1000, maxBytes: 1024 * 1024 * 1024, maxMsgs: 10_000_000 },
} as const;

/** Header names on NATS messages. traceparent/tracestate carry W3C trace context. */
export const HEADERS = { traceparent: 'traceparent', tracestate: 'tracestate', requestId: 'Allot-Request-Id' } as const;
