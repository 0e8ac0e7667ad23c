import { describe, expect, it } from 'vitest';
import { allocation, allocationRequest, nodeView } from './fixtures.ts';
import { planPreemption } from './preemption.ts';

describe('planPreemption', () => {
  // 16 GiB node, 16 cores, fully committed in memory by the allocations below.
  const node = nodeView({ id: 'n', memoryMiB: 16384, memoryCommitted: 16384, cores: 16, sharedVcpusCommitted: 8 });
  const allocs = [
    allocation('big-low', 'n', 8192, 2, 0),
    allocation('small-low-1', 'n', 2048, 2, 0),
    allocation('small-low-2', 'n', 2048, 2, 5),
    allocation('mid', 'n', 4096, 2, 20),
  ];
  const request = (memoryMiB: number, priority: number, vcpus = 1) => allocationRequest(memoryMiB, vcpus, { priority });

  it('picks the fewest allocations: one big one rather than several small ones', () => {
    const plan = planPreemption(node, allocs, request(4096, 50));
    expect(plan?.victims.map((a) => a.id)).toEqual(['big-low']);
    expect(plan?.optimal).toBe(true);
  });

  it('prefers one allocation of higher priority to two of lower priority (fewest comes first)', () => {
    const withoutBig = allocs.filter((a) => a.id !== 'big-low');
    const plan = planPreemption(node, withoutBig, request(4096, 50));
    expect(plan?.victims.map((a) => a.id)).toEqual(['mid']);
  });

  it('among sets of the same size, picks the lowest priorities', () => {
    const plan = planPreemption(node, allocs, request(2048, 50));
    expect(plan?.victims.map((a) => a.id)).toEqual(['small-low-1']);
  });

  it('only evicts allocations at least minGap priority points lower', () => {
    // priority 25: mid (20) is only 5 lower, so 4 GiB must come from the priority 0-5 allocations.
    const plan = planPreemption(node, allocs, request(4096, 25));
    expect(plan?.victims.map((a) => a.id)).toEqual(['big-low']);
    expect(planPreemption(node, allocs, request(4096, 9))).toBeNull();
    expect(planPreemption(node, allocs, request(4096, 9), 5)?.victims.map((a) => a.id)).toEqual(['big-low']);
  });

  it('combines allocations when no single one frees enough, and reports what they free', () => {
    const plan = planPreemption(node, allocs, request(12288, 100));
    expect(plan?.victims.map((a) => a.id)).toEqual(['big-low', 'mid']);
    expect(plan?.freed).toEqual({ memoryMiB: 12288, sharedVcpus: 4, exclusiveCores: 0 });
  });

  it('returns null when releasing everything eligible would not be enough', () => {
    expect(planPreemption(node, allocs, request(20000, 1000))).toBeNull();
  });

  it('frees cores for an exclusive request by releasing exclusive or shared allocations', () => {
    const cpuNode = nodeView({ id: 'n', cores: 8, exclusiveCores: 4, sharedVcpusCommitted: 4 });
    const cpuAllocs = [allocation('pinned', 'n', 0, 4, 0, true), allocation('floating', 'n', 0, 2, 0)];
    const plan = planPreemption(cpuNode, cpuAllocs, allocationRequest(1, 2, { priority: 50, cpu: { exclusive: true, numa: 'any' } }));
    expect(plan?.victims).toHaveLength(1);
    expect(plan?.victims[0]?.id).toBe('floating');
  });

  it('needs nothing when the request already fits, and refuses a node that takes no work', () => {
    const roomy = nodeView({ id: 'n', memoryMiB: 16384 });
    expect(planPreemption(roomy, allocs, request(1024, 50))?.victims).toEqual([]);
    expect(planPreemption(nodeView({ id: 'n', cordoned: true }), allocs, request(1024, 50))).toBeNull();
  });

  it('ignores allocations of other nodes and ones not holding capacity', () => {
    const others = [
      { ...allocation('elsewhere', 'm', 8192, 1, 0) },
      { ...allocation('gone', 'n', 8192, 1, 0), status: 'released' as const },
    ];
    expect(planPreemption(node, others, request(4096, 50))).toBeNull();
  });
});
