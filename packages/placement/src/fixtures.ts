import {
  preemptibleShare,
  priorityUsage,
  tenantGroupKey,
  type Allocation,
  type AllocationRequest,
  type Health,
  type NodeLiveness,
  type NodeView,
  type PriorityUsage,
  type Taint,
} from '@allot/core';

/*
 * Builders of realistic node views and requests for tests and benchmarks (not exported from the package).
 * Figures follow the agent's arithmetic: effective capacity = floor((capacity - reserve) x ratio).
 */

export interface NodeShape {
  id: string;
  memoryMiB?: number;
  memoryCommitted?: number;
  /** Logical cores, all shared unless exclusiveCores/reservedCores say otherwise; spread evenly over numaNodes. */
  cores?: number;
  exclusiveCores?: number;
  reservedCores?: number;
  numaNodes?: number;
  cpuOvercommit?: number;
  sharedVcpusCommitted?: number;
  labels?: Record<string, string>;
  cordoned?: boolean;
  health?: Health;
  liveness?: NodeLiveness;
  tenants?: Record<string, { vms: number; memoryMiB: number; vcpus: number }>;
  /** Live allocations per group of the fixtures' tenant t1 (keyed per tenant in the snapshot: tenantGroupKey). */
  groups?: Record<string, number>;
  taints?: Taint[];
  /** What the preemptible allocations hold per priority level (the snapshot's `priorities`). */
  priorities?: PriorityUsage[];
  seq?: number;
}

export function nodeView(shape: NodeShape): NodeView {
  const cores = shape.cores ?? 16;
  const reserved = shape.reservedCores ?? 0;
  const exclusive = shape.exclusiveCores ?? 0;
  const numaNodes = shape.numaNodes ?? 1;
  const ratio = shape.cpuOvercommit ?? 1;
  const shared = cores - reserved - exclusive;
  const sharedVcpusCapacity = Math.floor((shared * Math.round(ratio * 100)) / 100);
  const sharedVcpusCommitted = shape.sharedVcpusCommitted ?? 0;
  const memoryMiB = shape.memoryMiB ?? 65536;
  const perNuma = Math.ceil(cores / numaNodes);
  const coreStates = Array.from({ length: cores }, (_, id) => ({
    id,
    core: id,
    numa: Math.floor(id / perNuma),
    socket: 0,
    role: (id < reserved ? 'reserved' : id < reserved + exclusive ? 'exclusive' : 'shared') as 'reserved' | 'exclusive' | 'shared',
    utilizationPermille: 0,
  }));
  return {
    nodeId: shape.id,
    liveness: shape.liveness ?? 'ready',
    ...(shape.taints === undefined ? {} : { taints: shape.taints }),
    lastSeen: 1_000,
    snapshot: {
      nodeId: shape.id,
      bootId: 'boot-1',
      seq: shape.seq ?? 1,
      at: 1_000,
      labels: shape.labels ?? {},
      cordoned: shape.cordoned ?? false,
      health: shape.health ?? { status: 'healthy' },
      memory: {
        resourceType: 'memory',
        unit: 'MiB',
        capacity: memoryMiB,
        systemReserve: 0,
        effectiveCapacity: memoryMiB,
        committed: shape.memoryCommitted ?? 0,
        used: 0,
        reserved: 0,
        allocationCount: 0,
      },
      cpu: {
        resourceType: 'cpu',
        unit: 'vCPU',
        capacity: cores,
        systemReserve: reserved,
        effectiveCapacity: sharedVcpusCapacity + exclusive,
        committed: sharedVcpusCommitted + exclusive,
        used: 0,
        reserved: 0,
        allocationCount: 0,
        sharedCores: shared,
        exclusiveCores: exclusive,
        reservedCores: reserved,
        sharedVcpusCommitted,
        sharedVcpusCapacity,
        cores: coreStates,
      },
      overcommit: { memory: 1, cpu: ratio },
      tenants: shape.tenants ?? {},
      groups: Object.fromEntries(Object.entries(shape.groups ?? {}).map(([name, n]) => [tenantGroupKey('t1', name), n])),
      allocationCount: 0,
      ...(shape.priorities === undefined ? {} : { priorities: shape.priorities }),
      heartbeatMs: 1_000,
    },
  };
}

export function allocationRequest(memoryMiB: number, vcpus: number, more: Partial<AllocationRequest> = {}): AllocationRequest {
  return {
    requestId: 'req-1',
    tenantId: 't1',
    resources: { memoryMiB, vcpus },
    priority: 0,
    cpu: { exclusive: false, numa: 'any' },
    metadata: {},
    ...more,
  };
}

export function allocation(id: string, nodeId: string, memoryMiB: number, vcpus: number, priority: number, exclusive = false): Allocation {
  const request = allocationRequest(memoryMiB, vcpus, { requestId: `r-${id}`, priority, cpu: { exclusive, numa: 'any' } });
  return {
    id,
    requestId: request.requestId,
    tenantId: 't1',
    nodeId,
    request,
    granted: { memoryMiB, vcpus },
    cpu: {
      mode: exclusive ? 'exclusive' : 'shared',
      vcpus,
      cpuset: exclusive ? Array.from({ length: vcpus }, (_, i) => 100 + i) : [],
      numaNodes: [0],
      numaFallback: false,
      policy: 'first-fit',
    },
    status: 'active',
    priority,
    createdAt: 1,
    updatedAt: 1,
  };
}

/**
 * A node holding these allocations, as its agent would publish it: memory and shared vCPUs committed, exclusive cores
 * taken out of the shared pool, and the per-priority figures (priorityUsage).
 */
export function nodeHolding(shape: NodeShape, allocations: readonly Allocation[]): NodeView {
  let memory = 0;
  let shared = 0;
  let exclusive = 0;
  for (const a of allocations) {
    const s = preemptibleShare(a);
    memory += s.memoryMiB;
    shared += s.sharedVcpus;
    exclusive += s.exclusiveCores;
  }
  return nodeView({
    ...shape,
    memoryCommitted: (shape.memoryCommitted ?? 0) + memory,
    sharedVcpusCommitted: (shape.sharedVcpusCommitted ?? 0) + shared,
    exclusiveCores: (shape.exclusiveCores ?? 0) + exclusive,
    priorities: priorityUsage(allocations),
  });
}
