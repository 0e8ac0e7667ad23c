import { describe, expect, it } from 'vitest';
import { allocationRequest, nodeView } from './fixtures.ts';
import { demandOf } from './decide.ts';
import { binpackScore, manualScore, roundRobinScore, spreadDomainScore, spreadScore } from './scorers.ts';
import type { StepContext } from './types.ts';

function step(memoryMiB: number, vcpus: number, more: Partial<StepContext> = {}): StepContext {
  const request = allocationRequest(memoryMiB, vcpus);
  return {
    request,
    options: { constraints: [], allowPreemption: false },
    demand: demandOf(request),
    weights: { cpu: 1, memory: 1 },
    ...more,
  };
}

describe('scorers, one at a time', () => {
  // 16 GiB, 16 cores at ratio 1; the request takes 4 GiB and 4 vCPUs.
  it.each([
    { committedMiB: 0, vcpus: 0, binpack: 25, spread: 75 },
    { committedMiB: 8192, vcpus: 8, binpack: 75, spread: 25 },
    { committedMiB: 12288, vcpus: 12, binpack: 100, spread: 0 },
    { committedMiB: 12288, vcpus: 0, binpack: 62.5, spread: 37.5 },
  ])(
    'binpack and spread score the share allocated after placement: $committedMiB MiB, $vcpus vCPUs committed',
    ({ committedMiB, vcpus, binpack, spread }) => {
      const node = nodeView({ id: 'n', memoryMiB: 16384, memoryCommitted: committedMiB, cores: 16, sharedVcpusCommitted: vcpus });
      expect(binpackScore(step(4096, 4), node)).toBeCloseTo(binpack);
      expect(spreadScore(step(4096, 4), node)).toBeCloseTo(spread);
    },
  );

  it('weights choose how much each dimension counts', () => {
    const node = nodeView({ id: 'n', memoryMiB: 16384, memoryCommitted: 12288, cores: 16, sharedVcpusCommitted: 0 });
    expect(binpackScore(step(4096, 4, { weights: { cpu: 0, memory: 1 } }), node)).toBeCloseTo(100);
    expect(binpackScore(step(4096, 4, { weights: { cpu: 1, memory: 0 } }), node)).toBeCloseTo(25);
    expect(binpackScore(step(4096, 4, { weights: { cpu: 3, memory: 1 } }), node)).toBeCloseTo(43.75);
  });

  it('spread-domain scores 100 in the least loaded domain, 0 in the most, and nodes without the label in their own domain', () => {
    const counts = new Map<string | null, number>([
      ['a', 0],
      ['b', 4],
      ['c', 2],
      [null, 4],
    ]);
    const ctx = step(1, 1, { domainLoad: { label: 'zone', counts, min: 0, max: 4 } });
    expect(spreadDomainScore(ctx, nodeView({ id: 'n', labels: { zone: 'a' } }))).toBe(100);
    expect(spreadDomainScore(ctx, nodeView({ id: 'n', labels: { zone: 'b' } }))).toBe(0);
    expect(spreadDomainScore(ctx, nodeView({ id: 'n', labels: { zone: 'c' } }))).toBe(50);
    expect(spreadDomainScore(ctx, nodeView({ id: 'n', labels: {} }))).toBe(0);
  });

  it('round-robin scores the node right after the cursor highest and the cursor itself lowest', () => {
    const order = ['a', 'b', 'c', 'd', 'e'];
    const ctx = step(1, 1, { stableRank: (id) => order.indexOf(id), cursorRank: 2, stableCount: 5 });
    const scores = order.map((id) => roundRobinScore(ctx, nodeView({ id })));
    expect(scores).toEqual([50, 25, 0, 100, 75]);
  });

  it('manual gives every passing node the same score', () => {
    expect(manualScore(step(1, 1), nodeView({ id: 'x' }))).toBe(100);
  });
});
