import { z } from 'zod';
import { AntiAffinityGroupSchema, EpochMsSchema, NodeIdSchema, OvercommitRatioSchema, PrioritySchema, TenantIdSchema } from './domain.ts';
import { UsageSnapshotSchema } from './host.ts';

/*
 * The cluster's side of the domain: a node as the coordinators see it (what placement decides on), placement options,
 * and a tenant's quota. @allot/protocol carries them in messages.
 */

export const PLACEMENT_STRATEGIES = ['binpack', 'spread', 'round-robin', 'manual', 'spread-domain'] as const;
export const PlacementStrategySchema = z.enum(PLACEMENT_STRATEGIES);
export type PlacementStrategy = z.infer<typeof PlacementStrategySchema>;

/** A label constraint, after Kubernetes' node selector requirements. */
export const LabelConstraintSchema = z.object({
  key: z.string().min(1).max(64),
  op: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string().max(256)).max(64).default([]),
});
export type LabelConstraint = z.infer<typeof LabelConstraintSchema>;

/**
 * A node taint set by an operator (`allot node taint`), after Kubernetes: NoSchedule keeps every request that does not
 * tolerate it off the node (what is there stays). `reason` is shown to operators, never matched.
 */
export const TaintSchema = z.object({
  key: z.string().min(1).max(64),
  value: z.string().max(256).default(''),
  effect: z.enum(['NoSchedule']).default('NoSchedule'),
  reason: z.string().max(256).optional(),
});
export type Taint = z.infer<typeof TaintSchema>;

/** Tolerates taints of this key: with Equal (default) only the same value, with Exists any value; any effect when absent. */
export const TolerationSchema = z.object({
  key: z.string().min(1).max(64),
  operator: z.enum(['Equal', 'Exists']).default('Equal'),
  value: z.string().max(256).default(''),
  effect: z.enum(['NoSchedule']).optional(),
});
export type Toleration = z.infer<typeof TolerationSchema>;

/**
 * A hard spread over a failure-domain label, after kube-scheduler's topology spread constraints (DoNotSchedule): placing
 * on a node must leave its domain at most maxSkew above the least loaded domain, counting the request's group (or, with
 * no group, the tenant's VMs). Nodes without the label are refused.
 */
export const TopologySpreadSchema = z.object({
  topologyKey: z.string().min(1).max(64).default('zone'),
  maxSkew: z.int().min(1).max(10_000),
});
export type TopologySpread = z.infer<typeof TopologySpreadSchema>;

/**
 * Affinity to a group's allocations: on the same node (no topologyKey) or in the same failure domain. required is a
 * filter; preferred a score (weight 1..100) among the nodes sampled. A required term naming the request's own group
 * passes anywhere while the group has no allocation in the cluster yet (the first member must land somewhere).
 */
export const GroupAffinitySchema = z.object({
  group: z.string().min(1).max(64),
  topologyKey: z.string().min(1).max(64).optional(),
  mode: z.enum(['required', 'preferred']).default('required'),
  weight: z.int().min(1).max(100).default(100),
});
export type GroupAffinity = z.infer<typeof GroupAffinitySchema>;

export const PlacementOptionsSchema = z.object({
  strategy: PlacementStrategySchema.optional(),
  /** With strategy manual: the node to use. */
  nodeId: NodeIdSchema.optional(),
  /** With strategy spread-domain: the failure-domain label to spread over (default `zone`). */
  domainLabel: z.string().min(1).max(64).optional(),
  constraints: z.array(LabelConstraintSchema).max(32).default([]),
  /** Anti-affinity: at most maxPerNode live allocations of this group on one node. */
  group: AntiAffinityGroupSchema.optional(),
  /** Taints of nodes this request may be placed on anyway (see TaintSchema). */
  tolerations: z.array(TolerationSchema).max(32).optional(),
  /** Hard failure-domain spread (see TopologySpreadSchema). */
  topologySpread: TopologySpreadSchema.optional(),
  /** Attraction to groups, per node or per domain (see GroupAffinitySchema). */
  affinity: z.array(GroupAffinitySchema).max(8).optional(),
  /** Weights of the CPU and memory dimensions in scoring, integers 0..100. */
  weights: z.object({ cpu: z.int().min(0).max(100), memory: z.int().min(0).max(100) }).optional(),
  /** Allow preempting allocations at least 10 priority points lower when nothing else fits. */
  allowPreemption: z.boolean().default(false),
  /**
   * With preemption: the victims keep running this long (marked releasing, their room held for this request, which is
   * answered `reserved` until then), then they are released and this request allocated in one step on their agent.
   */
  preemptionGraceMs: z.int().min(1).max(3_600_000).optional(),
});
export type PlacementOptions = z.infer<typeof PlacementOptionsSchema>;
export type PlacementOptionsInput = z.input<typeof PlacementOptionsSchema>;

export const NodeLivenessSchema = z.enum(['ready', 'suspect', 'lost']);
export type NodeLiveness = z.infer<typeof NodeLivenessSchema>;

/**
 * A node's state as operators read it: the operator's word over the heartbeat judgement. `decommissioned` (allot node
 * decommission; durable, shared by every coordinator) wins, then `lost` and `suspect` (liveness), then `draining` (cordoned,
 * by `allot cordon` or `allot drain`: takes nothing new while what remains is moved off), else `ready`.
 */
export const NodeStateSchema = z.enum(['ready', 'suspect', 'lost', 'draining', 'decommissioned']);

export const NodeViewSchema = z.object({
  nodeId: NodeIdSchema,
  liveness: NodeLivenessSchema,
  /** The operator state (see NodeStateSchema); absent from coordinators before it existed. */
  state: NodeStateSchema.optional(),
  /** When the node was decommissioned (wall time of the coordinator that wrote it), while it is. */
  decommissionedAt: EpochMsSchema.optional(),
  /** The operators' taints on the node (coordinator state, see TaintSchema); absent when it has none. */
  taints: z.array(TaintSchema).max(32).optional(),
  lastSeen: EpochMsSchema,
  snapshot: UsageSnapshotSchema,
});
export type NodeView = z.infer<typeof NodeViewSchema>;

/** Token-bucket rate: `count` operations per `per`. Hourly rates are kept as such, never divided down to zero. */
export const RateSchema = z.object({ count: z.int().min(1).max(1_000_000_000), per: z.enum(['second', 'minute', 'hour']) });
export type Rate = z.infer<typeof RateSchema>;

export const TenantQuotaSchema = z.object({
  tenantId: TenantIdSchema,
  maxVms: z.int().min(0).optional(),
  maxVcpus: z.int().min(0).optional(),
  maxMemoryMiB: z.int().min(0).optional(),
  maxVmsPerNode: z.int().min(0).optional(),
  /**
   * Hugepages the tenant's VMs may hold, in MiB of pages per page size (Kubernetes' ResourceQuota
   * `requests.hugepages-2Mi`), counted apart from maxMemoryMiB as hosts count them apart from memory. A size absent:
   * unlimited; 0: none.
   */
  maxHugepagesMiB: z.object({ '2Mi': z.int().min(0).optional(), '1Gi': z.int().min(0).optional() }).optional(),
  /**
   * The priority of every place and check of the tenant, whatever the request names (the coordinator sets it).
   * Absent: the coordinator's configured default (tenantDefaults.priority, 0).
   */
  priority: PrioritySchema.optional(),
  /** Whether the tenant's places that ask for preemption may have it. Absent: the configured default (denied). */
  allowPreemption: z.boolean().optional(),
  /**
   * The highest host CPU overcommit ratio the tenant's shared vCPUs accept (see CpuOptions.maxOvercommit): set on each
   * of its places (the lower of the two when the request names one). Absent: the request's own bound, if any.
   */
  maxCpuOvercommit: OvercommitRatioSchema.optional(),
  /** Rate limits on place and release; several may apply at once (per second and per hour). */
  placeRates: z.array(RateSchema).max(3).default([]),
  releaseRates: z.array(RateSchema).max(3).default([]),
});
export type TenantQuota = z.infer<typeof TenantQuotaSchema>;

/** Preemption only evicts allocations at least this many priority points below the request. */
export const PREEMPTION_PRIORITY_GAP = 10;
