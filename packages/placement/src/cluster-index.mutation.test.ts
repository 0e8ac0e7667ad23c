import { describe, expect, it } from 'vitest';
import { CapacityTree } from './capacity-tree.ts';
import { ClusterIndex, MAX_DOMAIN_LABELS } from './cluster-index.ts';
import { nodeView } from './fixtures.ts';
import { seededRandom } from './random.ts';
import type { CandidateSource, CapacityEntry } from './snapshot.ts';

/*
 * The cluster index and its trees at their edges: snapshots of the same seq, the salt a node keeps, removal from every
 * order, the state counts, the exact memory bound, the tracked domain labels, and the capacity tree's random walk and
 * full scan. Written against the survivors of a mutation run (docs/benchmarks.md, Mutation testing).
 */

function drain(source: CandidateSource): string[] {
  const out: string[] = [];
  for (let e: CapacityEntry | undefined = source.next(); e !== undefined; e = source.next()) out.push(e.nodeId);
  return out;
}

const need = (memoryMiB: number, vcpus: number, exclusive = false) => ({ memoryMiB, vcpus, exclusive });

describe('ClusterIndex updates', () => {
  it('applies a snapshot of the same seq, ignores an older one of the same boot, and says which', () => {
    const index = ClusterIndex.of([nodeView({ id: 'a', memoryMiB: 8192, seq: 5 })]);
    expect(index.upsert(nodeView({ id: 'a', memoryMiB: 8192, memoryCommitted: 1024, seq: 5 }))).toBe(true);
    expect(index.get('a')?.snapshot.memory.committed).toBe(1024);
    expect(index.upsert(nodeView({ id: 'a', memoryMiB: 8192, memoryCommitted: 4096, seq: 4 }))).toBe(false);
    expect(index.get('a')?.snapshot.memory.committed).toBe(1024);
  });

  it("keeps a node's place among equals when its snapshot is replaced", () => {
    const ids = Array.from({ length: 12 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    const index = ClusterIndex.of(
      ids.map((id) => nodeView({ id })),
      { random: seededRandom(11) },
    );
    const before = drain(index.byFreeMemory(need(1, 1), 'ascending'));
    // Equal nodes are visited in a salted order, not by name, so coordinators do not all pick the same node.
    expect(before).not.toEqual(ids);
    for (const id of ids) index.upsert(nodeView({ id, seq: 2 }));
    expect(drain(index.byFreeMemory(need(1, 1), 'ascending'))).toEqual(before);
  });

  it('forgets a removed node in every order, and counts states exactly', () => {
    const index = ClusterIndex.of(['a', 'b', 'c', 'd'].map((id) => nodeView({ id })));
    expect(index.remove('b')).toBe(true);
    expect(index.remove('b')).toBe(false);
    expect(drain(index.inStableOrder(need(1, 1)))).toEqual(['a', 'c', 'd']);
    expect(drain(index.inStableOrder(need(1, 1), 'a'))).toEqual(['c', 'd', 'a']);
    expect(index.stableRank('c')).toBe(1);
    expect(index.schedulableCount).toBe(3);
    index.upsert(nodeView({ id: 'c', cordoned: true, seq: 2 }));
    index.upsert(nodeView({ id: 'c', cordoned: false, seq: 3 }));
    index.upsert(nodeView({ id: 'd', seq: 2 }));
    expect(index.stateCounts()).toEqual({ 'node not ready': 0, 'node cordoned': 0, 'node unhealthy': 0 });
    expect(drain(index.inStableOrder(need(1, 1), 'c'))).toEqual(['d', 'a', 'c']);
  });

  it('counts a node with exactly the memory asked as not short of it', () => {
    const index = ClusterIndex.of([
      nodeView({ id: 'exact', memoryMiB: 4096 }),
      nodeView({ id: 'short', memoryMiB: 4095 }),
      nodeView({ id: 'more', memoryMiB: 8192 }),
    ]);
    expect(index.countShortOfMemory(4096)).toBe(1);
  });
});

describe('tracked domain labels', () => {
  it('tracks zone from the start, each new label on first use, and at most MAX_DOMAIN_LABELS', () => {
    const index = ClusterIndex.of([nodeView({ id: 'a', labels: { zone: 'z1', rack: 'r1' } })]);
    expect(index.trackedDomainLabels).toBe(1);
    index.domains('zone');
    expect(index.trackedDomainLabels).toBe(1);
    expect([...index.domains('rack').keys()]).toEqual(['r1']);
    expect(index.trackedDomainLabels).toBe(2);
    for (let i = 0; i < MAX_DOMAIN_LABELS + 3; i += 1) index.domains(`label-${i}`);
    expect(index.trackedDomainLabels).toBe(MAX_DOMAIN_LABELS);
    // An evicted label is rebuilt on use, with the same answer.
    expect([...index.domains('rack').keys()]).toEqual(['r1']);
    expect(index.trackedDomainLabels).toBe(MAX_DOMAIN_LABELS);
  });

  it('tracks the configured labels instead of zone', () => {
    const index = new ClusterIndex({ domainLabels: ['rack', 'row'] });
    expect(index.trackedDomainLabels).toBe(2);
    index.domains('zone');
    expect(index.trackedDomainLabels).toBe(3);
  });
});

describe('CapacityTree', () => {
  const entry = (nodeId: string, freeMemoryMiB: number): CapacityEntry => ({
    nodeId,
    freeMemoryMiB,
    sharedVcpuFit: 4,
    idleCores: 4,
    salt: 0,
  });
  const byMemory = (a: CapacityEntry, b: CapacityEntry) =>
    a.freeMemoryMiB - b.freeMemoryMiB || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0);

  function tree(...entries: CapacityEntry[]): CapacityTree {
    const t = new CapacityTree(byMemory, seededRandom(5));
    for (const e of entries) t.insert(e);
    return t;
  }

  it('lists every entry in order', () => {
    expect([...tree(entry('c', 300), entry('a', 100), entry('b', 200)).entries()].map((e) => e.nodeId)).toEqual(['a', 'b', 'c']);
    expect([...tree().entries()]).toEqual([]);
  });

  it('a random walk yields every fitting entry once, wrapping around from where it starts', () => {
    const t = tree(entry('a', 100), entry('b', 200), entry('c', 300), entry('d', 400));
    const fits = (e: CapacityEntry) => e.freeMemoryMiB >= 200;
    for (const r of [0, 0.4, 0.99]) {
      const walked = drain(t.walkFromRandom(need(200, 1), fits, () => r));
      expect([...walked].sort()).toEqual(['b', 'c', 'd']);
      const rotations = [
        ['b', 'c', 'd'],
        ['c', 'd', 'b'],
        ['d', 'b', 'c'],
      ];
      expect(rotations).toContainEqual(walked);
    }
    expect(drain(t.walkFromRandom(need(200, 1), fits, () => 0.5))).toEqual(['c', 'd', 'b']);
  });

  it('a random walk over nothing that fits yields nothing', () => {
    const t = tree(entry('a', 100));
    expect(
      drain(
        t.walkFromRandom(
          need(500, 1),
          (e) => e.freeMemoryMiB >= 500,
          () => 0.5,
        ),
      ),
    ).toEqual([]);
    expect(
      drain(
        tree().walkFromRandom(
          need(1, 1),
          () => true,
          () => 0.5,
        ),
      ),
    ).toEqual([]);
  });

  it('a finished walk stays finished', () => {
    const walk = tree(entry('a', 100), entry('b', 200)).walk(need(1, 1), 'ascending');
    expect([walk.next()?.nodeId, walk.next()?.nodeId, walk.next(), walk.next()]).toEqual(['a', 'b', undefined, undefined]);
  });

  it('removes exactly the entry named, and says whether it was there', () => {
    const t = tree(entry('a', 100), entry('b', 100), entry('c', 100));
    expect(t.remove(entry('b', 100))).toBe(true);
    expect(t.remove(entry('b', 100))).toBe(false);
    expect([...t.entries()].map((e) => e.nodeId)).toEqual(['a', 'c']);
    expect(t.size).toBe(2);
  });
});
