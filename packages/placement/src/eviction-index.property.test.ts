import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ClusterIndex } from './cluster-index.ts';
import { allocation, nodeHolding } from './fixtures.ts';
import { evictableUpTo, roomAfter } from './node-capacity.ts';
import { seededRandom } from './random.ts';
import type { CapacityEntry } from './snapshot.ts';

/*
 * The eviction trees (ClusterIndex.byRoomEvicting) against a brute force over every node, after any sequence of
 * snapshots, removals and state changes: a walk yields exactly the schedulable nodes whose room, once every preemptible
 * allocation at or below the level is evicted, fits the need, each once, at its current room.
 */

const PRIORITIES = [0, 10, 20, 40];
const arbOp = fc.oneof(
  fc.record({
    kind: fc.constant('snapshot' as const),
    node: fc.integer({ min: 0, max: 11 }),
    held: fc.array(fc.record({ memoryMiB: fc.integer({ min: 256, max: 3072 }), priority: fc.constantFrom(...PRIORITIES) }), {
      maxLength: 4,
    }),
    cordoned: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('remove' as const), node: fc.integer({ min: 0, max: 11 }) }),
  fc.record({ kind: fc.constant('ask' as const), level: fc.constantFrom(...PRIORITIES) }),
);

describe('eviction trees', () => {
  it('answer like a brute force over the nodes, whatever happened to them and whenever a level was first asked', () => {
    fc.assert(
      fc.property(fc.array(arbOp, { maxLength: 60 }), fc.integer({ min: 0, max: 8192 }), (ops, memoryMiB) => {
        const index = new ClusterIndex({ random: seededRandom(3) });
        let seq = 1;
        for (const op of ops) {
          const id = 'node' in op ? `n${op.node}` : '';
          if (op.kind === 'remove') index.remove(id);
          else if (op.kind === 'ask') index.byRoomEvicting(op.level, { memoryMiB: 0, vcpus: 0, exclusive: false }, 'descending').next();
          else {
            seq += 1;
            const held = op.held.map((h, i) => allocation(`${id}:${i}`, id, h.memoryMiB, 1, h.priority));
            index.upsert(nodeHolding({ id, memoryMiB: 8192, cores: 8, cordoned: op.cordoned, seq }, held));
          }
        }
        const need = { memoryMiB, vcpus: 1, exclusive: false };
        for (const level of PRIORITIES) {
          const walked: CapacityEntry[] = [];
          const walk = index.byRoomEvicting(level, need, 'descending');
          for (let e = walk.next(); e !== undefined; e = walk.next()) walked.push(e);
          const expected = [...index.nodes()]
            .filter((v) => !v.snapshot.cordoned)
            .map((v) => ({ nodeId: v.nodeId, ...roomAfter(v, evictableUpTo(v, level)) }))
            .filter((e) => e.freeMemoryMiB >= need.memoryMiB && e.sharedVcpuFit >= need.vcpus);
          expect(walked.map((e) => e.nodeId).sort()).toEqual(expected.map((e) => e.nodeId).sort());
          for (const e of walked) expect(e).toMatchObject(expected.find((x) => x.nodeId === e.nodeId) ?? {});
          // Descending by room.
          for (let i = 1; i < walked.length; i += 1)
            expect((walked[i - 1] as CapacityEntry).freeMemoryMiB).toBeGreaterThanOrEqual((walked[i] as CapacityEntry).freeMemoryMiB);
        }
      }),
      { numRuns: 300 },
    );
  });
});
