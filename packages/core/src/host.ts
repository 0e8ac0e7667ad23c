import { z } from 'zod';
import {
  AllocationIdSchema,
  AllocationRequestSchema,
  CpuUsageSchema,
  MemoryUsageSchema,
  EpochMsSchema,
  FenceSchema,
  HealthSchema,
  LabelsSchema,
  MemoryMiBSchema,
  NodeIdSchema,
  OvercommitRatioSchema,
  RequestIdSchema,
  ResourceUsageSchema,
  TenantIdSchema,
  VcpuCountSchema,
} from './domain.ts';
import { PriorityUsageListSchema } from './priority-usage.ts';

/*
 * A host's side of the domain: the commands its HostManager takes (a request with the fence of a coordinator's
 * drive, a release target), a patch of its limits, and the usage it reports. @allot/protocol carries them in messages.
 */

/**
 * The fencing epoch a coordinator sends with a drive of a request id (see docs/architecture.md, "Fencing"). Not part
 * of the request the agent stores: a retry at a higher epoch is the same request.
 */
export const FencedSchema = z.object({ fence: FenceSchema.optional() });

export const AgentAllocateRequestSchema = AllocationRequestSchema.and(FencedSchema);
export type AgentAllocateRequest = z.infer<typeof AgentAllocateRequestSchema>;

export const AgentReleaseRequestSchema = z
  .object({
    requestId: RequestIdSchema,
    allocationId: AllocationIdSchema.optional(),
    allocationRequestId: RequestIdSchema.optional(),
    /** Why (released by the tenant, preempted by <requestId>, drained); goes to the events stream. */
    reason: z.string().max(256).optional(),
    /** Refused (`conflict`, reason `fenced`) when the allocation's request id was fenced higher since. */
    fence: FenceSchema.optional(),
  })
  .refine((r) => r.allocationId !== undefined || r.allocationRequestId !== undefined, {
    message: 'name the allocation by allocationId or allocationRequestId',
    path: ['allocationId'],
  });
export type AgentReleaseRequest = z.infer<typeof AgentReleaseRequestSchema>;

/** Most victims one preempt may name. */
export const MAX_PREEMPTION_VICTIMS = 64;

/** A resize's new amounts: memory and vCPUs, each kept above 0 when the allocation holds some (and at 0 when it holds none). */
export const ResizeAmountsSchema = z.object({ memoryMiB: MemoryMiBSchema, vcpus: VcpuCountSchema });

/**
 * resize: grow or shrink a live, active allocation's memory and vCPUs in place, all or nothing, one ledger record.
 * `requestId` is the resize's own idempotency key (a retry answers the durable result; another resize under it is a
 * `conflict`). A growth that does not fit is `insufficient_capacity` with { resourceType, requested (the growth),
 * free, effectiveCapacity, from, to }; a reservation or a released allocation is `conflict` with reason `not_active`.
 * Exclusive cores: a grow adds cores chosen by the host's CPU policy, a shrink returns the highest core ids.
 */
export const AgentResizeRequestSchema = z.object({
  requestId: RequestIdSchema,
  allocationId: AllocationIdSchema,
  resources: ResizeAmountsSchema,
  /** Refused (`conflict`, reason `fenced`) when the allocation's request id was fenced higher since. */
  fence: FenceSchema.optional(),
});
export type AgentResizeRequest = z.infer<typeof AgentResizeRequestSchema>;

const LimitFigureSchema = z.int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * A change to one resource's limits: only the fields named change, and nothing has a default (a default here would
 * reset the reserve or the ratio of every update that does not name them). `null` removes a soft or hard limit. The
 * agent validates the limits that result.
 */
export const LimitsPatchSchema = z.object({
  capacity: LimitFigureSchema.optional(),
  systemReserve: LimitFigureSchema.optional(),
  overcommitRatio: OvercommitRatioSchema.optional(),
  softLimit: LimitFigureSchema.nullable().optional(),
  hardLimit: LimitFigureSchema.nullable().optional(),
});
export type LimitsPatch = z.infer<typeof LimitsPatchSchema>;

/** Per-tenant and per-group counts on a node: what quotas and anti-affinity need without listing allocations. */
export const TenantUsageSchema = z.object({ vms: z.int().min(0), memoryMiB: z.int().min(0), vcpus: z.int().min(0) });
export type TenantUsage = z.infer<typeof TenantUsageSchema>;

/**
 * A node's usage snapshot, published to the usage stream on change (coalesced) and at every heartbeat. The coordinator's
 * cluster view is built from these alone; `seq` grows with every ledger change so a stale snapshot is recognisable.
 */
export const UsageSnapshotSchema = z.object({
  nodeId: NodeIdSchema,
  /** The agent's incarnation: changes at every start. */
  bootId: z.string().max(64),
  /** Ledger sequence of the state this snapshot shows. */
  seq: z.int().min(0),
  at: EpochMsSchema,
  labels: LabelsSchema,
  cordoned: z.boolean(),
  health: HealthSchema,
  memory: MemoryUsageSchema,
  cpu: CpuUsageSchema,
  /** Counted resources besides memory and CPU (disk, custom:<name>, ...), when the host offers any. */
  extra: z.array(ResourceUsageSchema).max(64).optional(),
  overcommit: z.object({ memory: z.number().min(1), cpu: z.number().min(1) }),
  tenants: z.record(TenantIdSchema, TenantUsageSchema),
  /** Live allocations per anti-affinity group, keyed by tenant and group (tenantGroupKey: groups are per tenant). */
  groups: z.record(z.string(), z.int().min(0)),
  allocationCount: z.int().min(0),
  /**
   * Per priority level, what the preemptible allocations hold (priority-usage.ts), ascending: the preemption
   * post-filter's only input about victims. Absent from older agents: their nodes are never planned on for preemption.
   */
  priorities: PriorityUsageListSchema.optional(),
  /** Milliseconds between heartbeats, so a reader can judge staleness without configuration. */
  heartbeatMs: z.int().min(1),
  /**
   * An idle host sends its status only this often (the agent's idleStatusMs, when set): its node lease renewals are its
   * liveness, and a coordinator that watches the leases judges it by them. Absent (older agents, or not set): every
   * heartbeat. Older coordinators drop the key.
   */
  idleStatusMs: z.int().min(1).optional(),
});
export type UsageSnapshot = z.infer<typeof UsageSnapshotSchema>;
