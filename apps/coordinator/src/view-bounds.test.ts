import { describe, expect, it } from 'vitest';
import { syntheticSnapshot } from './http/fixtures.ts';
import { ClusterView } from './view.ts';

describe('ClusterView: bounded by maxNodes', () => {
  it('refuses a new node id past maxNodes (counted), but makes room by forgetting the longest-lost node', () => {
    let mono = 0;
    const view = new ClusterView({
      lostAfterMs: 1_000,
      suspectAfterMs: 500,
      maxNodes: 3,
      clock: { wall: () => mono, monotonic: () => mono },
    });
    for (const nodeId of ['a', 'b', 'c']) view.apply(syntheticSnapshot({ nodeId }));
    view.apply(syntheticSnapshot({ nodeId: 'd' }));
    expect(view.size).toBe(3);
    expect(view.get('d')).toBeUndefined();
    expect(view.refusedNodes).toBe(1);
    // Known nodes still update at the bound.
    view.apply(syntheticSnapshot({ nodeId: 'a', seq: 2 }));
    expect(view.get('a')?.snapshot.seq).toBe(2);
    // b goes silent until lost: a new node takes its place.
    mono = 2_000;
    view.apply(syntheticSnapshot({ nodeId: 'a', seq: 3 }));
    view.apply(syntheticSnapshot({ nodeId: 'c', seq: 2 }));
    view.sweep();
    view.apply(syntheticSnapshot({ nodeId: 'd' }));
    expect(view.get('d')?.liveness).toBe('ready');
    expect(view.get('b')).toBeUndefined();
    expect(view.size).toBe(3);
  });
});
