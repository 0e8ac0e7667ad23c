import { efficiencyRatios, MAX_VCPUS, MostCommon, type EfficiencyMetrics, type NodeView } from '@allot/core';
import type { ClusterEfficiencyReply } from '@allot/protocol';

/** A VM shape: what fragmentation is measured against. */
export interface VmShape {
  readonly memoryMiB: number;
  readonly vcpus: number;
}

/** Before any place has been seen: a small general-purpose VM. */
export const DEFAULT_REFERENCE: VmShape = { memoryMiB: 2048, vcpus: 1 };

/** One key per (memory, vCPUs): vCPUs are at most MAX_VCPUS, so memory x (MAX_VCPUS + 1) + vCPUs is exact. */
const SHAPE_BASE = MAX_VCPUS + 1;

/** The VM shape (memory and vCPUs together) asked for most often; memory-only or CPU-only requests are not VM shapes. */
export class ShapeCounter {
  readonly #keys: MostCommon;

  constructor(maxShapes = 1024) {
    this.#keys = new MostCommon(maxShapes);
  }

  record(memoryMiB: number, vcpus: number): void {
    if (memoryMiB >= 1 && vcpus >= 1) this.#keys.note(memoryMiB * SHAPE_BASE + vcpus);
  }

  mostCommon(): VmShape | undefined {
    const key = this.#keys.mostCommon;
    return key === undefined ? undefined : { memoryMiB: Math.floor(key / SHAPE_BASE), vcpus: key % SHAPE_BASE };
  }
}

/**
 * Cluster efficiency from the nodes' snapshots (pure). Counted: ready nodes that are not cordoned, the capacity a
 * place can use. Per node, free = effective capacity - committed; the reference VMs a node can take is the smaller of
 * its memory and its vCPU quotient, so memory free on a node with no vCPU left counts as stranded. Fragmentation per
 * type = (total free - VMs that fit x the reference's amount) / total free.
 */
export function clusterEfficiency(nodes: readonly NodeView[], reference: VmShape, source: 'seen' | 'default'): ClusterEfficiencyReply {
  let counted = 0;
  let fits = 0;
  const sums = {
    memory: { used: 0, committed: 0, effective: 0, free: 0 },
    cpu: { used: 0, committed: 0, effective: 0, free: 0 },
  };
  for (const node of nodes) {
    if (node.liveness !== 'ready' || node.snapshot.cordoned) continue;
    counted += 1;
    const memFree = Math.max(0, node.snapshot.memory.effectiveCapacity - node.snapshot.memory.committed);
    const cpuFree = Math.max(0, node.snapshot.cpu.effectiveCapacity - node.snapshot.cpu.committed);
    fits += Math.min(Math.floor(memFree / reference.memoryMiB), Math.floor(cpuFree / reference.vcpus));
    for (const [type, free] of [
      ['memory', memFree],
      ['cpu', cpuFree],
    ] as const) {
      const u = node.snapshot[type];
      const s = sums[type];
      s.used += u.used;
      s.committed += u.committed;
      s.effective += u.effectiveCapacity;
      s.free += free;
    }
  }
  const metric = (type: 'memory' | 'cpu', amount: number): EfficiencyMetrics => {
    const s = sums[type];
    return {
      resourceType: type,
      ...efficiencyRatios(s.used, s.committed, s.effective),
      fragmentation: s.free === 0 ? 0 : Math.min(1, Math.max(0, (s.free - fits * amount) / s.free)),
      referenceRequest: amount,
      referenceRequestsThatFit: fits,
    };
  };
  return {
    metrics: [metric('memory', reference.memoryMiB), metric('cpu', reference.vcpus)],
    reference: { ...reference, source },
    nodes: counted,
  };
}
