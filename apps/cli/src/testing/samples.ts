import type { Allocation, CoreState, NodeView, UsageSnapshot } from '@allot/core';
import type { ClusterUsage } from '@allot/protocol';

/** Sample replies shaped exactly as the contract says, for rendering tests and the fake scheduler. */

export const NOW = 1_750_000_000_000;

function cores(count: number, numaNodes: number): CoreState[] {
  return Array.from({ length: count }, (_, id) => ({
    id,
    core: Math.floor(id / 2),
    numa: Math.floor((id * numaNodes) / count),
    socket: Math.floor((id * numaNodes) / count),
    role: id === 0 ? ('reserved' as const) : id === 2 || id === 3 ? ('exclusive' as const) : ('shared' as const),
    ...(id === 2 || id === 3 ? { allocationId: 'alloc-db-1' } : {}),
    utilizationPermille: id * 37,
  }));
}

export function sampleSnapshot(nodeId: string, overrides: Partial<UsageSnapshot> = {}): UsageSnapshot {
  return {
    nodeId,
    bootId: 'boot-1',
    seq: 12,
    at: NOW - 2000,
    labels: { zone: 'z1', rack: 'r1' },
    cordoned: false,
    health: { status: 'healthy' },
    memory: {
      resourceType: 'memory',
      unit: 'MiB',
      capacity: 131_072,
      systemReserve: 4096,
      effectiveCapacity: 126_976,
      committed: 6144,
      used: 40_960,
      reserved: 0,
      allocationCount: 2,
    },
    cpu: {
      resourceType: 'cpu',
      unit: 'vCPU',
      capacity: 8,
      systemReserve: 1,
      effectiveCapacity: 28,
      committed: 4,
      used: 1,
      reserved: 0,
      allocationCount: 2,
      sharedCores: 5,
      exclusiveCores: 2,
      reservedCores: 1,
      sharedVcpusCommitted: 2,
      sharedVcpusCapacity: 20,
      cores: cores(8, 2),
    },
    overcommit: { memory: 1, cpu: 4 },
    tenants: { demo: { vms: 2, memoryMiB: 6144, vcpus: 4 } },
    groups: {},
    allocationCount: 2,
    heartbeatMs: 2000,
    ...overrides,
  };
}

export function sampleNode(nodeId: string, overrides: Partial<NodeView> = {}, snapshot: Partial<UsageSnapshot> = {}): NodeView {
  return { nodeId, liveness: 'ready', lastSeen: NOW - 3000, snapshot: sampleSnapshot(nodeId, snapshot), ...overrides };
}

export const SAMPLE_CLUSTER_USAGE: ClusterUsage = {
  at: NOW,
  nodes: { total: 3, ready: 2, suspect: 1, lost: 0, cordoned: 1 },
  memory: { capacity: 196_608, effectiveCapacity: 180_224, committed: 8192, used: 65_536 },
  cpu: { capacity: 42, effectiveCapacity: 120, committed: 6, used: 3 },
  allocationCount: 3,
};

export function sampleAllocation(requestId: string, nodeId = 'sim-large'): Allocation {
  return {
    id: `${nodeId}:${requestId}`,
    requestId,
    tenantId: 'demo',
    nodeId,
    request: {
      requestId,
      tenantId: 'demo',
      resources: { memoryMiB: 2048, vcpus: 2 },
      priority: 0,
      cpu: { exclusive: false, numa: 'any' },
      metadata: {},
    },
    granted: { memoryMiB: 2048, vcpus: 2 },
    cpu: { mode: 'shared', vcpus: 2, cpuset: [1, 4, 5, 6, 7], numaNodes: [0, 1], numaFallback: false, policy: 'first-fit' },
    status: 'active',
    priority: 0,
    createdAt: NOW,
    updatedAt: NOW,
  };
}
