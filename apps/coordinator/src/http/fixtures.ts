import type { CoreState, UsageSnapshot } from '@allot/core';

/**
 * Synthetic usage snapshots for the dashboard's tests and for trying the page with a large cluster (no agents needed).
 * Deterministic: the same arguments give the same snapshot.
 */
export interface SyntheticNode {
  nodeId: string;
  seq?: number;
  bootId?: string;
  cores?: number;
  numaNodes?: number;
  memoryMiB?: number;
  memoryCommitted?: number;
  memoryUsed?: number;
  vcpusCommitted?: number;
  /** Exclusive cores held by allocations: allocationId -> core ids. */
  exclusive?: Record<string, number[]>;
  reservedCores?: number[];
  labels?: Record<string, string>;
  tenants?: UsageSnapshot['tenants'];
  health?: UsageSnapshot['health'];
  cordoned?: boolean;
  at?: number;
  heartbeatMs?: number;
  overcommitCpu?: number;
}

export function syntheticSnapshot(n: SyntheticNode): UsageSnapshot {
  const coresN = n.cores ?? 16;
  const numa = n.numaNodes ?? 2;
  const exclusiveOf = new Map<number, string>();
  for (const [id, cores] of Object.entries(n.exclusive ?? {})) for (const c of cores) exclusiveOf.set(c, id);
  const reserved = new Set(n.reservedCores ?? []);
  const cores: CoreState[] = [];
  for (let id = 0; id < coresN; id++) {
    const allocationId = exclusiveOf.get(id);
    const role = reserved.has(id) ? 'reserved' : allocationId !== undefined ? 'exclusive' : 'shared';
    const core: CoreState = {
      id,
      core: id,
      numa: Math.floor((id * numa) / coresN),
      socket: Math.floor((id * numa) / coresN),
      role,
      utilizationPermille: (id * 137 + (n.seq ?? 0) * 71) % 1000,
    };
    if (allocationId !== undefined) core.allocationId = allocationId;
    cores.push(core);
  }
  const exclusiveCores = exclusiveOf.size;
  const sharedCores = coresN - exclusiveCores - reserved.size;
  const ratio = n.overcommitCpu ?? 4;
  const memoryMiB = n.memoryMiB ?? 65_536;
  const vcpusCommitted = n.vcpusCommitted ?? 0;
  return {
    nodeId: n.nodeId,
    bootId: n.bootId ?? `boot-${n.nodeId}`,
    seq: n.seq ?? 1,
    at: n.at ?? 1_700_000_000_000,
    labels: n.labels ?? {},
    cordoned: n.cordoned ?? false,
    health: n.health ?? { status: 'healthy' },
    memory: {
      resourceType: 'memory',
      unit: 'MiB',
      capacity: memoryMiB,
      systemReserve: 2048,
      effectiveCapacity: memoryMiB - 2048,
      committed: n.memoryCommitted ?? 0,
      used: n.memoryUsed ?? 0,
      reserved: 0,
      allocationCount: 0,
    },
    cpu: {
      resourceType: 'cpu',
      unit: 'vCPU',
      capacity: coresN,
      systemReserve: reserved.size,
      effectiveCapacity: (coresN - reserved.size) * ratio,
      committed: vcpusCommitted + exclusiveCores,
      used: Math.floor(coresN / 3),
      reserved: 0,
      allocationCount: 0,
      sharedCores,
      exclusiveCores,
      reservedCores: reserved.size,
      sharedVcpusCommitted: vcpusCommitted,
      sharedVcpusCapacity: sharedCores * ratio,
      cores,
    },
    overcommit: { memory: 1, cpu: ratio },
    tenants: n.tenants ?? {},
    groups: {},
    allocationCount: Object.values(n.tenants ?? {}).reduce((sum, t) => sum + t.vms, 0),
    heartbeatMs: n.heartbeatMs ?? 5_000,
  };
}

/** A snapshot as a current agent publishes it in full: its per-core list, the list's digest and the NUMA counts. */
export function fullSnapshot(n: SyntheticNode, digest: string): UsageSnapshot {
  const s = syntheticSnapshot(n);
  const numa = [0, 1].map((node) => {
    const cores = s.cpu.cores.filter((c) => c.numa === node);
    const count = (role: string) => cores.filter((c) => c.role === role).length;
    return { node, sharedCores: count('shared'), exclusiveCores: count('exclusive'), reservedCores: count('reserved') };
  });
  return { ...s, cpu: { ...s.cpu, coresDigest: digest, numa } };
}

/** The heartbeat of a host whose cores did not change since it sent `digest`'s list: no per-core list. */
export function heartbeatSnapshot(n: SyntheticNode, digest: string): UsageSnapshot {
  const s = fullSnapshot(n, digest);
  return { ...s, cpu: { ...s.cpu, cores: [] } };
}
