import { unwrap, type AllocationRequestInput } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { HeldJournal } from '../testing/held-journal.ts';
import type { HostManager } from './host-manager.ts';
import { HostStateSnapshotSchema, MemoryJournal } from './records.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 4, threadsPerCore: 1 });

function host(options: { journal?: MemoryJournal | HeldJournal; clock?: FakeClock; memoryMiB?: number } = {}): HostManager {
  const clock = options.clock ?? new FakeClock();
  return unwrap(
    new ManagerFactory({ topology, clock })
      .host('n1')
      .memory({ capacity: options.memoryMiB ?? 4096 })
      .cpu({ overcommitRatio: 2 })
      .journal(options.journal ?? new MemoryJournal())
      .releasedRetention(60_000)
      .build(),
  );
}

const vm = (requestId: string, memoryMiB: number, extra: Partial<AllocationRequestInput> = {}): AllocationRequestInput => ({
  requestId,
  tenantId: 't1',
  resources: { memoryMiB, vcpus: 1 },
  ...extra,
});
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('fencing at the agent', () => {
  it('after a refusal at fence f, no allocate of that request id at f or below commits; a higher one may', async () => {
    const journal = new MemoryJournal();
    const h = host({ journal });
    unwrap(await h.allocate(vm('big', 3072)));
    const refused = await h.allocate(vm('r1', 2048), { fence: 2 });
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    expect(journal.records.at(-1)).toMatchObject({ kind: 'fenced', requestId: 'r1', fence: 2 });
    unwrap(await h.release({ requestId: 'rel-big', allocationRequestId: 'big' }));
    // A stale message of the same drive (or an earlier one) arriving late: room now, but it must not commit.
    for (const fence of [1, 2]) {
      const stale = await h.allocate(vm('r1', 2048), { fence });
      expect(!stale.ok && stale.error).toMatchObject({ code: 'conflict', details: { reason: 'fenced', fence: 2 } });
    }
    const next = unwrap(await h.allocate(vm('r1', 2048), { fence: 3 }));
    expect(next.fence).toBe(3);
    // A retry at an older epoch of what is held replays it (the allocation exists); the request is the same one.
    expect(unwrap(await h.allocate(vm('r1', 2048), { fence: 1 })).id).toBe(next.id);
  });

  it('fence records the epoch durably, answers the allocation in any status, and refuses a later allocate at or below it', async () => {
    const journal = new HeldJournal();
    const h = host({ journal });
    const answered = h.fence('r1', 5);
    let settled = false;
    void answered.then(() => (settled = true));
    await settle();
    expect(settled).toBe(false);
    journal.flush();
    expect(unwrap(await answered)).toEqual({ allocation: null, fence: 5 });
    const stale = h.allocate(vm('r1', 1024), { fence: 5 });
    journal.flush();
    expect((await stale).ok).toBe(false);
    const made = h.allocate(vm('r1', 1024), { fence: 6 });
    journal.flush();
    const a = unwrap(await made);
    // Lower than recorded: answered, nothing journaled.
    const lower = h.fence('r1', 4);
    expect(journal.pending).toBe(0);
    expect(unwrap(await lower)).toEqual({ allocation: a, fence: 6 });
    const release = h.release({ requestId: 'rel', allocationId: a.id, fence: 6 });
    journal.flush();
    unwrap(await release);
    expect(unwrap(await h.fence('r1', 6)).allocation?.status).toBe('released');
  });

  it('refuses a release at a fence below the recorded one (a retry drove the request since), and accepts it at the recorded one', async () => {
    const h = host();
    const a = unwrap(await h.allocate(vm('r1', 1024), { fence: 1 }));
    // A retry of the same request at a higher epoch replays the allocation and raises the recorded fence.
    expect(unwrap(await h.allocate(vm('r1', 1024), { fence: 3 })).id).toBe(a.id);
    const stale = await h.release({ requestId: 'sweep-1', allocationId: a.id, fence: 2 });
    expect(!stale.ok && stale.error).toMatchObject({ code: 'conflict', details: { reason: 'fenced', fence: 3 } });
    expect(unwrap(await h.release({ requestId: 'sweep-2', allocationId: a.id, fence: 3 })).status).toBe('released');
  });

  it('answers a refusal at a fence only once the fenced record is durable, and not at all when it fails', async () => {
    const journal = new HeldJournal();
    const h = host({ journal, memoryMiB: 1024 });
    const refused = h.allocate(vm('r1', 2048), { fence: 1 });
    let settled = false;
    void refused.then(() => (settled = true));
    await settle();
    expect(settled).toBe(false);
    journal.fail(new Error('disk died'));
    const result = await refused;
    expect(!result.ok && result.error.code).toBe('internal');
  });

  it('records nothing for requests without a fence', async () => {
    const journal = new MemoryJournal();
    const h = host({ journal, memoryMiB: 1024 });
    expect((await h.allocate(vm('r1', 2048))).ok).toBe(false);
    expect(journal.records).toEqual([]);
    expect(unwrap(await h.fence('r1', 1))).toEqual({ allocation: null, fence: 1 });
  });

  it('keeps fences across a restart from a snapshot or from the records, and forgets those without an allocation after the window', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const h = host({ journal, clock });
    unwrap(await h.fence('lone', 4));
    const a = unwrap(await h.allocate(vm('held', 1024), { fence: 1 }));
    unwrap(await h.fence('held', 7));
    const snapshot = unwrap(await h.exportState());
    expect(snapshot.fences).toEqual([
      { requestId: 'held', fence: 7, at: a.updatedAt },
      { requestId: 'lone', fence: 4, at: clock.now() },
    ]);
    for (const [from, records] of [
      [snapshot, []],
      [undefined, journal.records],
    ] as const) {
      const again = host({ clock });
      unwrap(await again.restore(from, records));
      expect(unwrap(await again.fence('lone', 1)).fence).toBe(4);
      expect(unwrap(await again.fence('held', 1)).fence).toBe(7);
      expect(unwrap(await again.exportState())).toEqual(snapshot);
    }
    clock.advance(60_001);
    unwrap(await h.release({ requestId: 'rel', allocationId: a.id }));
    expect(unwrap(await h.exportState()).fences).toEqual([{ requestId: 'held', fence: 7, at: clock.now() }]);
    expect(unwrap(await h.fence('lone', 1)).fence).toBe(1);
  });

  it('reads a snapshot written before fencing (no fences field)', () => {
    const old = {
      version: 1,
      nodeId: 'n1',
      seq: 0,
      idCounter: 0,
      cordon: { cordoned: false, reason: '' },
      configs: [],
      live: [],
      released: [],
    };
    expect(HostStateSnapshotSchema.parse(old).fences).toBeUndefined();
  });
});
