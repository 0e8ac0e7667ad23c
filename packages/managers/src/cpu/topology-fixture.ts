import type { HostTopology, LogicalCore } from '@allot/core';

/** The shape of a synthetic host: how many sockets, NUMA nodes per socket, physical cores per node, threads per core. */
export interface TopologySpec {
  sockets: number;
  numaPerSocket: number;
  coresPerNuma: number;
  threadsPerCore: number;
}

/**
 * A host topology numbered the way Linux numbers x86 hosts: first thread of every physical core (0..P-1, node by
 * node), then the second threads (P..2P-1), and so on, so logical ids `id` and `id + P` are SMT siblings.
 * For tests, benchmarks and configured (probe-less) hosts; `source` says `config`.
 */
export function topologyFixture(spec: TopologySpec): HostTopology {
  const { sockets, numaPerSocket, coresPerNuma, threadsPerCore } = spec;
  for (const [name, value] of Object.entries(spec)) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`topologyFixture: ${name} must be a positive integer, got ${String(value)}`);
  }
  const physicalCount = sockets * numaPerSocket * coresPerNuma;
  const cores: LogicalCore[] = [];
  for (let thread = 0; thread < threadsPerCore; thread += 1) {
    for (let core = 0; core < physicalCount; core += 1) {
      const numa = Math.floor(core / coresPerNuma);
      cores.push({ id: thread * physicalCount + core, core, numa, socket: Math.floor(numa / numaPerSocket) });
    }
  }
  return { cores, source: 'config' };
}
