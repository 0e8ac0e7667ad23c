import {
  AgentAllocateRequestSchema,
  AgentReleaseRequestSchema,
  AgentResizeRequestSchema,
  AllocationIdSchema,
  AllocationRequestSchema,
  AllocationSchema,
  AllocationStatusSchema,
  AllotErrorSchema,
  EfficiencyMetricsSchema,
  EpochMsSchema,
  FencedSchema,
  FenceSchema,
  HealthSchema,
  LabelsSchema,
  LimitsPatchSchema,
  LimitsSchema,
  MAX_PREEMPTION_VICTIMS,
  MAX_RESERVATION_TTL_MS,
  NodeIdSchema,
  NodeLivenessSchema,
  NodeStateSchema,
  NodeViewSchema,
  PlacementOptionsSchema,
  PrioritySchema,
  RequestIdSchema,
  ResizeAmountsSchema,
  ResourceAmountsSchema,
  TaintSchema,
  TenantIdSchema,
  TenantQuotaSchema,
  UsageSnapshotSchema,
} from '@allot/core';
import { z } from 'zod';
import type { AgentVerb, SchedVerb } from './subjects.ts';

/*
 * Every message that crosses NATS, as a zod schema. Requests are validated at the edge on decode; replies are
 * validated by clients. A reply is always an envelope: { ok: true, value } or { ok: false, error }.
 */

/** The reply envelope of every request/reply endpoint. */
export function replySchema<T extends z.ZodType>(value: T) {
  return z.discriminatedUnion('ok', [
    z.object({ ok: z.literal(true), value }),
    z.object({ ok: z.literal(false), error: AllotErrorSchema }),
  ]);
}

/** Largest request payload any endpoint accepts; larger ones get invalid_request before decoding. */
export const MAX_REQUEST_BYTES = 64 * 1024;

// ---------- agent commands (one node) ----------
export const AgentReserveRequestSchema = AllocationRequestSchema.refine((r) => r.reservation !== undefined, {
  message: 'a reservation needs reservation.ttlMs',
  path: ['reservation'],
}).and(FencedSchema);

export const AgentActivateRequestSchema = z.object({ requestId: RequestIdSchema, allocationId: AllocationIdSchema });
export type AgentActivateRequest = z.infer<typeof AgentActivateRequestSchema>;

/** check: a dry run of an allocate; requestId optional because nothing is committed. */
export const AgentCheckRequestSchema = AllocationRequestSchema;

export const AvailabilitySchema = z.object({
  fits: z.boolean(),
  figures: z.record(z.string(), z.object({ requested: z.int(), free: z.int(), effectiveCapacity: z.int() })),
  reason: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const EmptyRequestSchema = z.object({}).loose();

/** Largest page of `allocations`; the agent also cuts a page at 512 KiB encoded (`truncated`, `next`), so a reply always fits NATS's 1 MiB payload limit. */
export const MAX_ALLOCATIONS_PAGE = 1000;

/** A page of the agent's live allocations, in id-counter order; pass the reply's `next` as `after` for the next page. */
export const AgentAllocationsRequestSchema = z.object({
  status: z.union([AllocationStatusSchema, z.literal('live'), z.literal('all')]).default('live'),
  tenantId: TenantIdSchema.optional(),
  /** Only the allocation made by this request id. */
  requestId: RequestIdSchema.optional(),
  limit: z.int().min(1).max(MAX_ALLOCATIONS_PAGE).default(500),
  /** Only allocations whose id counter (`<nodeId>:<counter>`) is above this. */
  after: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});

/**
 * fence: record `fence` for the request id (the highest seen is kept, durably), then answer what the agent holds
 * for it. After the reply no allocate of that request id at a fence <= `fence` can commit on this agent.
 */
export const AgentFenceRequestSchema = z.object({ requestId: RequestIdSchema, fence: FenceSchema });
export type AgentFenceRequest = z.infer<typeof AgentFenceRequestSchema>;
/** The request id's allocation in any status (released ones while retained), or null; and the fence now recorded. */
export const AgentFenceReplySchema = z.object({ allocation: AllocationSchema.nullable(), fence: FenceSchema });
export type AgentFenceReply = z.infer<typeof AgentFenceReplySchema>;

/**
 * preempt: release `victims` (live allocations of this node, each at least PREEMPTION_PRIORITY_GAP priority points
 * below the request) and allocate `request` in one turn and one ledger record, or change nothing. Idempotent by the
 * request's id and fenced like allocate (`request.fence`). With `graceMs` the victims are first marked `releasing`
 * (still counted) and the release and the allocation happen together at the deadline (see docs/architecture.md).
 */
export const AgentPreemptRequestSchema = z.object({
  request: AgentAllocateRequestSchema,
  victims: z.array(AllocationIdSchema).min(1).max(MAX_PREEMPTION_VICTIMS),
  graceMs: z.int().min(0).max(86_400_000).optional(),
});
export type AgentPreemptRequest = z.infer<typeof AgentPreemptRequestSchema>;
/**
 * The preemptor's allocation (`reserved` with `expiresAt` = the deadline while a grace period runs, then `active`) and
 * the victims as they are now (`released`, or `releasing` during the grace period).
 */
export const AgentPreemptReplySchema = z.object({ allocation: AllocationSchema, victims: z.array(AllocationSchema) });
export type AgentPreemptReply = z.infer<typeof AgentPreemptReplySchema>;
export type ResizeAmounts = z.infer<typeof ResizeAmountsSchema>;

export const AgentLimitsUpdateRequestSchema = z.object({
  requestId: RequestIdSchema,
  memory: LimitsPatchSchema.optional(),
  cpu: LimitsPatchSchema.optional(),
  /** Shrinking below what is committed is refused unless forced. */
  force: z.boolean().default(false),
});
export type AgentLimitsUpdateRequest = z.infer<typeof AgentLimitsUpdateRequestSchema>;

export const HostLimitsSchema = z.object({ memory: LimitsSchema, cpu: LimitsSchema });
export type HostLimits = z.infer<typeof HostLimitsSchema>;

export const AgentCordonRequestSchema = z.object({ requestId: RequestIdSchema, reason: z.string().max(256).optional() });

/** What an agent reports about itself: the usage snapshot and the health with every reason. */
export const HostHealthSchema = z.object({
  nodeId: NodeIdSchema,
  health: HealthSchema,
  cordoned: z.boolean(),
  /** How long the last start-up spent replaying the ledger. */
  recoveryMs: z.int().min(0),
  startedAt: EpochMsSchema,
});
export type HostHealth = z.infer<typeof HostHealthSchema>;

// ---------- events stream ----------

export const EVENT_KINDS = [
  'allocated',
  'released',
  'reserved',
  'activated',
  'expired',
  'refused',
  'preempted',
  'cordoned',
  'uncordoned',
  'limits_updated',
  'node_lost',
  'node_suspect',
  'node_returned',
  /** An operator decommissioned the node (allot node decommission); and undid it (recommission). */
  'node_decommissioned',
  'node_recommissioned',
  /** A decommissioned node of which nothing remained reported again: its snapshots are dropped, its agent cordoned. */
  'node_refused',
  'agent_started',
  /** The coordinators' anti-entropy sweep released an allocation no intent accounts for. */
  'orphan_released',
  /** The sweep found a placed intent's allocation ended on its node: the intent is released, its quota given back. */
  'placement_ended',
  'fenced',
  /** An allocation's memory or vCPUs changed in place (resize): resources are the new amounts, cpuset the new cores. */
  'resized',
  /**
   * A move (moves/*.ts, coordinator): its destination held on nodeId (move_started), confirmed there (the source
   * released: move_confirmed) or given up (move_aborted). requestId is the destination's, allocationId the source's,
   * reason names both halves.
   */
  'move_started',
  'move_confirmed',
  'move_aborted',
] as const;
export const EventKindSchema = z.enum(EVENT_KINDS);
export type EventKind = z.infer<typeof EventKindSchema>;

export const AllotEventSchema = z.object({
  kind: EventKindSchema,
  nodeId: NodeIdSchema,
  at: EpochMsSchema,
  requestId: RequestIdSchema.optional(),
  allocationId: AllocationIdSchema.optional(),
  tenantId: TenantIdSchema.optional(),
  resources: ResourceAmountsSchema.optional(),
  cpuset: z.array(z.int().min(0)).optional(),
  /** For preempted: the allocation that took the victim's room, and its request id. */
  preemptedBy: z.object({ allocationId: AllocationIdSchema, requestId: RequestIdSchema }).optional(),
  /** For refused: the error; for released/preempted: why. */
  error: AllotErrorSchema.optional(),
  reason: z.string().max(512).optional(),
});
export type AllotEvent = z.infer<typeof AllotEventSchema>;

// ---------- scheduler requests (cluster scope) ----------
export const PlaceRequestSchema = z.object({
  request: AllocationRequestSchema,
  placement: PlacementOptionsSchema.default({ constraints: [], allowPreemption: false }),
});
export type PlaceRequest = z.infer<typeof PlaceRequestSchema>;
export type PlaceRequestInput = z.input<typeof PlaceRequestSchema>;

/** An allocation a preemption releases (or, in a check, would release). */
export const PreemptionVictimSchema = z.object({ allocationId: AllocationIdSchema, requestId: RequestIdSchema, priority: PrioritySchema });

export const PlaceReplySchema = z.object({
  nodeId: NodeIdSchema,
  allocation: AllocationSchema,
  cpuset: z.array(z.int().min(0)),
  /**
   * The preemptor's own allocations released to make room (preemption). Other tenants' victims are never named to it
   * (their own tenants get `preempted` events), only counted in `othersPreempted`, as a check's plan does.
   */
  preempted: z.array(PreemptionVictimSchema).default([]),
  /** Other tenants' allocations this preemption released: counted, never named. Absent when none (and from older coordinators). */
  othersPreempted: z.int().min(1).optional(),
  /** Nodes tried before this one, with why they refused. */
  attempts: z.int().min(1),
});
export type PlaceReply = z.infer<typeof PlaceReplySchema>;

/** Most members one batch places (one atomic KV write carries every member's intent and the tenant's usage record). */
export const MAX_BATCH_MEMBERS = 256;

/**
 * place.batch (allot.sched.<tenantId>.place.batch): N VMs placed all or nothing, a tenant's cluster or a gang (Nomad's
 * task group, kube's PodGroup, Nova's multi-create with min_count = N). Each member is a place request of its own, with
 * its own request id: at most one allocation per request id holds for each, and a retry of the batch (same batch id,
 * same members) answers the same placements. The placement options apply to every member; `maxPerNode` spreads the
 * members (at most that many of them on one node) when the options name no anti-affinity group.
 */
export const PlaceBatchRequestSchema = z
  .object({
    batchId: RequestIdSchema,
    tenantId: TenantIdSchema,
    members: z.array(AllocationRequestSchema).min(1).max(MAX_BATCH_MEMBERS),
    placement: PlacementOptionsSchema.default({ constraints: [], allowPreemption: false }),
    maxPerNode: z.int().min(1).max(MAX_BATCH_MEMBERS).optional(),
  })
  .superRefine((r, ctx) => {
    const seen = new Set<string>();
    r.members.forEach((m, i) => {
      if (m.tenantId !== r.tenantId)
        ctx.addIssue({ code: 'custom', path: ['members', i, 'tenantId'], message: `a batch places for one tenant (${r.tenantId})` });
      if (seen.has(m.requestId))
        ctx.addIssue({ code: 'custom', path: ['members', i, 'requestId'], message: `request id ${m.requestId} named twice` });
      seen.add(m.requestId);
    });
    if (r.maxPerNode !== undefined && r.placement.group !== undefined)
      ctx.addIssue({ code: 'custom', path: ['maxPerNode'], message: 'name maxPerNode or placement.group, not both' });
    if (r.placement.allowPreemption)
      ctx.addIssue({ code: 'custom', path: ['placement', 'allowPreemption'], message: 'a batch does not preempt' });
  });
export type PlaceBatchRequest = z.infer<typeof PlaceBatchRequestSchema>;
export type PlaceBatchRequestInput = z.input<typeof PlaceBatchRequestSchema>;

/** Every member placed, in the request's order. */
export const PlaceBatchReplySchema = z.object({
  batchId: RequestIdSchema,
  placements: z.array(PlaceReplySchema).max(MAX_BATCH_MEMBERS),
});
export type PlaceBatchReply = z.infer<typeof PlaceBatchReplySchema>;

export const ClusterReleaseRequestSchema = z.object({
  requestId: RequestIdSchema,
  /** The request id of the placement to release. */
  placementRequestId: RequestIdSchema,
  /** The tenant that owns the placement; when given it must be the subject's (allot.sched.<tenantId>.release). */
  tenantId: TenantIdSchema.optional(),
});
export type ClusterReleaseRequest = z.infer<typeof ClusterReleaseRequestSchema>;

/**
 * resize at cluster scope (allot.sched.<tenantId>.resize): the tenant's allocation, named by its id, grown or shrunk in
 * place by its node's agent; the placement's intent and the tenant's usage follow in one atomic write. A growth past the
 * tenant's quota is `quota_exceeded` before the agent is asked.
 */
export const ClusterResizeRequestSchema = z.object({
  /** The resize's own idempotency key. */
  requestId: RequestIdSchema,
  allocationId: AllocationIdSchema,
  resources: ResizeAmountsSchema,
  /** The tenant that owns the allocation; when given it must be the subject's. */
  tenantId: TenantIdSchema.optional(),
});
export type ClusterResizeRequest = z.infer<typeof ClusterResizeRequestSchema>;

export const ClusterCheckReplySchema = z.object({
  fits: z.boolean(),
  /** Best candidates in order. */
  candidates: z.array(NodeIdSchema),
  /** Nodes rejected per reason, as in "0/5 nodes are available: 3 Insufficient memory, 2 cordoned". */
  rejected: z.record(z.string(), z.int().min(0)),
  message: z.string(),
  /**
   * When nothing fits as things are and the request allows preemption: the node a place would take by preempting and
   * the asking tenant's own victims among those it would preempt now (kube-scheduler's nominated node; other tenants'
   * are counted in `message`, never named). A check evicts nothing; a place decides again
   * and may choose otherwise when the cluster changed meanwhile. Absent when no preemption makes room (and from older
   * coordinators).
   */
  preemption: z.object({ nodeId: NodeIdSchema, victims: z.array(PreemptionVictimSchema) }).optional(),
});
export type ClusterCheckReply = z.infer<typeof ClusterCheckReplySchema>;
export type NodeState = z.infer<typeof NodeStateSchema>;

export const ClusterUsageSchema = z.object({
  at: EpochMsSchema,
  /** Decommissioned nodes count (in total and decommissioned) only until nothing of them remains. */
  nodes: z.object({
    total: z.int(),
    ready: z.int(),
    suspect: z.int(),
    lost: z.int(),
    cordoned: z.int(),
    draining: z.int().optional(),
    decommissioned: z.int().optional(),
  }),
  memory: z.object({ capacity: z.int(), effectiveCapacity: z.int(), committed: z.int(), used: z.int() }),
  cpu: z.object({ capacity: z.int(), effectiveCapacity: z.int(), committed: z.int(), used: z.int() }),
  allocationCount: z.int(),
});
export type ClusterUsage = z.infer<typeof ClusterUsageSchema>;

// ---------- tenant quotas ----------
export const QuotaSetRequestSchema = z.object({ requestId: RequestIdSchema, quota: TenantQuotaSchema });
export const QuotaGetRequestSchema = z.object({ tenantId: TenantIdSchema });

export const NodeCommandRequestSchema = z.object({
  requestId: RequestIdSchema,
  nodeId: NodeIdSchema,
  reason: z.string().max(256).optional(),
});

// ---------- endpoint tables: request and reply value schema per verb ----------

/** An endpoint's request schema and the schema of the value its ok reply carries. */
export interface EndpointSpec {
  readonly request: z.ZodType;
  readonly reply: z.ZodType;
}

/** `truncated`: more match after this page; then `next` is the `after` of the next page. */
export const AgentAllocationsReplySchema = z.object({
  allocations: z.array(AllocationSchema),
  truncated: z.boolean(),
  next: z.int().min(0).optional(),
});
export type AgentAllocationsReply = z.infer<typeof AgentAllocationsReplySchema>;

/** Every agent endpoint: the request it accepts and the value its ok reply carries. */
export const AGENT_ENDPOINTS = {
  allocate: { request: AgentAllocateRequestSchema, reply: AllocationSchema },
  release: { request: AgentReleaseRequestSchema, reply: AllocationSchema },
  reserve: { request: AgentReserveRequestSchema, reply: AllocationSchema },
  activate: { request: AgentActivateRequestSchema, reply: AllocationSchema },
  check: { request: AgentCheckRequestSchema, reply: AvailabilitySchema },
  usage: { request: EmptyRequestSchema, reply: UsageSnapshotSchema },
  allocations: { request: AgentAllocationsRequestSchema, reply: AgentAllocationsReplySchema },
  fence: { request: AgentFenceRequestSchema, reply: AgentFenceReplySchema },
  resize: { request: AgentResizeRequestSchema, reply: AllocationSchema },
  preempt: { request: AgentPreemptRequestSchema, reply: AgentPreemptReplySchema },
  health: { request: EmptyRequestSchema, reply: HostHealthSchema },
  'limits.get': { request: EmptyRequestSchema, reply: HostLimitsSchema },
  'limits.update': { request: AgentLimitsUpdateRequestSchema, reply: HostLimitsSchema },
  cordon: { request: AgentCordonRequestSchema, reply: HostHealthSchema },
  uncordon: { request: AgentCordonRequestSchema, reply: HostHealthSchema },
} as const satisfies Record<AgentVerb, EndpointSpec>;

export const NodesRequestSchema = z.object({
  liveness: NodeLivenessSchema.optional(),
  /** Only nodes in this operator state. */
  state: NodeStateSchema.optional(),
  /** Only nodes whose labels match all of these. */
  labels: LabelsSchema.optional(),
});
export const NodeRequestSchema = z.object({ nodeId: NodeIdSchema });
export const NodesReplySchema = z.object({ nodes: z.array(NodeViewSchema) });

const UsageCountersSchema = z.object({
  vms: z.int().min(0),
  vcpus: z.int().min(0),
  memoryMiB: z.int().min(0),
  /** MiB of hugepages per page size held (absent: none, or a coordinator older than hugepage quotas). */
  hugepagesMiB: z.object({ '2Mi': z.int().min(0).optional(), '1Gi': z.int().min(0).optional() }).optional(),
});

/** A tenant's quota with its current cluster-wide use, as the coordinator enforces it. */
export const TenantQuotaViewSchema = z.object({
  quota: TenantQuotaSchema,
  usage: UsageCountersSchema,
});

export const QuotaImportRequestSchema = z.object({
  requestId: RequestIdSchema,
  /** Legacy quota documents, as the earlier system stored them; validated one by one by the migration. */
  documents: z.array(z.unknown()).max(10_000),
});
/** quota.recount (operators): rebuild a tenant's usage counters from its counting placement intents. */
export const QuotaRecountRequestSchema = z.object({ requestId: RequestIdSchema, tenantId: TenantIdSchema });
/** The counters before (null: the tenant had no usage record) and after the rebuild. */
export const QuotaRecountReplySchema = z.object({
  tenantId: TenantIdSchema,
  before: UsageCountersSchema.nullable(),
  after: UsageCountersSchema,
});

/** The migration report: per tenant migrated / updated / skipped with reason, warnings, completion percent. */
export const QuotaImportReplySchema = z.record(z.string(), z.unknown());

/** Allocations listed in a drain reply at most (a node may hold many more: the count says how many). */
export const MAX_DRAIN_LISTED = 500;

export const DrainReplySchema = z.object({
  nodeId: NodeIdSchema,
  cordoned: z.boolean(),
  /** What is still on the node (the first MAX_DRAIN_LISTED): the operator moves or releases it. */
  remaining: z.array(AllocationSchema).max(MAX_DRAIN_LISTED),
  /** How many allocations are still on the node, listed or not. */
  remainingCount: z.int().min(0).optional(),
});

/** Request ids listed per kind in a decommission reply at most. */
export const MAX_DECOMMISSION_LISTED = 500;
const ListedRequestIdsSchema = z.array(RequestIdSchema).max(MAX_DECOMMISSION_LISTED);

/**
 * node.decommission (operators): the node is out for good (durable, every coordinator). Its pending placements are
 * fenced on it when its agent answers, or, when it is lost, failed on the operator's word; its placed ones stay while
 * it answers (listed in `remaining`) and are gone with it when it is lost. It leaves the view and every count once
 * nothing of it remains (`removed`). Idempotent: run it again to finish what a silent node left unsettled.
 */
export const DecommissionReplySchema = z.object({
  nodeId: NodeIdSchema,
  decommissionedAt: EpochMsSchema,
  /** The node's agent answered (cordoned, and every pending placement fenced on it). */
  answered: z.boolean(),
  /** The node's liveness in this coordinator's view (absent: it never reported). */
  liveness: NodeLivenessSchema.optional(),
  /** Pending placements failed (quota given back; a retry places them elsewhere). */
  failed: ListedRequestIdsSchema,
  /** Placements found committed on the node while it was pending: placed, still there (so in `remaining`). */
  placed: ListedRequestIdsSchema,
  /** Placements given up with the lost node (released, quota given back). */
  gone: ListedRequestIdsSchema,
  /** Pending placements left as they are: the node is neither answering nor lost yet. Run decommission again later. */
  unsettled: ListedRequestIdsSchema,
  /** What is still on the node (the first MAX_DRAIN_LISTED), for the operator to move or release. */
  remaining: z.array(AllocationSchema).max(MAX_DRAIN_LISTED),
  remainingCount: z.int().min(0),
  /** Nothing of the node remains: it is out of the view and of every count. */
  removed: z.boolean(),
});
export type DecommissionReply = z.infer<typeof DecommissionReplySchema>;

/** node.taint (operators): adds a taint to the node, replacing one of the same key and effect (see TaintSchema). */
export const NodeTaintRequestSchema = z.object({ requestId: RequestIdSchema, nodeId: NodeIdSchema, taint: TaintSchema });
/** node.untaint (operators): removes the node's taints of this key (of this effect only, when named). */
export const NodeUntaintRequestSchema = z.object({
  requestId: RequestIdSchema,
  nodeId: NodeIdSchema,
  key: z.string().min(1).max(64),
  effect: z.enum(['NoSchedule']).optional(),
});
/** The node's taints after a node.taint or node.untaint. */
export const NodeTaintsReplySchema = z.object({ nodeId: NodeIdSchema, taints: z.array(TaintSchema) });
export type NodeTaintsReply = z.infer<typeof NodeTaintsReplySchema>;

/** node.recommission (operators): undoes a decommission; the node comes back cordoned (`allot uncordon` to use it). */
export const RecommissionReplySchema = z.object({ nodeId: NodeIdSchema, wasDecommissioned: z.boolean() });
export type RecommissionReply = z.infer<typeof RecommissionReplySchema>;

/** One discrepancy the anti-entropy sweep finds between the agents' allocations and the placement intents. */
export const DiscrepancySchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('orphan'),
    nodeId: NodeIdSchema,
    allocationId: AllocationIdSchema,
    requestId: RequestIdSchema,
    tenantId: TenantIdSchema,
    reason: z.enum(['intent_missing', 'intent_failed', 'intent_released', 'intent_on_other_node']),
    fence: z.int().min(1),
    intentNodeId: NodeIdSchema.optional(),
  }),
  z.object({
    kind: z.literal('placement_missing'),
    nodeId: NodeIdSchema,
    requestId: RequestIdSchema,
    tenantId: TenantIdSchema,
    allocationId: AllocationIdSchema.optional(),
  }),
]);
export type Discrepancy = z.infer<typeof DiscrepancySchema>;

/** Discrepancies listed in an audit reply at most; `total` counts them all. */
export const MAX_AUDIT_LISTED = 1000;

/** audit (read only): what the sweep would act on, as seen now; nothing is changed. */
export const AuditReplySchema = z.object({
  discrepancies: z.array(DiscrepancySchema).max(MAX_AUDIT_LISTED),
  total: z.int().min(0),
  nodesSwept: z.int().min(0),
  nodesFailed: z.array(z.object({ nodeId: NodeIdSchema, error: z.string().max(1024) })).max(100_000),
});
export type AuditReply = z.infer<typeof AuditReplySchema>;

/**
 * activate at cluster scope: a reservation placed through `place` is activated on its node, named by the allocation id
 * (`<nodeId>:<counter>`), by that node's agent.
 */
export const ClusterActivateRequestSchema = AgentActivateRequestSchema.extend({
  /** The tenant that owns the reservation; when given it must be the subject's (allot.sched.<tenantId>.activate). */
  tenantId: TenantIdSchema.optional(),
});

/**
 * efficiency at cluster scope, per resource type, over the ready uncordoned nodes (the capacity a place can use):
 * allocationEfficiency = used / committed, utilizationEfficiency = used / effective capacity (summed over those nodes),
 * and fragmentation against the reference VM (the place shape most often seen by this coordinator): the share of free
 * capacity that cannot hold one more reference VM because its node lacks the other resource or a whole VM's worth.
 */
export const ClusterEfficiencyReplySchema = z.object({
  metrics: z.array(EfficiencyMetricsSchema),
  /** The VM shape fragmentation is measured against, and whether it was seen in places or is the default. */
  reference: z.object({ memoryMiB: z.int().min(1), vcpus: z.int().min(1), source: z.enum(['seen', 'default']) }),
  /** The nodes counted (ready and not cordoned). */
  nodes: z.int().min(0),
});
export type ClusterEfficiencyReply = z.infer<typeof ClusterEfficiencyReplySchema>;

/** limits.update (operators): the agent's limits.update, sent to the named node by a coordinator. */
export const ClusterLimitsUpdateRequestSchema = AgentLimitsUpdateRequestSchema.extend({ nodeId: NodeIdSchema });
export type ClusterLimitsUpdateRequest = z.infer<typeof ClusterLimitsUpdateRequestSchema>;

/**
 * allocations (operators): the allocations of the ready nodes, asked of their agents (a node that does not answer is
 * left out and named in `nodesFailed`), filtered by status (default the live ones), tenant and request id; only the
 * named node (`nodeId`, asked alone) or the ready nodes carrying every one of `labels`. One page of at most `limit`,
 * walked in node-id order then allocation-id order; pass the reply's `next` as `cursor` for the next page.
 */
export const ClusterAllocationsRequestSchema = z.object({
  status: z.union([AllocationStatusSchema, z.literal('live')]).default('live'),
  tenantId: TenantIdSchema.optional(),
  requestId: RequestIdSchema.optional(),
  nodeId: NodeIdSchema.optional(),
  labels: LabelsSchema.optional(),
  /** Opaque: the `next` of the previous page. */
  cursor: z.string().min(1).max(200).optional(),
  limit: z.int().min(1).max(MAX_ALLOCATIONS_PAGE).default(500),
});
export type ClusterAllocationsRequest = z.infer<typeof ClusterAllocationsRequestSchema>;
/** `next` absent: the listing is complete. A next page may be empty (the nodes after the cursor hold none). */
export const ClusterAllocationsReplySchema = z.object({
  allocations: z.array(AllocationSchema).max(MAX_ALLOCATIONS_PAGE),
  next: z.string().max(200).optional(),
  nodesFailed: z.array(z.object({ nodeId: NodeIdSchema, error: z.string() })).optional(),
});
export type ClusterAllocationsReply = z.infer<typeof ClusterAllocationsReplySchema>;

// ---------- moves and evacuation ----------

/** Moves listed in an evacuate reply at most (the counts say how many there are). */
export const MAX_EVACUATE_LISTED = 1000;

/**
 * move (allot.sched.<tenantId>.move): the tenant's allocation gets a destination, chosen (`to`) or picked by placement
 * with the constraints and anti-affinity it was placed with, held there as a reservation for `holdMs` while the source
 * still runs. Two-phase: move.confirm activates the destination and releases the source, move.abort releases the
 * destination. `requestId` is the move's: the same id answers the same move (the destination's request id is derived
 * from it and the allocation id). The tenant's quota counts the VM once throughout.
 */
export const MoveRequestSchema = z.object({
  requestId: RequestIdSchema,
  allocationId: AllocationIdSchema,
  /** The destination node (default: placement picks one, never the source's node). */
  to: NodeIdSchema.optional(),
  /** How long the destination is held before it expires unconfirmed (default: the coordinator's moves.holdMs). */
  holdMs: z.int().min(1).max(MAX_RESERVATION_TTL_MS).optional(),
  /** The tenant that owns the allocation; when given it must be the subject's. */
  tenantId: TenantIdSchema.optional(),
});
export type MoveRequest = z.infer<typeof MoveRequestSchema>;

/** move.confirm and move.abort: the move named by its request id and the source allocation it moves. */
export const MoveSettleRequestSchema = z.object({
  /** The move's request id (move's `requestId`, or an evacuation plan's `moveRequestId`). */
  requestId: RequestIdSchema,
  allocationId: AllocationIdSchema,
  tenantId: TenantIdSchema.optional(),
});
export type MoveSettleRequest = z.infer<typeof MoveSettleRequestSchema>;

/**
 * A move as stored in the placement intents. held: the destination is reserved, the source runs and counts;
 * confirmed: the destination is the placement (active, counted), the source released (the VM may have ended there
 * since: a confirm or abort then answers `conflict`, reason `preempted` or `released`); aborted: the destination was
 * released (or its hold expired) and the source stays.
 */
export const MoveSchema = z.object({
  moveRequestId: RequestIdSchema,
  tenantId: TenantIdSchema,
  state: z.enum(['held', 'confirmed', 'aborted']),
  source: z.object({ allocationId: AllocationIdSchema, requestId: RequestIdSchema, nodeId: NodeIdSchema }),
  destination: z.object({ requestId: RequestIdSchema, nodeId: NodeIdSchema, allocation: AllocationSchema.optional() }),
  /** confirm: whether the source's agent answered its release (false: it did not; the sweep releases it when it does). */
  sourceReleased: z.boolean().optional(),
});
export type Move = z.infer<typeof MoveSchema>;

/** moves (operators; a scan of the placement intents): the moves holding a destination now, optionally of one node or tenant. */
export const MovesRequestSchema = z.object({
  /** Only moves from or to this node. */
  nodeId: NodeIdSchema.optional(),
  tenantId: TenantIdSchema.optional(),
});
export const MovesReplySchema = z.object({ moves: z.array(MoveSchema).max(MAX_EVACUATE_LISTED), count: z.int().min(0) });
export type MovesReply = z.infer<typeof MovesReplySchema>;

/** evacuate (operators): a move for every placement on the node, held elsewhere; see EvacuateReplySchema. */
export const EvacuateRequestSchema = z.object({
  /** The evacuation's request id: the same id resumes it and answers the same plan. */
  requestId: RequestIdSchema,
  nodeId: NodeIdSchema,
  holdMs: z.int().min(1).max(MAX_RESERVATION_TTL_MS).optional(),
});
export type EvacuateRequest = z.infer<typeof EvacuateRequestSchema>;

export const EvacuateReplySchema = z.object({
  nodeId: NodeIdSchema,
  requestId: RequestIdSchema,
  /** The plan: one move per placement of the node (held or already confirmed), for its tenant's scheduler to confirm. */
  moves: z.array(MoveSchema).max(MAX_EVACUATE_LISTED),
  movesCount: z.int().min(0),
  /** Placements that got no destination, with why (the kube-style "0/N nodes are available: ..." of placement). */
  unplaced: z
    .array(
      z.object({
        requestId: RequestIdSchema,
        tenantId: TenantIdSchema,
        allocationId: AllocationIdSchema.optional(),
        error: AllotErrorSchema,
      }),
    )
    .max(MAX_EVACUATE_LISTED),
  unplacedCount: z.int().min(0),
});
export type EvacuateReply = z.infer<typeof EvacuateReplySchema>;

/** Every scheduler endpoint served by the coordinators. */
export const SCHED_ENDPOINTS = {
  place: { request: PlaceRequestSchema, reply: PlaceReplySchema },
  'place.batch': { request: PlaceBatchRequestSchema, reply: PlaceBatchReplySchema },
  release: { request: ClusterReleaseRequestSchema, reply: AllocationSchema },
  activate: { request: ClusterActivateRequestSchema, reply: AllocationSchema },
  resize: { request: ClusterResizeRequestSchema, reply: AllocationSchema },
  move: { request: MoveRequestSchema, reply: MoveSchema },
  'move.confirm': { request: MoveSettleRequestSchema, reply: MoveSchema },
  'move.abort': { request: MoveSettleRequestSchema, reply: MoveSchema },
  evacuate: { request: EvacuateRequestSchema, reply: EvacuateReplySchema },
  moves: { request: MovesRequestSchema, reply: MovesReplySchema },
  check: { request: PlaceRequestSchema, reply: ClusterCheckReplySchema },
  usage: { request: EmptyRequestSchema, reply: ClusterUsageSchema },
  efficiency: { request: EmptyRequestSchema, reply: ClusterEfficiencyReplySchema },
  nodes: { request: NodesRequestSchema, reply: NodesReplySchema },
  node: { request: NodeRequestSchema, reply: NodeViewSchema },
  'quota.get': { request: QuotaGetRequestSchema, reply: TenantQuotaViewSchema },
  'quota.set': { request: QuotaSetRequestSchema, reply: TenantQuotaViewSchema },
  'quota.import': { request: QuotaImportRequestSchema, reply: QuotaImportReplySchema },
  'quota.recount': { request: QuotaRecountRequestSchema, reply: QuotaRecountReplySchema },
  cordon: { request: NodeCommandRequestSchema, reply: HostHealthSchema },
  uncordon: { request: NodeCommandRequestSchema, reply: HostHealthSchema },
  drain: { request: NodeCommandRequestSchema, reply: DrainReplySchema },
  'node.decommission': { request: NodeCommandRequestSchema, reply: DecommissionReplySchema },
  'node.recommission': { request: NodeCommandRequestSchema, reply: RecommissionReplySchema },
  'node.taint': { request: NodeTaintRequestSchema, reply: NodeTaintsReplySchema },
  'node.untaint': { request: NodeUntaintRequestSchema, reply: NodeTaintsReplySchema },
  audit: { request: EmptyRequestSchema, reply: AuditReplySchema },
  'limits.get': { request: NodeRequestSchema, reply: HostLimitsSchema },
  'limits.update': { request: ClusterLimitsUpdateRequestSchema, reply: HostLimitsSchema },
  allocations: { request: ClusterAllocationsRequestSchema, reply: ClusterAllocationsReplySchema },
  /** The cluster's health: the worst of the nodes', with their reasons, and suspect or lost nodes. */
  health: { request: EmptyRequestSchema, reply: HealthSchema },
} as const satisfies Record<SchedVerb, EndpointSpec>;
