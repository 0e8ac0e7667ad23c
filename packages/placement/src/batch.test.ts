import { describe, expect, it } from 'vitest';
import { unwrap, type AllocationRequest, type PlacementOptions } from '@allot/core';
import { decideBatch } from './batch.ts';
import { ClusterIndex } from './cluster-index.ts';
import { allocationRequest, nodeView, type NodeShape } from './fixtures.ts';
import { seededRandom } from './random.ts';
import type { PlacementContext } from './types.ts';

const opts = (more: Partial<PlacementOptions> = {}): PlacementOptions => ({ constraints: [], allowPreemption: false, ...more });
const ctx = (more: Partial<PlacementContext> = {}): PlacementContext => ({ random: seededRandom(7), ...more });
const cluster = (shapes: NodeShape[]) => ClusterIndex.of(shapes.map(nodeView), { random: seededRandom(1) });
const members = (n: number, memoryMiB: number, vcpus = 1, more: Partial<AllocationRequest> = {}): AllocationRequest[] =>
  Array.from({ length: n }, (_, i) => allocationRequest(memoryMiB, vcpus, { requestId: `m-${i}`, ...more }));

describe('decideBatch: N members decided on one snapshot, each seeing the ones before it', () => {
  it('binpack fills a node with members while they fit, then moves on: no node is given more than it has', () => {
    const c = cluster([
      { id: 'a', memoryMiB: 4096 },
      { id: 'b', memoryMiB: 8192 },
    ]);
    const d = unwrap(decideBatch(c, members(5, 2048), opts({ strategy: 'binpack' }), ctx()));
    expect(d.fits).toBe(true);
    if (!d.fits) return;
    // a (4 GiB) takes two, then b (8 GiB) three: decided one by one on the original view, all five would go to a.
    expect(d.nodes).toEqual(['a', 'a', 'b', 'b', 'b']);
  });

  it('anti-affinity among the members: at most maxPerNode of the batch (and of the group already there) per node', () => {
    const c = cluster([
      { id: 'a', memoryMiB: 65536 },
      { id: 'b', memoryMiB: 65536 },
      { id: 'c', memoryMiB: 65536, groups: { db: 1 } },
    ]);
    const d = unwrap(decideBatch(c, members(5, 1024), opts({ strategy: 'binpack', group: { name: 'db', maxPerNode: 2 } }), ctx()));
    expect(d.fits).toBe(true);
    if (!d.fits) return;
    const perNode = new Map<string, number>();
    for (const n of d.nodes) perNode.set(n, (perNode.get(n) ?? 0) + 1);
    expect(Object.fromEntries(perNode)).toEqual({ a: 2, b: 2, c: 1 });
  });

  it('all or nothing: when the Nth member does not fit, the batch is refused naming it, with the reasons', () => {
    const c = cluster([
      { id: 'a', memoryMiB: 65536 },
      { id: 'b', memoryMiB: 65536 },
    ]);
    const d = unwrap(decideBatch(c, members(3, 1024), opts({ group: { name: 'web', maxPerNode: 1 } }), ctx()));
    expect(d.fits).toBe(false);
    if (d.fits) return;
    expect(d.index).toBe(2);
    expect(d.decision.candidates).toEqual([]);
    expect(d.decision.rejected).toEqual({ 'anti-affinity group web max 1 per node': 2 });
  });

  it('refuses on capacity the batch itself used up (each alone would fit)', () => {
    const c = cluster([{ id: 'a', memoryMiB: 4096, cores: 4 }]);
    const d = unwrap(decideBatch(c, members(3, 1024, 2), opts(), ctx()));
    expect(d.fits).toBe(false);
    if (d.fits) return;
    expect(d.index).toBe(2);
    expect(d.decision.message).toContain('Insufficient cpu');
  });

  it('exclusive members take idle cores out of the shared pool for the members after them', () => {
    const c = cluster([
      { id: 'a', cores: 4 },
      { id: 'b', cores: 4 },
    ]);
    const d = unwrap(decideBatch(c, members(2, 1024, 3, { cpu: { exclusive: true, numa: 'any' } }), opts({ strategy: 'binpack' }), ctx()));
    expect(d.fits).toBe(true);
    if (!d.fits) return;
    expect(new Set(d.nodes).size).toBe(2);
  });

  it("counts the members against the tenant's per-node VM limit", () => {
    const c = cluster([{ id: 'a', tenants: { t1: { vms: 1, memoryMiB: 1024, vcpus: 1 } } }, { id: 'b' }]);
    const d = unwrap(decideBatch(c, members(3, 1024), opts({ strategy: 'binpack' }), ctx({ maxVmsPerNode: 2 })));
    expect(d.fits).toBe(true);
    if (!d.fits) return;
    expect([...d.nodes].sort()).toEqual(['a', 'b', 'b']);
  });

  it('leaves the snapshot it decided on unchanged', () => {
    const c = cluster([{ id: 'a', memoryMiB: 4096 }]);
    unwrap(decideBatch(c, members(2, 2048), opts(), ctx()));
    expect(c.get('a')?.snapshot.memory.committed).toBe(0);
    expect(unwrap(decideBatch(c, members(2, 2048), opts(), ctx())).fits).toBe(true);
  });
});
