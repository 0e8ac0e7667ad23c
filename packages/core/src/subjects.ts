/**
 * The NATS subject scheme, in one place. Every token that comes from data (node ids, tenant ids) is validated by the
 * schemas in domain.ts to contain no `.`, `*` or `>`, so it cannot escape its position in a subject.
 *
 *   allot.agent.<nodeId>.<verb>         request/reply to one agent (NATS service `allot-agent`)
 *   allot.sched.<verb>                  request/reply to any coordinator (NATS service `allot-coordinator`, queue group)
 *   allot.usage.<nodeId>                JetStream stream ALLOT_USAGE: usage snapshots, latest few per node
 *   allot.events.<nodeId>.<kind>        JetStream stream ALLOT_EVENTS: allocation lifecycle audit log
 *   KV allot_nodes / allot_placements / allot_quotas   node registry, placement intents, tenant quota records
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
  'health',
  'limits.get',
  'limits.update',
  'cordon',
  'uncordon',
] as const;
export type AgentVerb = (typeof AGENT_VERBS)[number];

export const AGENT_SERVICE_NAME = 'allot-agent';
export const COORDINATOR_SERVICE_NAME = 'allot-coordinator';
/** Coordinators subscribe in this queue group, so each scheduler request reaches exactly one of them. */
export const COORDINATOR_QUEUE = 'allot-coordinators';

export function agentSubject(nodeId: string, verb: AgentVerb): string {
  return `${SUBJECT_ROOT}.agent.${nodeId}.${verb}`;
}

/** Scheduler verbs served by the coordinators. */
export const SCHED_VERBS = [
  'place',
  'release',
  'activate',
  'check',
  'usage',
  'efficiency',
  'nodes',
  'node',
  'quota.get',
  'quota.set',
  'quota.import',
  'quota.recount',
  'cordon',
  'uncordon',
  'drain',
  'audit',
] as const;
export type SchedVerb = (typeof SCHED_VERBS)[number];

export function schedSubject(verb: SchedVerb): string {
  return `${SUBJECT_ROOT}.sched.${verb}`;
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

export const KV_NODES = 'allot_nodes';
export const KV_PLACEMENTS = 'allot_placements';
export const KV_QUOTAS = 'allot_quotas';

/** Stream limits: explicit, so a busy cluster cannot fill the NATS server's disk. */
export const STREAM_LIMITS = {
  usage: { maxMsgsPerSubject: 16, maxAgeMs: 24 * 3600 * 1000, maxBytes: 256 * 1024 * 1024 },
  events: { maxAgeMs: 7 * 24 * 3600 * 1000, maxBytes: 1024 * 1024 * 1024, maxMsgs: 10_000_000 },
} as const;

/** Header names on NATS messages. traceparent/tracestate carry W3C trace context. */
export const HEADERS = { traceparent: 'traceparent', tracestate: 'tracestate', requestId: 'Allot-Request-Id' } as const;
