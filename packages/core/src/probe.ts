/**
 * What a resource manager reads from its host: topology, memory, per-core load. The agent plugs in the real probe
 * (systeminformation and /sys); tests plug in a fake they control. Never random numbers.
 * Types only: implementations live in @allot/probe.
 */
import type { Result } from './errors.ts';

/** One logical CPU as the host reports it. */
export interface LogicalCore {
  /** Logical core id, as Linux numbers it (the id a cpuset names). */
  readonly id: number;
  /** Physical core id, unique across sockets: SMT siblings share it. */
  readonly core: number;
  readonly numa: number;
  readonly socket: number;
}

export interface HostTopology {
  readonly cores: readonly LogicalCore[];
  /** Where each figure came from: `probe` when read from the host, `config` when configured or a fallback. */
  readonly source: 'probe' | 'config';
}

export interface MemorySample {
  readonly totalMiB: number;
  /** Used by everything on the host (total - available), in MiB. */
  readonly usedMiB: number;
  readonly availableMiB: number;
}

export interface CpuSample {
  /** Per logical core id: busy share since the previous sample, per mille (0..1000). */
  readonly perCorePermille: ReadonlyMap<number, number>;
  /** Busy share of the whole host, per mille. */
  readonly totalPermille: number;
}

export interface HostSample {
  /** When the sample was taken (epoch ms): a manager whose sample is too old reports Degraded health. */
  readonly at: number;
  readonly memory: MemorySample;
  readonly cpu: CpuSample;
}

/** One hugepage size on one NUMA node, as the kernel reports it (pages, not MiB). */
export interface HugepagePool {
  readonly sizeKiB: number;
  readonly total: number;
  readonly free: number;
}

/** One NUMA node's memory: its total (whole MiB) and its hugepage pools by size, smallest first. */
export interface NodeMemory {
  readonly node: number;
  readonly totalMiB: number;
  readonly hugepages: readonly HugepagePool[];
}

/** What is committed on the host, for a probe that derives its usage from it. */
export interface CommittedFigures {
  readonly memoryMiB: number;
  readonly vcpus: number;
}

export interface HostProbe {
  /** Topology, read once at start (hot-plug is out of scope). */
  topology(): Promise<HostTopology>;
  /**
   * Memory per NUMA node, read once like the topology (SystemProbe: /sys/devices/system/node/node<N>/meminfo and
   * hugepages; SimulatedProbe: the total split evenly). Not accounted by any manager yet.
   */
  nodeMemory?(): Promise<readonly NodeMemory[]>;
  /** The latest sample, without waiting: undefined until the first sample completes. */
  latest(): HostSample | undefined;
  /** Take a sample now (the agent calls this on its sampling interval). */
  sample(): Promise<HostSample>;
  /**
   * Only on a probe that cannot read the host (a simulated one): its usage is derived from what is committed, which
   * the agent reports before each sample.
   */
  setCommitted?(committed: CommittedFigures): Result<void>;
}
