import { describe, expect, it } from 'vitest';
import { ClusterIndex } from './cluster-index.ts';
import { nodeView } from './fixtures.ts';
import type { CandidateSource, CapacityEntry } from './snapshot.ts';

function drain(source: CandidateSource): string[] {
  const out: string[] = [];
  for (let e: CapacityEntry | undefined = source.next(); e !== undefined; e = source.next()) out.push(e.nodeId);
  return out;
}
const any = { memoryMiB: 1, vcpus: 1, exclusive: false };

/**
 * A heartbeat of an unchanged host (same boot and seq) replaces only the node's view, with no tree operation. These
 * cases are what a same-seq snapshot may still change, and must still move the node.
 */
describe('ClusterIndex: a snapshot at the same seq', () => {
  it('is the view get() answers, and keeps the node where it was when nothing placement reads changed', () => {
    const index = ClusterIndex.of([nodeView({ id: 'a', seq: 3 }), nodeView({ id: 'b', seq: 1, memoryCommitted: 4096 })]);
    const beat = nodeView({ id: 'a', seq: 3 });
    expect(index.upsert(beat)).toBe(true);
    expect(index.get('a')).toBe(beat);
    expect(drain(index.byFreeMemory(any, 'descending'))).toEqual(['a', 'b']);
  });

  it('moves the node when its health, liveness or cordon changed', () => {
    const index = ClusterIndex.of([nodeView({ id: 'a', seq: 3 })]);
    index.upsert(nodeView({ id: 'a', seq: 3, health: { status: 'unhealthy', reasons: ['disk'] } }));
    expect(index.schedulableCount).toBe(0);
    expect(index.stateCounts()['node unhealthy']).toBe(1);
    index.upsert(nodeView({ id: 'a', seq: 3 }));
    index.upsert(nodeView({ id: 'a', seq: 3, liveness: 'suspect' }));
    expect(index.stateCounts()).toEqual({ 'node not ready': 1, 'node cordoned': 0, 'node unhealthy': 0 });
    index.upsert(nodeView({ id: 'a', seq: 3, cordoned: true }));
    expect(index.stateCounts()).toEqual({ 'node not ready': 0, 'node cordoned': 1, 'node unhealthy': 0 });
  });

  it('moves the node between failure domains when a label changed (a reload does not advance seq)', () => {
    const index = ClusterIndex.of([
      nodeView({ id: 'a', seq: 3, labels: { zone: 'z1' }, tenants: { t: { vms: 1, memoryMiB: 1, vcpus: 1 } } }),
    ]);
    index.upsert(nodeView({ id: 'a', seq: 3, labels: { zone: 'z2' }, tenants: { t: { vms: 1, memoryMiB: 1, vcpus: 1 } } }));
    expect([...index.schedulableDomains('zone')]).toEqual(['z2']);
    expect(index.domains('zone').get('z2')?.tenants.get('t')).toBe(1);
    expect(index.domains('zone').get('z1')?.tenants.get('t') ?? 0).toBe(0);
  });

  it('moves the node when its free figures changed', () => {
    const index = ClusterIndex.of([nodeView({ id: 'a', seq: 3 }), nodeView({ id: 'b', seq: 1, memoryCommitted: 4096 })]);
    index.upsert(nodeView({ id: 'a', seq: 3, memoryCommitted: 8192 }));
    expect(drain(index.byFreeMemory(any, 'descending'))).toEqual(['b', 'a']);
  });
});
