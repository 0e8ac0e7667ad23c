import { describe, expect, it } from 'vitest';
import type { PlacementOptions } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import { decide } from './decide.ts';
import { allocationRequest, nodeView } from './fixtures.ts';
import { cpuOvercommitBound } from './overcommit.ts';
import { seededRandom } from './random.ts';
import type { StepContext } from './types.ts';

const opts: PlacementOptions = { constraints: [], allowPreemption: false };
const cluster = [nodeView({ id: 'dense', cpuOvercommit: 4 }), nodeView({ id: 'mid', cpuOvercommit: 1.5 }), nodeView({ id: 'one' })];

function placeWith(cpu: ReturnType<typeof allocationRequest>['cpu'], nodes = cluster) {
  const snapshot = ClusterIndex.of(nodes, { random: seededRandom(1) });
  return decide(snapshot, allocationRequest(1024, 2, { cpu }), opts, { random: seededRandom(7) });
}

describe('a bound on CPU overcommit', () => {
  it('keeps a shared request off hosts whose ratio is above it, and counts them under one kube-style reason', () => {
    const placed = placeWith({ exclusive: false, numa: 'any', maxOvercommit: 1 });
    expect(placed.ok && placed.value.candidates).toEqual(['one']);
    const refused = placeWith({ exclusive: false, numa: 'any', maxOvercommit: 1 }, cluster.slice(0, 2));
    expect(refused.ok && refused.value.candidates).toEqual([]);
    expect(refused.ok && refused.value.message).toBe("0/2 nodes are available: 2 node(s) overcommit CPU above the request's bound of 1.");
  });

  it('takes a host whose ratio equals the bound (1.5 on a 1.5 host), and any host without a bound', () => {
    const ctx = (maxOvercommit?: number) =>
      ({
        request: allocationRequest(1024, 2, {
          cpu: { exclusive: false, numa: 'any', ...(maxOvercommit === undefined ? {} : { maxOvercommit }) },
        }),
      }) as StepContext;
    expect(cpuOvercommitBound(ctx(1.5), cluster[1] as (typeof cluster)[number])).toBeNull();
    expect(cpuOvercommitBound(ctx(1.49), cluster[1] as (typeof cluster)[number])).not.toBeNull();
    expect(cpuOvercommitBound(ctx(), cluster[0] as (typeof cluster)[number])).toBeNull();
  });

  it('leaves a dedicated-CPU request free to use any host: exclusive cores are never overcommitted', () => {
    const placed = placeWith({ exclusive: true, numa: 'any', maxOvercommit: 1 }, cluster.slice(0, 1));
    expect(placed.ok && placed.value.candidates).toEqual(['dense']);
  });
});
