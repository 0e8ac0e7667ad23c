import { describe, expect, it } from 'vitest';
import { unwrap, type PlacementOptions } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import { allocation, allocationRequest, nodeView, type NodeShape } from './fixtures.ts';
import { planPreemptionAmong, preemptionCandidates } from './post-filter.ts';
import { seededRandom } from './random.ts';

const opts = (more: Partial<PlacementOptions> = {}): PlacementOptions => ({ constraints: [], allowPreemption: true, ...more });
const cluster = (shapes: NodeShape[]) => ClusterIndex.of(shapes.map(nodeView), { random: seededRandom(1) });
const ctx = { random: seededRandom(3) };
const high = allocationRequest(4096, 1, { priority: 50 });

describe('preemption post-filter', () => {
  const full = (id: string, committed: number, more: Partial<NodeShape> = {}): NodeShape => ({
    id,
    memoryMiB: 8192,
    memoryCommitted: committed,
    ...more,
  });

  it('names nodes from the whole index, most free memory first, however many there are and in whatever order they came', () => {
    const shapes = Array.from({ length: 50 }, (_, i) => full(`n${String(i).padStart(2, '0')}`, 8192));
    shapes.push(full('roomiest', 6144), full('roomier', 7168));
    expect(unwrap(preemptionCandidates(cluster(shapes), high, opts(), ctx, 2))).toEqual(['roomiest', 'roomier']);
  });

  it('keeps every filter but capacity: state, labels, anti-affinity, tenant quota, tried nodes, the named node', () => {
    const c = cluster([
      full('cordoned', 6144, { cordoned: true }),
      full('other-zone', 6144, { labels: { zone: 'z2' } }),
      full('group-full', 6144, { labels: { zone: 'z1' }, groups: { web: 1 } }),
      full('quota-full', 6144, { labels: { zone: 'z1' }, tenants: { t1: { vms: 2, memoryMiB: 1, vcpus: 1 } } }),
      full('tried', 6144, { labels: { zone: 'z1' } }),
      full('ok', 8192, { labels: { zone: 'z1' } }),
    ]);
    const options = opts({ constraints: [{ key: 'zone', op: 'In', values: ['z1'] }], group: { name: 'web', maxPerNode: 1 } });
    expect(unwrap(preemptionCandidates(c, high, options, { ...ctx, maxVmsPerNode: 2, exclude: new Set(['tried']) }, 10))).toEqual(['ok']);
    expect(unwrap(preemptionCandidates(c, high, opts({ strategy: 'manual', nodeId: 'other-zone' }), ctx, 10))).toEqual(['other-zone']);
  });

  it('leaves out a node too small even when emptied', () => {
    const c = cluster([{ id: 'small', memoryMiB: 2048, memoryCommitted: 2048 }, full('big', 8192)]);
    expect(unwrap(preemptionCandidates(c, high, opts(), ctx, 10))).toEqual(['big']);
  });

  it('plans the fewest victims, then the lowest highest priority, over the fetched nodes', () => {
    const c = cluster([full('a', 8192), full('b', 8192)]);
    const lists = new Map([
      ['a', [allocation('a1', 'a', 2048, 1, 0), allocation('a2', 'a', 2048, 1, 0), allocation('a3', 'a', 4096, 1, 30)]],
      ['b', [allocation('b1', 'b', 4096, 1, 20), allocation('b2', 'b', 4096, 1, 40)]],
    ]);
    const plan = planPreemptionAmong(c, high, lists);
    expect(plan?.nodeId).toBe('b');
    expect(plan?.victims.map((v) => v.id)).toEqual(['b1']);
    // Priority 15: only the priority-0 allocations are 10 points lower; two of them are needed.
    expect(planPreemptionAmong(c, allocationRequest(4096, 1, { priority: 15 }), lists)?.victims.map((v) => v.id)).toEqual(['a1', 'a2']);
    expect(planPreemptionAmong(c, allocationRequest(4096, 1, { priority: 9 }), lists)).toBeNull();
  });
});
