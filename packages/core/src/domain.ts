import { z } from 'zod';

/*
 * Domain types. Every TypeScript type is inferred from its zod schema, so the schema is the one source of truth.
 * Integer accounting throughout: memory in MiB, CPU in vCPUs and logical core ids, time in epoch milliseconds.
 * Ratios and percentages appear only in configuration and in reported metrics, never in the ledger.
 */

// ---------- scalars ----------

/** Upper bounds keep a hostile message from asking for 2^53 MiB; a single host of 1 PiB is already far beyond reality. */
export const MAX_MEMORY_MIB = 1 << 30; // 1 PiB in MiB
export const MAX_VCPUS = 1 << 16;
export const MAX_CORE_ID = 1 << 16;

export const MemoryMiBSchema = z.int().min(0).max(MAX_MEMORY_MIB);
export const VcpuCountSchema = z.int().min(0).max(MAX_VCPUS);
export const CoreIdSchema = z.int().min(0).max(MAX_CORE_ID);
export const EpochMsSchema = z.int().min(0);

/** Ids that may appear as a NATS subject token or a KV key: no dots, spaces or wildcards. */
const TOKEN = /^[A-Za-z0-9_-]+$/;
/** Request ids are chosen by callers (a scheduler's own ids, UUIDs, ULIDs): a little more room, still no subject syntax. */
const REQUEST_ID = /^[A-Za-z0-9_:=-]+$/;

export const NodeIdSchema = z.string().min(1).max(64).regex(TOKEN, 'letters, digits, "_" and "-" only');
export const TenantIdSchema = z.string().min(1).max(64).regex(TOKEN, 'letters, digits, "_" and "-" only');
export const RequestIdSchema = z.string().min(1).max(128).regex(REQUEST_ID, 'letters, digits, "_", ":", "=" and "-" only');
export const AllocationIdSchema = z.string().min(1).max(160).regex(REQUEST_ID, 'letters, digits, "_", ":", "=" and "-" only');
export const PrioritySchema = z.int().min(0).max(1000);

/** Free-form key/value metadata, bounded so that a request can never grow a ledger record without limit. */
export const MAX_METADATA_KEYS = 32;
export const MetadataSchema = z
  .record(z.string().min(1).max(64), z.string().max(256))
  .refine((m) => Object.keys(m).length <= MAX_METADATA_KEYS, { message: `at most ${MAX_METADATA_KEYS} metadata keys` });

/**
 * An anti-affinity group: at most maxPerNode live allocations of the group on one node. The scheduler names it in the
 * placement options; the coordinator sends it to the agent as the allocate request's `group`, which the agent counts
 * and enforces (the coordinator's view may be stale).
 */
export const AntiAffinityGroupSchema = z.object({ name: z.string().min(1).max(64), maxPerNode: z.int().min(1).max(10_000) });
export type AntiAffinityGroup = z.infer<typeof AntiAffinityGroupSchema>;

/**
 * Groups are per tenant (as kube's inter-pod affinity is per namespace): a group constraint counts only allocations of
 * the same tenant with that name, so no tenant can steer or learn another's placements by naming its group. Hosts count
 * live allocations under this key (the snapshot's `groups`); a tenant id holds no "/", so the key is unambiguous.
 */
export function tenantGroupKey(tenantId: string, group: string): string {
  return `${tenantId}/${group}`;
}

/**
 * Before the typed `group` field, the group travelled in these metadata keys. Agents still count allocations journaled
 * with `allot.group` (a ledger written by an older agent replays with the same counts); nothing writes them any more.
 */
export const LEGACY_GROUP_METADATA_KEY = 'allot.group';

/** Node labels (zone, rack, anything): the same bounds as metadata. */
export const LabelsSchema = MetadataSchema;

// ---------- resource types ----------

/**
 * Resource types. memory and cpu have managers today; disk, network and gpu are reserved names; any other type is
 * written `custom:<name>` and becomes usable by registering a manager for it. Anything else is rejected.
 */
export const BUILTIN_RESOURCE_TYPES = ['memory', 'cpu', 'disk', 'network', 'gpu'] as const;
export const ResourceTypeSchema = z.union([
  z.enum(BUILTIN_RESOURCE_TYPES),
  z.string().regex(/^custom:[a-z][a-z0-9_-]{0,31}$/, 'a builtin type or custom:<name>') as z.ZodType<`custom:${string}`>,
]);
export type ResourceType = z.infer<typeof ResourceTypeSchema>;

/** Amounts of every resource a request asks for. memory and cpu are first-class; other types go in `extra`. */
export const ResourceAmountsSchema = z.object({
  memoryMiB: MemoryMiBSchema,
  vcpus: VcpuCountSchema,
  extra: z
    .record(ResourceTypeSchema, z.int().min(0).max(Number.MAX_SAFE_INTEGER))
    .refine((m) => Object.keys(m).length <= 8, { message: 'at most 8 extra resource types' })
    .optional(),
});
export type ResourceAmounts = z.infer<typeof ResourceAmountsSchema>;

// ---------- requests ----------

/**
 * NUMA locality of a request's cores:
 * - any: no preference.
 * - prefer: keep the cores on one NUMA node when possible, fall back to spanning nodes (the allocation says so).
 * - require: one NUMA node or refuse.
 */
export const NumaPolicySchema = z.enum(['any', 'prefer', 'require']);
export type NumaPolicy = z.infer<typeof NumaPolicySchema>;

/** How a host chooses a grant's cores (the host's configured policy, or a request's own). */
export const CPU_POLICIES = ['first-fit', 'best-fit', 'round-robin', 'affinity-aware'] as const;
export const CpuPolicySchema = z.enum(CPU_POLICIES);
export type CpuPolicy = z.infer<typeof CpuPolicySchema>;

/**
 * How an exclusive grant treats SMT siblings (Nova's hw:cpu_thread_policy, the kubelet's full-pcpus-only):
 * - isolate: one vCPU per physical core; the core's other threads are held idle for the grant (nobody else gets
 *   them) and count as used.
 * - require: whole physical cores, every thread of each (vCPUs a multiple of the threads per core); refused on a
 *   host without SMT.
 * - prefer: whole physical cores first, the remainder from one partly used core; never refused for the shape.
 */
export const CPU_THREAD_POLICIES = ['isolate', 'require', 'prefer'] as const;
export const CpuThreadPolicySchema = z.enum(CPU_THREAD_POLICIES);
export type CpuThreadPolicy = z.infer<typeof CpuThreadPolicySchema>;

/** vCPUs (or MiB) committed per physical unit: a real number >= 1 with at most two decimals. */
export const OvercommitRatioSchema = z
  .number()
  .min(1)
  .max(64)
  .refine((r) => Math.abs(Math.round(r * 100) - r * 100) < 1e-9, { message: 'at most two decimals' });

export const CpuOptionsSchema = z.object({
  /** Whole dedicated cores taken out of the shared pool, pinned, never overcommitted. */
  exclusive: z.boolean().default(false),
  numa: NumaPolicySchema.default('any'),
  /** Only with exclusive: how SMT siblings are used; absent, the core policy alone decides (it may split siblings). */
  threadPolicy: CpuThreadPolicySchema.optional(),
  /** The core policy for this request (a flavor's), overriding the host's configured one. */
  policy: CpuPolicySchema.optional(),
  /**
   * The highest CPU overcommit ratio of a host this request's shared vCPUs accept (a flavor's bound, like an aggregate
   * with its own cpu_allocation_ratio in Nova; 1: no oversubscribed cores, what kube's guaranteed QoS expects). A host
   * whose ratio is above it is filtered out and its agent refuses the request. Exclusive cores are never overcommitted,
   * so it binds only a shared request. Absent: any host. A tenant's quota may carry one too (the lower applies).
   */
  maxOvercommit: OvercommitRatioSchema.optional(),
});
export type CpuOptions = z.infer<typeof CpuOptionsSchema>;

/** Hugepage sizes a request may ask for, in MiB: 2 MiB and 1 GiB pages (x86-64). */
export const HugepageSizeMiBSchema = z.union([z.literal(2), z.literal(1024)]);
export type HugepageSizeMiB = z.infer<typeof HugepageSizeMiBSchema>;

/** Hugepages as their own resource: `count` pages of one size, taken from one NUMA node. */
export const HugepagesRequestSchema = z.object({
  pageSizeMiB: HugepageSizeMiBSchema,
  count: z.int().min(1).max(16_777_216),
});
export type HugepagesRequest = z.infer<typeof HugepagesRequestSchema>;

/**
 * Where a request's memory comes from (the kubelet Memory Manager's static policy, Nova's hw:numa_mem and
 * hw:mem_page_size). Absent: memoryMiB is accounted host-wide only and floats over the NUMA nodes.
 */
export const MemoryOptionsSchema = z.object({
  /** Take memoryMiB (and the hugepages) from this NUMA node, or refuse naming it; absent: memory floats. */
  numaNode: z.int().min(0).max(255).optional(),
  /** Hugepages besides memoryMiB, from numaNode when named, else from the lowest node that has them. */
  hugepages: HugepagesRequestSchema.optional(),
});
export type MemoryOptions = z.infer<typeof MemoryOptionsSchema>;

export const MAX_RESERVATION_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * What a caller asks for. `requestId` is the idempotency key: the same id with the same request returns the same
 * allocation; the same id with a different request is a conflict.
 */
export const AllocationRequestSchema = z
  .object({
    requestId: RequestIdSchema,
    tenantId: TenantIdSchema,
    resources: ResourceAmountsSchema,
    priority: PrioritySchema.default(0),
    cpu: CpuOptionsSchema.default({ exclusive: false, numa: 'any' }),
    /** NUMA-local memory and hugepages; absent in requests from peers that predate it (memory then floats). */
    memory: MemoryOptionsSchema.optional(),
    /** A temporary hold: the capacity is held until activated or until ttlMs passes, then released automatically. */
    reservation: z.object({ ttlMs: z.int().min(1).max(MAX_RESERVATION_TTL_MS) }).optional(),
    /** Anti-affinity: the agent refuses this request when the group already has maxPerNode live allocations there. */
    group: AntiAffinityGroupSchema.optional(),
    /** Required per-node affinity: the agent refuses this request unless each group has a live allocation there. */
    affinity: z.array(z.string().min(1).max(64)).max(8).optional(),
    metadata: MetadataSchema.default({}),
  })
  .refine(
    (r) =>
      r.resources.memoryMiB > 0 ||
      r.resources.vcpus > 0 ||
      r.memory?.hugepages !== undefined ||
      Object.values(r.resources.extra ?? {}).some((v) => v > 0),
    {
      message: 'a request must ask for some resource',
      path: ['resources'],
    },
  );
export type AllocationRequest = z.infer<typeof AllocationRequestSchema>;
/** The request as a caller may write it: defaults filled in by parsing. */
export type AllocationRequestInput = z.input<typeof AllocationRequestSchema>;

// ---------- allocations ----------

export const AllocationStatusSchema = z.enum(['active', 'reserved', 'releasing', 'released', 'failed']);
export type AllocationStatus = z.infer<typeof AllocationStatusSchema>;

export const CpuModeSchema = z.enum(['shared', 'exclusive']);
export type CpuMode = z.infer<typeof CpuModeSchema>;

/** What a host granted. The cpuset is what the hypervisor pins the VM's vCPU threads to. */
export const CpuGrantSchema = z.object({
  mode: CpuModeSchema,
  vcpus: VcpuCountSchema,
  /** Logical core ids: the dedicated cores (exclusive) or the shared-pool cores the vCPUs float over (shared). */
  cpuset: z.array(CoreIdSchema).max(MAX_VCPUS),
  /** The NUMA nodes the cpuset spans. */
  numaNodes: z.array(z.int().min(0)).max(256),
  /** True when the request preferred one NUMA node and the grant had to span several. */
  numaFallback: z.boolean(),
  /** The placement policy that chose the cores (first-fit, best-fit, round-robin, affinity-aware). */
  policy: z.string().max(32),
  /** The thread policy the grant was made under, when the request named one. */
  threadPolicy: CpuThreadPolicySchema.optional(),
  /** isolate: the SMT siblings of the cpuset's cores, held idle for this grant (counted as used, granted to nobody). */
  idleSiblings: z.array(CoreIdSchema).max(MAX_VCPUS).optional(),
});
export type CpuGrant = z.infer<typeof CpuGrantSchema>;

/**
 * Where a host took an allocation's memory from, recorded so a restart restores exactly that: `numaNode` when
 * memoryMiB was taken from one node (absent: it floats), `hugepages` with the node its pages came from.
 */
export const MemoryGrantSchema = z.object({
  numaNode: z.int().min(0).max(255).optional(),
  hugepages: HugepagesRequestSchema.extend({ numaNode: z.int().min(0).max(255) }).optional(),
});
export type MemoryGrant = z.infer<typeof MemoryGrantSchema>;

/**
 * A fencing epoch: the attempt number a coordinator drives a request id at (see docs/architecture.md, "Fencing").
 * The agent keeps the highest one seen per request id and refuses lower ones.
 */
export const FenceSchema = z.int().min(1).max(Number.MAX_SAFE_INTEGER);

export const AllocationSchema = z.object({
  id: AllocationIdSchema,
  requestId: RequestIdSchema,
  tenantId: TenantIdSchema,
  nodeId: NodeIdSchema,
  request: AllocationRequestSchema,
  granted: ResourceAmountsSchema,
  cpu: CpuGrantSchema.nullable(),
  /** Present when the request named a NUMA node or hugepages; absent in ledgers written before it. */
  memory: MemoryGrantSchema.optional(),
  status: AllocationStatusSchema,
  priority: PrioritySchema,
  createdAt: EpochMsSchema,
  updatedAt: EpochMsSchema,
  /** Set while status is `reserved`: the hold is released automatically at this instant, also across restarts. */
  expiresAt: EpochMsSchema.optional(),
  /** The fencing epoch it was committed at; absent when not made by a coordinator's drive. */
  fence: FenceSchema.optional(),
});
export type Allocation = z.infer<typeof AllocationSchema>;

/** Statuses that hold capacity. */
export function holdsCapacity(status: AllocationStatus): boolean {
  return status === 'active' || status === 'reserved' || status === 'releasing';
}

// ---------- limits ----------

/**
 * Capacity limits of one resource on one host.
 * effective capacity = floor((capacity - systemReserve) x overcommitRatio), and never above hardLimit when set.
 * overcommitRatio is configuration (a real number >= 1 with at most two decimals); it is applied as an integer
 * percentage so the result is exact.
 */
export const LimitsSchema = z
  .object({
    capacity: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    systemReserve: z.int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
    overcommitRatio: OvercommitRatioSchema.default(1),
    /** Crossing the soft limit (committed) makes health Degraded; it does not refuse. */
    softLimit: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    /** Committed never exceeds the hard limit, whatever the overcommit ratio. */
    hardLimit: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .refine((l) => l.systemReserve <= l.capacity, { message: 'systemReserve must not exceed capacity', path: ['systemReserve'] })
  .refine((l) => l.softLimit === undefined || l.hardLimit === undefined || l.softLimit <= l.hardLimit, {
    message: 'softLimit must not exceed hardLimit',
    path: ['softLimit'],
  });
export type Limits = z.infer<typeof LimitsSchema>;
export type LimitsInput = z.input<typeof LimitsSchema>;

/** Exact integer effective capacity; see LimitsSchema. */
export function effectiveCapacity(limits: Pick<Limits, 'capacity' | 'systemReserve' | 'overcommitRatio' | 'hardLimit'>): number {
  const percent = Math.round(limits.overcommitRatio * 100);
  const base = Math.max(0, limits.capacity - limits.systemReserve);
  const effective = Math.floor((base * percent) / 100);
  return limits.hardLimit === undefined ? effective : Math.min(effective, limits.hardLimit);
}

// ---------- usage ----------

export const ResourceUsageSchema = z.object({
  resourceType: ResourceTypeSchema,
  unit: z.enum(['MiB', 'vCPU', 'unit']),
  capacity: z.int().min(0),
  systemReserve: z.int().min(0),
  effectiveCapacity: z.int().min(0),
  /** Held by live allocations and reservations. */
  committed: z.int().min(0),
  /** Really in use on the host, from the probe (MiB used; for CPU, busy cores x 1000 / 1000 rounded to vCPUs). */
  used: z.int().min(0),
  /** Of committed, the part held by reservations not yet activated. */
  reserved: z.int().min(0),
  allocationCount: z.int().min(0),
});
export type ResourceUsage = z.infer<typeof ResourceUsageSchema>;

/** One logical core as the CPU manager sees it. */
export const CoreStateSchema = z.object({
  id: CoreIdSchema,
  /** Physical core id (SMT siblings share it), NUMA node and socket. */
  core: z.int().min(0),
  numa: z.int().min(0),
  socket: z.int().min(0),
  role: z.enum(['shared', 'exclusive', 'reserved']),
  /** The allocation that holds an exclusive core. */
  allocationId: AllocationIdSchema.optional(),
  /** Real utilization from the probe, per mille (0..1000), so it stays an integer. */
  utilizationPermille: z.int().min(0).max(1000),
});
export type CoreState = z.infer<typeof CoreStateSchema>;

/** One NUMA node's cores by role, as counted in a usage snapshot. */
export const NumaCoresSchema = z.object({
  node: z.int().min(0),
  sharedCores: z.int().min(0),
  exclusiveCores: z.int().min(0),
  reservedCores: z.int().min(0),
  /**
   * Of sharedCores, those carrying no shared vCPU: what an exclusive request bound to this node can take (the agent
   * takes only such cores). Absent from agents before it: placement then counts sharedCores (optimistic).
   */
  idleCores: z.int().min(0).optional(),
  /**
   * Physical cores whose every thread is an idle pool core: what the thread policies isolate and require take (one
   * vCPU per such core, or all its threads). Absent from agents before it.
   */
  wholeIdleCores: z.int().min(0).optional(),
  /** Threads per physical core on this node (SMT), 0 when they differ. Absent from agents before it. */
  threadsPerCore: z.int().min(0).optional(),
});
export type NumaCores = z.infer<typeof NumaCoresSchema>;

export const CpuUsageSchema = ResourceUsageSchema.extend({
  sharedCores: z.int().min(0),
  exclusiveCores: z.int().min(0),
  reservedCores: z.int().min(0),
  /** vCPUs committed on the shared pool and its effective vCPU capacity. */
  sharedVcpusCommitted: z.int().min(0),
  sharedVcpusCapacity: z.int().min(0),
  /**
   * The per-core list. Empty in a heartbeat whose list did not change since the agent last published it (`coresDigest`
   * names that list): a reader keeps the list it holds under the same digest (docs/architecture.md, "Heartbeats").
   */
  cores: z.array(CoreStateSchema),
  /** A digest of the per-core layout (ids, places, roles, holders; not utilization). Absent from older agents. */
  coresDigest: z.string().max(64).optional(),
  /** Per NUMA node, its shared, exclusive and reserved cores: what placement reads when a heartbeat omits the list. */
  numa: z.array(NumaCoresSchema).max(256).optional(),
});
export type CpuUsage = z.infer<typeof CpuUsageSchema>;

/** One hugepage size on one NUMA node, in pages: `total` from the host, `used` by allocations. */
export const HugepageUsageSchema = z.object({
  pageSizeMiB: z.int().min(1),
  total: z.int().min(0),
  used: z.int().min(0),
  free: z.int().min(0),
});
export type HugepageUsage = z.infer<typeof HugepageUsageSchema>;

/**
 * One NUMA node's memory as the host accounts it: `capacityMiB` (the node's memory less its hugepage pools),
 * `pinnedMiB` (held by allocations that named the node), `freeMiB` (what a request naming it could take now: the
 * node's room, and never more than the host's), and its hugepages.
 */
export const NumaMemoryUsageSchema = z.object({
  node: z.int().min(0),
  capacityMiB: z.int().min(0),
  pinnedMiB: z.int().min(0),
  freeMiB: z.int().min(0),
  hugepages: z.array(HugepageUsageSchema).max(8),
});
export type NumaMemoryUsage = z.infer<typeof NumaMemoryUsageSchema>;

/** Memory's usage, with the per-NUMA-node figures when the host knows its nodes (absent from older agents). */
export const MemoryUsageSchema = ResourceUsageSchema.extend({
  numa: z.array(NumaMemoryUsageSchema).max(256).optional(),
});
export type MemoryUsage = z.infer<typeof MemoryUsageSchema>;

// ---------- health ----------

export const HealthSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('healthy') }),
  z.object({ status: z.literal('degraded'), reasons: z.array(z.string().max(512)).min(1) }),
  z.object({ status: z.literal('unhealthy'), reasons: z.array(z.string().max(512)).min(1) }),
  z.object({ status: z.literal('stopped') }),
]);
export type Health = z.infer<typeof HealthSchema>;
export type HealthStatus = Health['status'];

const HEALTH_RANK: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2, stopped: 3 };

/** The worst of several healths, keeping every reason (a composite reports all its children's problems). */
export function worstHealth(healths: readonly Health[]): Health {
  let worst: HealthStatus = 'healthy';
  const reasons: string[] = [];
  for (const h of healths) {
    if (HEALTH_RANK[h.status] > HEALTH_RANK[worst]) worst = h.status;
    if (h.status === 'degraded' || h.status === 'unhealthy') reasons.push(...h.reasons);
  }
  if (worst === 'healthy' || worst === 'stopped') return { status: worst };
  return { status: worst, reasons };
}

// ---------- metrics ----------

export const LatencySummarySchema = z.object({
  count: z.int().min(0),
  p50Ms: z.number().min(0),
  p99Ms: z.number().min(0),
  maxMs: z.number().min(0),
});

export const ManagerMetricsSchema = z.object({
  allocations: z.int().min(0),
  releases: z.int().min(0),
  reservations: z.int().min(0),
  activations: z.int().min(0),
  expirations: z.int().min(0),
  /** Refusals counted by error code (insufficient_capacity, conflict, ...). */
  refusals: z.record(z.string(), z.int().min(0)),
  allocateLatency: LatencySummarySchema,
  restarts: z.int().min(0),
  uptimeMs: z.int().min(0),
});
export type ManagerMetrics = z.infer<typeof ManagerMetricsSchema>;

/**
 * Efficiency figures (ratios in 0..1, reported, never stored in the ledger):
 * - allocationEfficiency: really used / committed (how much of what was handed out is used).
 * - utilizationEfficiency: really used / effective capacity.
 * - fragmentation: the share of free capacity that cannot serve one more request of the reference size
 *   (for CPU exclusive requests, cores stranded on NUMA nodes too small; for memory, 0 unless per-NUMA limits apply).
 */
export const EfficiencyMetricsSchema = z.object({
  resourceType: ResourceTypeSchema,
  allocationEfficiency: z.number().min(0),
  utilizationEfficiency: z.number().min(0),
  fragmentation: z.number().min(0).max(1),
  /** The request size the fragmentation figure is computed against (the most common size seen, or the configured one). */
  referenceRequest: z.int().min(0),
  /** How many more requests of the reference size would fit now. */
  referenceRequestsThatFit: z.int().min(0),
});
export type EfficiencyMetrics = z.infer<typeof EfficiencyMetricsSchema>;

/** getStatus: what an operator asks first. */
export const ManagerStatusSchema = z.object({
  name: z.string(),
  resourceTypes: z.array(ResourceTypeSchema),
  running: z.boolean(),
  health: HealthSchema,
  startedAt: EpochMsSchema.optional(),
  allocationCount: z.int().min(0),
});
export type ManagerStatus = z.infer<typeof ManagerStatusSchema>;

/** exportTelemetry: one flat JSON document, keys dotted (`memory.committed`), values numbers, strings or booleans. */
export type Telemetry = Record<string, number | string | boolean>;
