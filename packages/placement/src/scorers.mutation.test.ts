import { describe, expect, it } from 'vitest';
import { ClusterIndex } from './cluster-index.ts';
import { demandOf } from './decide.ts';
import { allocationRequest, nodeView } from './fixtures.ts';
import { seededRandom } from './random.ts';
import {
  allocatedShareAfter,
  binpackScore,
  cpuShareAfter,
  domainLoad,
  memoryShareAfter,
  normalizeByRank,
  ROUND_ROBIN,
  roundRobinScore,
  spreadDomainScore,
  SPREAD_DOMAIN,
} from './scorers.ts';
import type { StepContext } from './types.ts';

/*
 * The scorers at their edges: exclusive CPU shares, empty capacities and zero weights, equal domain loads, one node in
 * the stable order, no cursor, and the rank normalisation. Written against the survivors of a mutation run
 * (docs/benchmarks.md, Mutation testing).
 */

function step(memoryMiB: number, vcpus: number, more: Partial<StepContext> = {}, exclusive = false): StepContext {
  const request = allocationRequest(memoryMiB, vcpus, { cpu: { exclusive, numa: 'any' } });
  return {
    request,
    options: { constraints: [], allowPreemption: false },
    demand: demandOf(request),
    weights: { cpu: 1, memory: 1 },
    ...more,
  };
}

describe('CPU share after placement', () => {
  it('for an exclusive request counts cores already exclusive, those the shared pool needs, and the request', () => {
    // 16 cores: 4 exclusive, 12 shared holding 6 vCPUs at ratio 1 (so 6 shared cores are busy).
    const node = nodeView({ id: 'n', cores: 16, exclusiveCores: 4, sharedVcpusCommitted: 6 });
    expect(cpuShareAfter(step(0, 2, {}, true), node)).toBeCloseTo((4 + 6 + 2) / 16);
    expect(binpackScore(step(0, 2, { weights: { cpu: 1, memory: 0 } }, true), node)).toBeCloseTo(75);
  });

  it('tells shared from exclusive when the CPU is overcommitted', () => {
    // 8 cores at ratio 2: 16 shared vCPUs, 4 committed (2 cores' worth busy).
    const node = nodeView({ id: 'n', cores: 8, cpuOvercommit: 2, sharedVcpusCommitted: 4 });
    expect(cpuShareAfter(step(0, 2), node)).toBeCloseTo(6 / 16);
    expect(cpuShareAfter(step(0, 2, {}, true), node)).toBeCloseTo(4 / 8);
  });

  it('a dimension with no capacity counts as full, and no weight at all scores 0', () => {
    const node = nodeView({ id: 'n', memoryMiB: 0 });
    expect(memoryShareAfter(step(0, 1), node)).toBe(1);
    expect(allocatedShareAfter(step(1024, 1, { weights: { cpu: 0, memory: 0 } }), nodeView({ id: 'm' }))).toBe(0);
  });
});

describe('spread-domain', () => {
  it('scores 100 everywhere when every domain holds as many, or there is no load', () => {
    const counts = new Map<string | null, number>([
      ['a', 2],
      ['b', 2],
    ]);
    expect(
      spreadDomainScore(
        step(1, 1, { domainLoad: { label: 'zone', counts, min: 2, max: 2 } }),
        nodeView({ id: 'n', labels: { zone: 'a' } }),
      ),
    ).toBe(100);
    expect(spreadDomainScore(step(1, 1), nodeView({ id: 'n' }))).toBe(100);
  });

  it('is linear between the least and the most loaded domain when the least is not empty', () => {
    const counts = new Map<string | null, number>([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    const ctx = step(1, 1, { domainLoad: { label: 'zone', counts, min: 1, max: 3 } });
    expect(['a', 'b', 'c'].map((zone) => spreadDomainScore(ctx, nodeView({ id: 'n', labels: { zone } })))).toEqual([100, 50, 0]);
  });

  it('counts the group per domain when the request has one, else the tenant, with the least and most loaded', () => {
    const index = ClusterIndex.of([
      nodeView({ id: 'a1', labels: { zone: 'a' }, groups: { g: 5 }, tenants: { t1: { vms: 1, memoryMiB: 1, vcpus: 1 } } }),
      nodeView({ id: 'b1', labels: { zone: 'b' }, groups: { g: 0 }, tenants: { t1: { vms: 4, memoryMiB: 1, vcpus: 1 } } }),
      nodeView({ id: 'c1', labels: { zone: 'c' }, groups: { g: 2 }, tenants: { t1: { vms: 2, memoryMiB: 1, vcpus: 1 } } }),
    ]);
    const byGroup = domainLoad(
      index,
      step(1, 1, { options: { constraints: [], allowPreemption: false, group: { name: 'g', maxPerNode: 10 } } }),
    );
    expect(byGroup).toMatchObject({ label: 'zone', min: 0, max: 5 });
    expect(byGroup.counts.get('c')).toBe(2);
    const byTenant = domainLoad(index, step(1, 1));
    expect(byTenant).toMatchObject({ min: 1, max: 4 });
    expect(SPREAD_DOMAIN.preScore?.(index, step(1, 1), { random: seededRandom(1) })).toEqual({ domainLoad: byTenant });
  });

  it('a cluster without nodes has a load of 0 to 0', () => {
    expect(domainLoad(ClusterIndex.of([]), step(1, 1))).toMatchObject({ min: 0, max: 0 });
  });
});

describe('round-robin', () => {
  it('scores 100 for every node when there is one node or no order', () => {
    expect(roundRobinScore(step(1, 1, { stableRank: () => 0, cursorRank: 0, stableCount: 1 }), nodeView({ id: 'a' }))).toBe(100);
    expect(roundRobinScore(step(1, 1, { stableCount: 3 }), nodeView({ id: 'a' }))).toBe(100);
  });

  it('without a cursor, starts from the first node', () => {
    const order = ['a', 'b', 'c'];
    const ctx = step(1, 1, { stableRank: (id) => order.indexOf(id), stableCount: 3 });
    expect(order.map((id) => roundRobinScore(ctx, nodeView({ id })))).toEqual([100, 50, 0]);
  });

  it("ranks from the cluster's stable order, after the cursor", () => {
    const index = ClusterIndex.of(['a', 'b', 'c', 'd'].map((id) => nodeView({ id })));
    const ctx = step(1, 1);
    const fromB = ROUND_ROBIN.preScore?.(index, ctx, { random: seededRandom(1), roundRobinCursor: 'b' }) ?? {};
    expect(fromB).toMatchObject({ cursorRank: 1, stableCount: 4 });
    const scored = { ...ctx, ...fromB };
    expect(['a', 'b', 'c', 'd'].map((id) => roundRobinScore(scored, nodeView({ id })))).toEqual([100 / 3, 0, 100, 200 / 3]);
    const fresh = ROUND_ROBIN.preScore?.(index, ctx, { random: seededRandom(1) }) ?? {};
    expect(fresh.cursorRank).toBe(-1);
    expect(fresh.stableRank?.('c')).toBe(2);
  });
});

describe('normalisation by rank', () => {
  it('gives the distinct scores 100 down to 0 in equal steps, best first', () => {
    const scores = [10, 30, 20, 30, 0];
    normalizeByRank(scores);
    expect(scores).toEqual([100 / 3, 100, 200 / 3, 100, 0]);
  });

  it('gives every node 100 when all scores are equal', () => {
    const scores = [7, 7, 7];
    normalizeByRank(scores);
    expect(scores).toEqual([100, 100, 100]);
    const one = [3];
    normalizeByRank(one);
    expect(one).toEqual([100]);
  });
});
