import { describe, expect, it } from 'vitest';
import { syntheticSnapshot } from './http/fixtures.ts';
import { ClusterView } from './view.ts';

function clusterView(counting: Record<string, number> = {}) {
  const clock = { mono: 0 };
  const refused: [string, string][] = [];
  const view = new ClusterView({
    lostAfterMs: 15_000,
    suspectAfterMs: 1_500,
    clock: { wall: () => 1_000_000 + clock.mono, monotonic: () => clock.mono },
    countingOn: (nodeId) => counting[nodeId] ?? 0,
    onRefused: (nodeId, bootId) => refused.push([nodeId, bootId]),
  });
  return { view, clock, refused };
}

describe('ClusterView: node states', () => {
  it('shows ready, suspect after silence, lost past lostAfterMs, draining when cordoned, and counts them', () => {
    const { view, clock } = clusterView();
    view.apply(syntheticSnapshot({ nodeId: 'a' }));
    view.apply(syntheticSnapshot({ nodeId: 'b' }));
    view.apply({ ...syntheticSnapshot({ nodeId: 'c' }), cordoned: true });
    expect(view.nodes().map((n) => [n.nodeId, n.state])).toEqual([
      ['a', 'ready'],
      ['b', 'ready'],
      ['c', 'draining'],
    ]);
    clock.mono = 2_000;
    view.apply(syntheticSnapshot({ nodeId: 'a', seq: 2 }));
    view.apply({ ...syntheticSnapshot({ nodeId: 'c', seq: 2 }), cordoned: true });
    view.sweep();
    expect(view.get('b')?.state).toBe('suspect');
    clock.mono = 16_000;
    view.apply(syntheticSnapshot({ nodeId: 'a', seq: 3 }));
    view.apply({ ...syntheticSnapshot({ nodeId: 'c', seq: 3 }), cordoned: true });
    view.sweep();
    expect(view.get('b')?.state).toBe('lost');
    expect(view.nodes({ state: 'draining' }).map((n) => n.nodeId)).toEqual(['c']);
    expect(view.usage(0).nodes).toMatchObject({ total: 3, ready: 2, lost: 1, cordoned: 1, draining: 1, decommissioned: 0 });
  });

  it('keeps a decommissioned node that still holds allocations, never offered to placement, until nothing of it remains', () => {
    const counting: Record<string, number> = {};
    const { view } = clusterView(counting);
    view.apply({ ...syntheticSnapshot({ nodeId: 'a' }), allocationCount: 2 });
    view.apply(syntheticSnapshot({ nodeId: 'b' }));
    view.setDecommissioned('a', { at: 5 });
    expect(view.get('a')).toMatchObject({ state: 'decommissioned', decommissionedAt: 5, snapshot: { cordoned: true } });
    expect(view.usage(0).nodes).toMatchObject({ total: 2, decommissioned: 1 });
    // Still holds two allocations: not removable.
    expect(view.removable()).toEqual([]);
    view.apply({ ...syntheticSnapshot({ nodeId: 'a', seq: 2 }), allocationCount: 0 });
    counting['a'] = 1; // a placement intent still names it
    expect(view.removable()).toEqual([]);
    counting['a'] = 0;
    expect(view.removable()).toEqual(['a']);
    view.setDecommissioned('a', { at: 5, removedAt: 9 });
    expect(view.get('a')).toBeUndefined();
    expect(view.usage(0).nodes).toMatchObject({ total: 1, ready: 1, decommissioned: 0 });
    expect(view.health().status).not.toBe('degraded');
  });

  it('refuses the snapshots of a removed decommissioned node (counted, once per boot told), and takes them again after recommission', () => {
    const { view, clock, refused } = clusterView();
    view.setDecommissioned('x', { at: 5, removedAt: 6 });
    view.apply({ ...syntheticSnapshot({ nodeId: 'x' }), bootId: 'boot-1' });
    view.apply({ ...syntheticSnapshot({ nodeId: 'x', seq: 2 }), bootId: 'boot-1' });
    view.apply({ ...syntheticSnapshot({ nodeId: 'x' }), bootId: 'boot-2' });
    expect(view.get('x')).toBeUndefined();
    expect(view.size).toBe(0);
    expect(view.decommissionedSnapshots).toBe(3);
    expect(refused).toEqual([
      ['x', 'boot-1'],
      ['x', 'boot-2'],
    ]);
    expect(view.refusedNodesHeard(15_000)).toEqual(['x']);
    clock.mono = 20_000;
    expect(view.refusedNodesHeard(15_000)).toEqual([]);
    view.setDecommissioned('x', undefined);
    view.apply({ ...syntheticSnapshot({ nodeId: 'x', seq: 3 }), bootId: 'boot-2' });
    expect(view.get('x')?.state).toBe('ready');
  });

  it('takes a lost decommissioned node as removable whatever its last snapshot held', () => {
    const { view, clock } = clusterView();
    view.apply({ ...syntheticSnapshot({ nodeId: 'a' }), allocationCount: 4 });
    view.setDecommissioned('a', { at: 1 });
    expect(view.removable()).toEqual([]);
    clock.mono = 20_000;
    view.sweep();
    expect(view.get('a')?.liveness).toBe('lost');
    expect(view.removable()).toEqual(['a']);
  });
});
