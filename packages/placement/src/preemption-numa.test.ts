import { describe, expect, it } from 'vitest';
import type { Allocation, AllocationRequest, MemoryGrant, NodeView, NumaMemoryUsage, PlacementOptions } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import { allocation, allocationRequest, nodeHolding } from './fixtures.ts';
import { rankPreemptionPlans, preemptionTargets } from './post-filter.ts';
import { planPreemption } from './preemption.ts';
import { seededRandom } from './random.ts';

/*
 * Preemption for a request bound to one NUMA node (a named memory node, hugepages, exclusive cores on one node): the
 * victims' removal must free enough in ONE node, as the agent's atomic preempt checks it; totals are not enough.
 * Hosts here: 2 NUMA nodes of 4 cores (0-3 on node 0, 4-7 on node 1) and 8 GiB each.
 */

const opts: PlacementOptions = { constraints: [], allowPreemption: true };

/** An allocation on `cores` (exclusive, or homed there when `shared`) or floating, its memory from `memory` when given. */
function victim(id: string, priority: number, memoryMiB: number, cores: number[], memory?: MemoryGrant, shared = false): Allocation {
  const base = allocation(id, 'n1', memoryMiB, Math.max(1, cores.length), priority, cores.length > 0 && !shared);
  const numaNodes = [...new Set(cores.map((c) => Math.floor(c / 4)))];
  return {
    ...base,
    cpu: base.cpu === null ? null : { ...base.cpu, cpuset: cores, numaNodes: numaNodes.length > 0 ? numaNodes : [0] },
    ...(memory === undefined ? {} : { memory }),
  };
}

/** The host as its agent publishes it: totals, per-priority figures, per-node memory and hugepages. */
function host(victims: Allocation[], pages1Gi = 0): NodeView {
  const view = nodeHolding({ id: 'n1', cores: 8, numaNodes: 2, memoryMiB: 16_384 }, victims);
  // Exclusive cores as the victims hold them (the fixture numbers them from 0).
  const held = new Set(victims.flatMap((v) => (v.cpu?.mode === 'exclusive' ? v.cpu.cpuset : [])));
  const cores = view.snapshot.cpu.cores.map((c) => ({ ...c, role: held.has(c.id) ? ('exclusive' as const) : ('shared' as const) }));
  // Per NUMA node as the agent publishes it: pool cores, and idle ones (no shared vCPU homed there).
  const homed = new Set(victims.flatMap((v) => (v.cpu?.mode === 'shared' ? v.cpu.cpuset : [])));
  const cpuNuma = [0, 1].map((node) => {
    const pool = cores.filter((c) => c.numa === node && c.role === 'shared');
    return {
      node,
      sharedCores: pool.length,
      exclusiveCores: 4 - pool.length,
      reservedCores: 0,
      idleCores: pool.filter((c) => !homed.has(c.id)).length,
    };
  });
  const numa: NumaMemoryUsage[] = [0, 1].map((node) => {
    const pinned = victims.filter((v) => v.memory?.numaNode === node).reduce((s, v) => s + v.granted.memoryMiB, 0);
    const used = victims.filter((v) => v.memory?.hugepages?.numaNode === node).reduce((s, v) => s + (v.memory?.hugepages?.count ?? 0), 0);
    const free = Math.min(8192 - pinned, view.snapshot.memory.effectiveCapacity - view.snapshot.memory.committed);
    return {
      node,
      capacityMiB: 8192,
      pinnedMiB: pinned,
      freeMiB: Math.max(0, free),
      hugepages: pages1Gi === 0 ? [] : [{ pageSizeMiB: 1024, total: pages1Gi, used, free: pages1Gi - used }],
    };
  });
  return {
    ...view,
    snapshot: {
      ...view.snapshot,
      cpu: { ...view.snapshot.cpu, cores, numa: cpuNuma },
      memory: { ...view.snapshot.memory, numa },
    },
  };
}

function preemptor(more: Partial<AllocationRequest>, memoryMiB = 0, vcpus = 1): AllocationRequest {
  return allocationRequest(memoryMiB, vcpus, { requestId: 'pre', priority: 100, ...more });
}

/** The post-filter end to end, as the coordinator runs it: targets, then the exact plans on the fetched nodes. */
function postFilter(node: NodeView, victims: Allocation[], request: AllocationRequest) {
  const index = ClusterIndex.of([node], { random: seededRandom(1) });
  const targets = preemptionTargets(index, request, opts, { random: seededRandom(2) }, 4);
  if (!targets.ok) throw new Error(targets.error.message);
  if (targets.value.level === null) return [];
  const fetched = new Map(targets.value.nodes.map((id) => [id, victims]));
  return rankPreemptionPlans(index, request, fetched, targets.value.level).map((p) => p.victims.map((v) => v.id));
}

describe('preemption for a request bound to one NUMA node', () => {
  it('exclusive cores on one node: evicts the VM whose cores complete a node, not the first by totals', () => {
    // Node 0: a (0-1), b (2-3); node 1: c (4-5), 6-7 idle. 4 cores on one node: evicting c frees node 1 whole.
    const victims = [victim('a', 0, 1024, [0, 1]), victim('b', 0, 1024, [2, 3]), victim('c', 0, 1024, [4, 5])];
    const request = preemptor({ cpu: { exclusive: true, numa: 'require' } }, 0, 4);
    expect(planPreemption(host(victims), victims, request)?.victims.map((v) => v.id)).toEqual(['c']);
    expect(postFilter(host(victims), victims, request)).toEqual([['c']]);
  });

  it('memory on a named node: evicts the VM pinned on that node, not one elsewhere the totals would take', () => {
    // Host: 16 GiB, 14 GiB held. w0 pinned on node 0, w1 on node 1, f floats. Node 1 has 2 GiB free; 4 GiB are asked there.
    const victims = [victim('w0', 0, 6144, [], { numaNode: 0 }), victim('w1', 0, 6144, [], { numaNode: 1 }), victim('f', 50, 2048, [])];
    const request = preemptor({ memory: { numaNode: 1 } }, 4096);
    expect(planPreemption(host(victims), victims, request)?.victims.map((v) => v.id)).toEqual(['w1']);
    expect(postFilter(host(victims), victims, request)).toEqual([['w1']]);
  });

  it('hugepages: evicts a VM holding pages where that frees enough on one node', () => {
    // 2 pages of 1 GiB per node, one used on each: 2 pages on one node need one of the holders evicted.
    const victims = [
      victim('h0', 0, 0, [], { hugepages: { pageSizeMiB: 1024, count: 1, numaNode: 0 } }),
      victim('h1', 0, 0, [], { hugepages: { pageSizeMiB: 1024, count: 1, numaNode: 1 } }),
      victim('x', 0, 1024, []),
    ];
    const request = preemptor({ memory: { hugepages: { pageSizeMiB: 1024, count: 2 } } });
    expect(planPreemption(host(victims, 2), victims, request)?.victims.map((v) => v.id)).toEqual(['h0']);
    expect(postFilter(host(victims, 2), victims, request)).toEqual([['h0']]);
  });

  it('exclusive cores on one node: evicts shared VMs whose release leaves their cores idle', () => {
    // Node 0 is held (priority 200); node 1's four pool cores carry two shared VMs (s1 on 4-5, s2 on 6-7): no idle core.
    const victims = [
      victim('a', 200, 1024, [0, 1, 2, 3]),
      victim('s1', 0, 1024, [4, 5], undefined, true),
      victim('s2', 0, 1024, [6, 7], undefined, true),
    ];
    const request = preemptor({ cpu: { exclusive: true, numa: 'require' } }, 0, 2);
    expect(planPreemption(host(victims), victims, request)?.victims.map((v) => v.id)).toEqual(['s1']);
    expect(postFilter(host(victims), victims, request)).toEqual([['s1']]);
    // A core another VM still homes on does not become idle: both VMs homed on 4-5 go, not one.
    const overlapping = [
      victim('a', 200, 1024, [0, 1, 2, 3]),
      victim('s1', 0, 1024, [4, 5], undefined, true),
      victim('s2', 0, 1024, [4, 5], undefined, true),
      victim('s3', 50, 1024, [6, 7], undefined, true),
    ];
    expect(planPreemption(host(overlapping), overlapping, request)?.victims.map((v) => v.id)).toEqual(['s1', 's2']);
  });

  it('finds no plan where no eviction frees enough in one node', () => {
    // Node 0 holds a (0-3) at priority 200 (not evictable); node 1 holds c (4-5): 4 cores on one node cannot be had.
    const victims = [victim('a', 200, 1024, [0, 1, 2, 3]), victim('c', 0, 1024, [4, 5])];
    const request = preemptor({ cpu: { exclusive: true, numa: 'require' } }, 0, 3);
    expect(planPreemption(host(victims), victims, request)?.victims.map((v) => v.id)).toEqual(['c']);
    const five = preemptor({ cpu: { exclusive: true, numa: 'require' } }, 0, 5);
    expect(planPreemption(host(victims), victims, five)).toBeNull();
    expect(postFilter(host(victims), victims, five)).toEqual([]);
  });
});
