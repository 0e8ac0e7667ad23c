import { unwrap, type Allocation } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { eventOfRecord } from '@allot/agent';
import { ManagerFactory, MemoryJournal, topologyFixture } from '@allot/managers';
import { FakeClock } from '@allot/managers/testing';
import { IntentStore } from './intents/intent-store.ts';
import { handleEndingEvent } from './quota-events.ts';
import { MemoryBucket } from './store/memory-bucket.ts';

/*
 * Found by the simulator (pnpm sim --seed 665 --layer cluster, before the sweep could list the node): a tenant's release
 * reached the agent but every answer was lost (a disk stall), so no coordinator marked the intent released; the agent's
 * `released` event was then handled as `no_intent` and the tenant's usage stayed one VM too high until the sweep's
 * placement_missing pass (minutes in production). The released record, and so its event, carries the RELEASE's request
 * id (the release's idempotency key), while the quota-events consumer reads `event.requestId` as the placement's.
 * The same holds for any release made on the agent directly, the case the consumer exists for (finding 5a).
 */
describe('quota follows an allocation released on its agent', () => {
  it('gives the quota back for a release the coordinators never saw answered (the event names the release request id)', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 4, threadsPerCore: 1 });
    const host = unwrap(
      new ManagerFactory({ topology, clock }).host('n1').memory({ capacity: 8192 }).cpu({ overcommitRatio: 2 }).journal(journal).build(),
    );

    const wall = { wall: () => 1_000_000, monotonic: () => 1_000_000 };
    const store = new IntentStore(new MemoryBucket({ now: wall.wall }), { coordinatorId: 'c1', clock: wall, finishedTtlMs: 0 });
    const created = unwrap(
      await store.create({ requestId: 'vm-1', tenantId: 'acme', hash: 'h'.repeat(64), nodeId: 'n1', memoryMiB: 1024, vcpus: 2 }),
    );
    const allocation: Allocation = unwrap(
      await host.allocate(
        { requestId: 'vm-1', tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 2 } },
        { fence: created.value.attempt },
      ),
    );
    unwrap(await store.placed(created, { nodeId: 'n1', allocation, cpuset: [], preempted: [], attempts: 1 }));

    // The tenant's release, as PlaceFlow.release sends it; its answer never reaches a coordinator.
    unwrap(await host.release({ requestId: 'release-of-vm-1', allocationRequestId: 'vm-1', fence: 1, reason: 'released by the tenant' }));
    const released = journal.records.find((r) => r.kind === 'released');
    if (released === undefined) throw new Error('no released record journaled');

    expect(await handleEndingEvent(store, eventOfRecord('n1', released))).toEqual({ ok: true, value: 'released' });
    const usage = unwrap(await store.usage('acme'));
    expect(usage?.value.usage.vms).toBe(0);
  });
});
