import type { Allocation } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { allocation, allocationRequest, nodeView } from './fixtures.ts';
import { planPreemption } from './preemption.ts';

/*
 * planPreemption's choice among sets of one size (highest priority, then the priority sum, then what they free), the
 * CPU arithmetic after a release (exclusive requests, exclusive victims, shared cores), and the greedy fallback on an
 * unsorted list. Written against the survivors of a mutation run (docs/benchmarks.md, Mutation testing).
 */

const ids = (plan: { victims: readonly Allocation[] } | null): string[] | undefined => plan?.victims.map((a) => a.id);

describe('choosing among sets of the same size', () => {
  // 16 GiB, all committed; the request needs 8 GiB back.
  const full = nodeView({ id: 'n', memoryMiB: 16384, memoryCommitted: 16384, cores: 16, sharedVcpusCommitted: 4 });

  it('takes the set whose highest priority is lowest, even with a higher sum', () => {
    const allocs = [
      allocation('x', 'n', 2048, 1, 0),
      allocation('y', 'n', 6144, 1, 5),
      allocation('z', 'n', 4096, 1, 3),
      allocation('w', 'n', 4096, 1, 3),
    ];
    // Pairs that free 8 GiB: {x,y} (max 5, sum 5), {z,w} (max 3, sum 6), {y,z} and {y,w} (max 5, sum 8).
    expect(ids(planPreemption(full, allocs, allocationRequest(8192, 1, { priority: 50 })))).toEqual(['w', 'z']);
  });

  it('with the same highest priority, takes the lowest sum', () => {
    const allocs = [allocation('a', 'n', 6144, 1, 3), allocation('b', 'n', 2048, 1, 3), allocation('e', 'n', 2048, 1, 0)];
    // Pairs that free 8 GiB: {a,b} (max 3, sum 6) and {e,a} (max 3, sum 3); {b,e} frees 4 GiB.
    expect(ids(planPreemption(full, allocs, allocationRequest(8192, 1, { priority: 50 })))).toEqual(['e', 'a']);
  });

  it('with the same highest priority, takes the lowest sum even when a set with a higher sum comes first', () => {
    // 4000 MiB needed, three victims at least. In the search's order {a,d,e} (priorities 0,3,3: sum 6) comes before
    // {b,c,e} (1,1,3: sum 5); both free exactly 4000 MiB.
    const node = nodeView({ id: 'n', memoryMiB: 6000, memoryCommitted: 6000, cores: 16 });
    const allocs = [
      allocation('a', 'n', 40, 0, 0),
      allocation('b', 'n', 1000, 0, 1),
      allocation('c', 'n', 1000, 0, 1),
      allocation('d', 'n', 1960, 0, 3),
      allocation('e', 'n', 2000, 0, 3),
    ];
    expect(ids(planPreemption(node, allocs, allocationRequest(4000, 0, { priority: 50 })))).toEqual(['b', 'c', 'e']);
  });

  it('with the same priorities, frees the least', () => {
    const allocs = [allocation('big', 'n', 8192, 4, 0), allocation('exact', 'n', 4096, 1, 0)];
    const plan = planPreemption(full, allocs, allocationRequest(4096, 1, { priority: 50 }));
    expect(ids(plan)).toEqual(['exact']);
    expect(plan?.freed).toEqual({ memoryMiB: 4096, sharedVcpus: 1, exclusiveCores: 0 });
  });

  it('counts the vCPUs a set frees as well as its memory', () => {
    // 4096 MiB + 1 vCPU against 4095 MiB + 3 vCPUs: the first frees less in all.
    const allocs = [allocation('a-more-cpu', 'n', 4095, 3, 0), allocation('b-less', 'n', 4096, 1, 0)];
    expect(ids(planPreemption(full, allocs, allocationRequest(4095, 1, { priority: 50 })))).toEqual(['b-less']);
  });
});

describe('CPU after a release', () => {
  it('plans nothing, optimally, when the request already fits', () => {
    const node = nodeView({ id: 'n', memoryMiB: 16384, memoryCommitted: 0 });
    expect(planPreemption(node, [], allocationRequest(1024, 1, { priority: 50 }))).toEqual({
      nodeId: 'n',
      victims: [],
      freed: { memoryMiB: 0, sharedVcpus: 0, exclusiveCores: 0 },
      optimal: true,
    });
  });

  it('an exclusive request needs idle cores, not free shared vCPUs', () => {
    // 8 cores at ratio 2: 4 of 16 shared vCPUs free (a shared request of 4 fits) but only 2 idle cores.
    const node = nodeView({ id: 'n', memoryMiB: 16384, cores: 8, cpuOvercommit: 2, sharedVcpusCommitted: 12 });
    const allocs = [allocation('v', 'n', 1024, 4, 0)];
    expect(ids(planPreemption(node, allocs, allocationRequest(1024, 4, { priority: 50 })))).toEqual([]);
    const exclusive = planPreemption(node, allocs, allocationRequest(1024, 4, { priority: 50, cpu: { exclusive: true, numa: 'any' } }));
    expect(ids(exclusive)).toEqual(['v']);
  });

  it('a shared request uses the shared capacity left, and a shared victim gives its vCPUs back', () => {
    // 8 cores at ratio 1, 6 vCPUs committed: 2 free; the request asks 4.
    const node = nodeView({ id: 'n', memoryMiB: 16384, cores: 8, sharedVcpusCommitted: 6 });
    expect(ids(planPreemption(node, [allocation('v', 'n', 1024, 2, 0)], allocationRequest(1024, 4, { priority: 50 })))).toEqual(['v']);
  });

  it('a shared request never gets more vCPUs than the node has shared cores, whatever the ratio', () => {
    const node = nodeView({ id: 'n', memoryMiB: 16384, cores: 4, cpuOvercommit: 4, sharedVcpusCommitted: 0 });
    expect(planPreemption(node, [allocation('v', 'n', 1024, 1, 0)], allocationRequest(1024, 6, { priority: 50 }))).toBeNull();
  });

  it("an exclusive victim returns its cores to the shared pool at the node's ratio, no more", () => {
    // 8 cores: 4 exclusive (the victim's), 4 shared at ratio 1, all 4 shared vCPUs committed.
    const node = nodeView({ id: 'n', memoryMiB: 16384, cores: 8, exclusiveCores: 4, sharedVcpusCommitted: 4 });
    const victim = allocation('ex', 'n', 1024, 4, 0, true);
    expect(ids(planPreemption(node, [victim], allocationRequest(1024, 4, { priority: 50 })))).toEqual(['ex']);
    expect(planPreemption(node, [victim], allocationRequest(1024, 5, { priority: 50 }))).toBeNull();
  });

  it('an exclusive victim reported without its cpuset frees as many cores as it has vCPUs', () => {
    const node = nodeView({ id: 'n', memoryMiB: 16384, cores: 8, exclusiveCores: 4, sharedVcpusCommitted: 4 });
    const base = allocation('ex', 'n', 1024, 4, 0, true);
    const victim: Allocation = { ...base, cpu: { ...(base.cpu as NonNullable<Allocation['cpu']>), cpuset: [] } };
    const plan = planPreemption(node, [victim], allocationRequest(1024, 4, { priority: 50 }));
    expect(plan?.freed).toEqual({ memoryMiB: 1024, sharedVcpus: 0, exclusiveCores: 4 });
  });

  it('a memory-only victim (no CPU grant) frees its memory', () => {
    const node = nodeView({ id: 'n', memoryMiB: 4096, memoryCommitted: 4096 });
    const victim: Allocation = { ...allocation('m', 'n', 4096, 0, 0), cpu: null };
    const plan = planPreemption(node, [victim], allocationRequest(2048, 1, { priority: 50 }));
    expect(plan?.freed).toEqual({ memoryMiB: 4096, sharedVcpus: 0, exclusiveCores: 0 });
  });
});

describe('greedy fallback', () => {
  it('past the search budget takes the lowest priorities first, whatever order the allocations come in', () => {
    // 30 allocations of 1 GiB fill the node but 2 GiB; the request needs 8 GiB, so 6 victims: the search of sizes 1 to 5
    // finds nothing and runs out of budget in size 5.
    const node = nodeView({ id: 'n', memoryMiB: 32768, memoryCommitted: 30720, cores: 64, sharedVcpusCommitted: 30 });
    // Ids run opposite to priorities, and the list comes highest priority first.
    const allocs = Array.from({ length: 30 }, (_, k) => allocation(`v${String(k).padStart(2, '0')}`, 'n', 1024, 1, 29 - k));
    const plan = planPreemption(node, allocs, allocationRequest(8192, 1, { priority: 100 }));
    expect(plan?.optimal).toBe(false);
    expect(plan?.victims.map((v) => v.priority)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(ids(plan)).toEqual(['v29', 'v28', 'v27', 'v26', 'v25', 'v24']);
  });
});
