import {
  err,
  ok,
  type CommittedFigures,
  type HostProbe,
  type HostSample,
  type HostTopology,
  type NodeMemory,
  type Result,
} from '@allot/core';
import { layoutCores, simulatedHugepages, validateLayout, type HostSize } from './host-size.ts';
import { splitNodeMemory } from './sys-node-memory.ts';

/**
 * How a simulated host's usage follows what is committed on it. Fixed figures, no randomness, so a local cluster run
 * twice shows the same numbers:
 * - memory used = min(total, base + 75% of committed): the hypervisor and host OS take a fixed base, and a VM
 *   touches three quarters of the memory it was given;
 * - CPU busy = min(all cores, 5% of every core + 20% of every committed vCPU), spread evenly over the cores.
 */
export const SIMULATED_USAGE = {
  baseMemoryMiB: 1024,
  memoryTouchedPercent: 75,
  baseCorePermille: 50,
  vcpuBusyPermille: 200,
} as const;

/**
 * The probe of a simulated host (the local cluster runs several agents on one machine). Its topology is the
 * configured host size, labelled `source: 'config'`; its usage is derived from the committed figures the agent
 * reports through setCommitted. It never reads the real machine.
 */
export class SimulatedProbe implements HostProbe {
  readonly size: HostSize;
  readonly #topology: HostTopology;
  readonly #now: () => number;
  #committed: CommittedFigures = { memoryMiB: 0, vcpus: 0 };
  #latest: HostSample | undefined;

  private constructor(size: HostSize, now: () => number) {
    this.size = size;
    this.#topology = { cores: layoutCores(size), source: 'config' };
    this.#now = now;
  }

  /** A probe for a host of this size, or invalid_request naming the field that makes no sense. */
  static create(size: HostSize, options: { now?: () => number } = {}): Result<SimulatedProbe> {
    const layout = validateLayout(size);
    if (!layout.ok) return layout;
    if (!Number.isInteger(size.memoryMiB) || size.memoryMiB < 1) {
      return err('invalid_request', `memoryMiB: must be a positive integer, got ${String(size.memoryMiB)}`, {
        field: 'memoryMiB',
        value: size.memoryMiB,
      });
    }
    const hugepages = validateHugepages(size);
    if (!hugepages.ok) return hugepages;
    return ok(new SimulatedProbe(size, options.now ?? Date.now));
  }

  /** The agent reports what is committed after every change; the next sample reflects it. */
  setCommitted(committed: CommittedFigures): Result<void> {
    for (const field of ['memoryMiB', 'vcpus'] as const) {
      const value = committed[field];
      if (!Number.isInteger(value) || value < 0)
        return err('invalid_request', `${field}: must be a non-negative integer, got ${String(value)}`, { field, value });
    }
    this.#committed = { memoryMiB: committed.memoryMiB, vcpus: committed.vcpus };
    return ok(undefined);
  }

  topology(): Promise<HostTopology> {
    return Promise.resolve(this.#topology);
  }

  /** The configured memory split evenly over the configured NUMA nodes, each with the configured hugepage pools, all free. */
  nodeMemory(): Promise<readonly NodeMemory[]> {
    return Promise.resolve(splitNodeMemory(this.size.memoryMiB, this.size.numaNodes, simulatedHugepages(this.size)));
  }

  latest(): HostSample | undefined {
    return this.#latest;
  }

  sample(): Promise<HostSample> {
    this.#latest = simulatedSample(this.size, this.#committed, this.#now());
    return Promise.resolve(this.#latest);
  }
}

/** The deterministic usage of SIMULATED_USAGE, in integers. */
export function simulatedSample(size: HostSize, committed: CommittedFigures, at: number): HostSample {
  const u = SIMULATED_USAGE;
  const usedMiB = Math.min(
    size.memoryMiB,
    Math.min(size.memoryMiB, u.baseMemoryMiB) + Math.floor((committed.memoryMiB * u.memoryTouchedPercent) / 100),
  );
  const busyTotal = Math.min(size.cores * 1000, size.cores * u.baseCorePermille + committed.vcpus * u.vcpuBusyPermille);
  const perCore = Math.floor(busyTotal / size.cores);
  // The remainder goes one per mille to the lowest core ids, so the per-core figures add up to the total.
  const remainder = busyTotal - perCore * size.cores;
  const perCorePermille = new Map<number, number>();
  for (let id = 0; id < size.cores; id++) perCorePermille.set(id, perCore + (id < remainder ? 1 : 0));
  return {
    at,
    memory: { totalMiB: size.memoryMiB, usedMiB, availableMiB: size.memoryMiB - usedMiB },
    cpu: { perCorePermille, totalPermille: Math.floor(busyTotal / size.cores) },
  };
}

/** Hugepage counts are non-negative integers, and every node's pools fit in its share of the memory. */
function validateHugepages(size: HostSize): Result<void> {
  for (const field of ['hugepages2MiPerNode', 'hugepages1GiPerNode'] as const) {
    const value = size[field];
    if (value !== undefined && (!Number.isInteger(value) || value < 0))
      return err('invalid_request', `${field}: must be a non-negative integer, got ${String(value)}`, { field, value });
  }
  const perNodeMiB = Math.floor(size.memoryMiB / size.numaNodes);
  const hugeMiB = simulatedHugepages(size).reduce((sum, p) => sum + (p.sizeKiB / 1024) * p.perNode, 0);
  if (hugeMiB > perNodeMiB)
    return err('invalid_request', `hugepages: ${hugeMiB} MiB of hugepages per NUMA node is more than its ${perNodeMiB} MiB of memory`, {
      field: 'hugepages2MiPerNode',
      hugepagesMiB: hugeMiB,
      nodeMiB: perNodeMiB,
    });
  return ok(undefined);
}
