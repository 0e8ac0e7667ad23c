import { describe, expect, it } from 'vitest';
import { unwrap, type PlacementOptions } from '@allot/core';
import { allocation, allocationRequest, nodeView, type NodeShape } from './fixtures.ts';
// The package's entry, not its files: the placement framework is being reshaped under these tests.
import {
  ClusterIndex,
  decide,
  planPreemption,
  PREEMPTION_SEARCH_BUDGET,
  sampleLimit,
  seededRandom,
  sortedReasons,
  unavailableMessage,
  type PlacementContext,
} from './index.ts';

/*
 * Placement at its boundaries: exact fits, the priority gap, ties, the round-robin cursor, the messages people read.
 * Written against the survivors of a mutation run (docs/benchmarks.md, Mutation testing).
 */

const opts = (more: Partial<PlacementOptions> = {}): PlacementOptions => ({ constraints: [], allowPreemption: false, ...more });
const ctx = (more: Partial<PlacementContext> = {}): PlacementContext => ({ random: seededRandom(7), ...more });
const cluster = (shapes: NodeShape[]) => ClusterIndex.of(shapes.map(nodeView), { random: seededRandom(1) });

describe('decide at capacity boundaries', () => {
  it('places a request whose memory equals the free memory exactly, and refuses one MiB more', () => {
    const c = cluster([{ id: 'exact', memoryMiB: 16384, memoryCommitted: 12288 }]);
    expect(unwrap(decide(c, allocationRequest(4096, 1), opts(), ctx())).candidates).toEqual(['exact']);
    const over = unwrap(decide(c, allocationRequest(4097, 1), opts(), ctx()));
    expect(over.candidates).toEqual([]);
    expect(over.rejected).toEqual({ 'Insufficient memory': 1 });
    expect(over.message).toBe('0/1 nodes are available: 1 Insufficient memory.');
  });

  it('places a shared request using the last free vCPUs, and refuses one more', () => {
    const c = cluster([{ id: 'n', cores: 8, sharedVcpusCommitted: 6 }]);
    for (const strategy of ['binpack', 'spread', 'round-robin', 'spread-domain'] as const) {
      expect(unwrap(decide(c, allocationRequest(1024, 2), opts({ strategy }), ctx())).candidates).toEqual(['n']);
      expect(unwrap(decide(c, allocationRequest(1024, 3), opts({ strategy }), ctx())).rejected).toEqual({ 'Insufficient cpu': 1 });
    }
  });

  it('places an exclusive request on exactly the idle cores, and says idle cores when one is missing', () => {
    // 8 shared cores, 4 vCPUs committed at ratio 1: 4 cores could become exclusive.
    const c = cluster([{ id: 'n', cores: 8, sharedVcpusCommitted: 4 }]);
    const exclusive = (vcpus: number) => allocationRequest(1024, vcpus, { cpu: { exclusive: true, numa: 'any' } });
    expect(unwrap(decide(c, exclusive(4), opts(), ctx())).candidates).toEqual(['n']);
    const refused = unwrap(decide(c, exclusive(5), opts(), ctx()));
    expect(refused.rejected).toEqual({ 'Insufficient idle cores': 1 });
    expect(refused.exhaustive).toBe(true);
  });

  it('counts a node a filter refused after the index let it through, and reports the walk as exhaustive', () => {
    const c = cluster([
      { id: 'small', memoryMiB: 1024 },
      { id: 'cpu', cores: 1 },
      { id: 'numa', cores: 4, numaNodes: 4 },
    ]);
    const d = unwrap(decide(c, allocationRequest(2048, 2, { cpu: { exclusive: false, numa: 'require' } }), opts(), ctx()));
    expect(d.rejected).toEqual({ 'Insufficient memory': 1, 'Insufficient cpu': 1, 'NUMA node too small': 1 });
    expect(d.message).toBe('0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 NUMA node too small.');
    expect(d.examined).toBe(1);
    expect(d.exhaustive).toBe(true);
  });

  it('says how many nodes it examined and which strategy chose', () => {
    const c = cluster([{ id: 'a' }, { id: 'b' }, { id: 'c', memoryMiB: 512 }]);
    const d = unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'spread' }), ctx()));
    expect(d.message).toBe(`2 candidate(s), best ${d.candidates[0]}; examined 2 of 3 nodes (spread).`);
    expect(d).toMatchObject({ examined: 2, exhaustive: false, strategy: 'spread' });
  });

  it('returns at least one candidate even when maxCandidates is 0', () => {
    const c = cluster([{ id: 'a' }, { id: 'b' }]);
    expect(unwrap(decide(c, allocationRequest(1024, 1), opts(), ctx({ maxCandidates: 0 }))).candidates).toHaveLength(1);
  });

  it('samples about log2(n) feasible nodes, at least 2 and at least the candidates returned', () => {
    expect(sampleLimit(0, 1)).toBe(2);
    expect(sampleLimit(1, 1)).toBe(2);
    expect(sampleLimit(1000, 5)).toBe(10);
    expect(sampleLimit(1025, 5)).toBe(11);
    expect(sampleLimit(16, 7)).toBe(7);
  });
});

describe('round-robin cursor', () => {
  const c = cluster([{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }]);
  const next = (cursor?: string, maxCandidates = 4) =>
    unwrap(
      decide(
        c,
        allocationRequest(1024, 1),
        opts({ strategy: 'round-robin' }),
        ctx({ maxCandidates, ...(cursor === undefined ? {} : { roundRobinCursor: cursor }) }),
      ),
    ).candidates;

  it('orders every candidate from the node after the cursor, wrapping after the last', () => {
    expect(next()).toEqual(['a', 'b', 'c', 'd']);
    expect(next('a')).toEqual(['b', 'c', 'd', 'a']);
    expect(next('c')).toEqual(['d', 'a', 'b', 'c']);
    expect(next('d')).toEqual(['a', 'b', 'c', 'd']);
  });

  it('continues after where a departed cursor node would be', () => {
    expect(next('bb')).toEqual(['c', 'd', 'a', 'b']);
    expect(next('0')).toEqual(['a', 'b', 'c', 'd']);
    expect(next('z')).toEqual(['a', 'b', 'c', 'd']);
  });

  it('looks at only maxCandidates nodes from the cursor', () => {
    const d = unwrap(
      decide(c, allocationRequest(1024, 1), opts({ strategy: 'round-robin' }), ctx({ maxCandidates: 2, roundRobinCursor: 'b' })),
    );
    expect(d.candidates).toEqual(['c', 'd']);
    expect(d.examined).toBe(2);
  });
});

describe('spread-domain order', () => {
  it('puts unlabelled nodes after labelled domains of the same load, and labelled domains in name order', () => {
    const c = cluster([{ id: 'none' }, { id: 'zb', labels: { zone: 'b' } }, { id: 'za', labels: { zone: 'a' } }]);
    const d = unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'spread-domain' }), ctx({ maxCandidates: 3 })));
    expect(d.candidates).toEqual(['za', 'zb', 'none']);
  });

  it('prefers the domain with fewer of the group, and the emptiest node inside it', () => {
    const c = cluster([
      { id: 'a-busy', labels: { zone: 'a' }, memoryCommitted: 8192 },
      { id: 'a-free', labels: { zone: 'a' } },
      { id: 'b-1', labels: { zone: 'b' }, groups: { web: 1 } },
    ]);
    const d = unwrap(
      decide(
        c,
        allocationRequest(1024, 1),
        opts({ strategy: 'spread-domain', group: { name: 'web', maxPerNode: 5 } }),
        ctx({ maxCandidates: 3 }),
      ),
    );
    expect(d.candidates).toEqual(['a-free', 'a-busy', 'b-1']);
  });
});

describe('rejection messages', () => {
  it('lists reasons by count, then by name, and leaves out zero counts', () => {
    expect(sortedReasons({ b: 2, a: 2, c: 5, z: 0 })).toEqual([
      ['c', 5],
      ['a', 2],
      ['b', 2],
    ]);
    expect(unavailableMessage(3, {})).toBe('0/3 nodes are available.');
    expect(unavailableMessage(3, { 'node cordoned': 0 })).toBe('0/3 nodes are available.');
  });
});

describe('preemption boundaries', () => {
  const full = nodeView({ id: 'n', memoryMiB: 8192, memoryCommitted: 8192, cores: 8, sharedVcpusCommitted: 4 });

  it('evicts a victim exactly the priority gap below, never one a point closer', () => {
    const request = allocationRequest(2048, 1, { priority: 50 });
    expect(planPreemption(full, [allocation('at-gap', 'n', 4096, 2, 40)], request)?.victims.map((a) => a.id)).toEqual(['at-gap']);
    expect(planPreemption(full, [allocation('too-close', 'n', 4096, 2, 41)], request)).toBeNull();
    expect(planPreemption(full, [allocation('any', 'n', 4096, 2, 50)], request, 0)?.victims).toHaveLength(1);
  });

  it('frees exactly what is missing with one victim, and reports it', () => {
    const plan = planPreemption(
      full,
      [allocation('exact', 'n', 2048, 1, 0), allocation('big', 'n', 6144, 3, 0)],
      allocationRequest(2048, 1, { priority: 50 }),
    );
    expect(plan).toEqual({
      nodeId: 'n',
      victims: [expect.objectContaining({ id: 'exact' })],
      freed: { memoryMiB: 2048, sharedVcpus: 1, exclusiveCores: 0 },
      optimal: true,
    });
  });

  it('among sets of the same size and top priority, takes the lower priority sum, then the smaller, then by id', () => {
    const node = nodeView({ id: 'n', memoryMiB: 8192, memoryCommitted: 8192 });
    const req = allocationRequest(3072, 1, { priority: 100 });
    // Two victims are needed; {p10,p0} sums lower than {p10,p5}.
    const bySum = planPreemption(
      node,
      [allocation('x', 'n', 2048, 1, 10), allocation('y', 'n', 1024, 1, 5), allocation('z', 'n', 1024, 1, 0)],
      req,
    );
    expect(bySum?.victims.map((a) => a.id)).toEqual(['z', 'x']);
    // Same priorities: the set freeing less.
    const bySize = planPreemption(node, [allocation('large', 'n', 4096, 1, 0), allocation('small', 'n', 3072, 1, 0)], req);
    expect(bySize?.victims.map((a) => a.id)).toEqual(['small']);
    // Same everything: by id.
    const byId = planPreemption(node, [allocation('b', 'n', 3072, 1, 0), allocation('a', 'n', 3072, 1, 0)], req);
    expect(byId?.victims.map((a) => a.id)).toEqual(['a']);
  });

  it('gives back exclusive cores to the shared pool at the overcommit ratio', () => {
    // 8 cores: 4 exclusive (pinned), 4 shared at ratio 2 = 8 vCPUs, all committed.
    const node = nodeView({ id: 'n', cores: 8, exclusiveCores: 4, cpuOvercommit: 2, sharedVcpusCommitted: 8 });
    const pinned = allocation('pinned', 'n', 0, 4, 0, true);
    const plan = planPreemption(node, [pinned], allocationRequest(1, 8, { priority: 50 }));
    expect(plan?.victims.map((a) => a.id)).toEqual(['pinned']);
    expect(plan?.freed).toEqual({ memoryMiB: 0, sharedVcpus: 0, exclusiveCores: 4 });
    // 9 vCPUs are more than 8 shared cores can float over, whatever is freed.
    expect(planPreemption(node, [pinned], allocationRequest(1, 9, { priority: 50 }))).toBeNull();
  });

  it('refuses a node whose NUMA nodes are too small for a request that requires one', () => {
    const node = nodeView({ id: 'n', memoryMiB: 8192, memoryCommitted: 8192, cores: 8, numaNodes: 4 });
    const req = allocationRequest(1024, 4, { priority: 50, cpu: { exclusive: false, numa: 'require' } });
    expect(planPreemption(node, [allocation('v', 'n', 4096, 1, 0)], req)).toBeNull();
    const fits = allocationRequest(1024, 2, { priority: 50, cpu: { exclusive: false, numa: 'require' } });
    expect(planPreemption(node, [allocation('v', 'n', 4096, 1, 0)], fits)?.victims).toHaveLength(1);
  });

  it('counts reserved allocations as victims, ignores releasing ones', () => {
    const reserved = { ...allocation('r', 'n', 4096, 1, 0), status: 'reserved' as const };
    const pending = { ...allocation('p', 'n', 4096, 1, 0), status: 'releasing' as 'reserved' };
    const req = allocationRequest(2048, 1, { priority: 50 });
    expect(planPreemption(full, [reserved], req)?.victims.map((a) => a.id)).toEqual(['r']);
    expect(planPreemption(full, [pending], req)).toBeNull();
  });

  it('falls back to a greedy plan past the search budget, drops the victims it does not need, and says it may not be the fewest', () => {
    // 400 MiB missing. Ten 1 MiB allocations at priority 0 come first in the search, fifty of 100 MiB at priority 1
    // after them: sizes 1 to 3 find nothing, and the 4-subsets holding a 1 MiB one exhaust the budget before any fits.
    const node = nodeView({ id: 'n', memoryMiB: 6000, memoryCommitted: 6000 });
    const tiny = Array.from({ length: 10 }, (_, i) => allocation(`a${i}`, 'n', 1, 0, 0));
    const large = Array.from({ length: 50 }, (_, i) => allocation(`b${String(i).padStart(2, '0')}`, 'n', 100, 0, 1));
    expect(PREEMPTION_SEARCH_BUDGET).toBe(100_000);
    const plan = planPreemption(node, [...large, ...tiny], allocationRequest(400, 1, { priority: 100 }));
    expect(plan?.optimal).toBe(false);
    // Greedy took the ten tiny ones and four large ones, then dropped the tiny ones as unneeded.
    expect(plan?.victims.map((v) => v.id)).toEqual(['b00', 'b01', 'b02', 'b03']);
    expect(plan?.freed).toEqual({ memoryMiB: 400, sharedVcpus: 0, exclusiveCores: 0 });
  });
});
