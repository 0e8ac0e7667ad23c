import { unwrap, type AllocationRequestInput } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { FakeProbe } from '../testing/fake-probe.ts';
import { MemoryJournal } from './records.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });
const WINDOW_MS = 60_000;
const HOUR_MS = 3_600_000;

function host(clock: FakeClock, journal: MemoryJournal) {
  const probe = new FakeProbe({ topology, totalMemoryMiB: 32768, now: () => clock.now() });
  return unwrap(
    new ManagerFactory({ topology, probe, clock })
      .host('n1')
      .memory({ capacity: 16384 })
      .cpu({ overcommitRatio: 2 })
      .journal(journal)
      .releasedRetention(WINDOW_MS)
      .build(),
  );
}

const vm = (requestId: string): AllocationRequestInput => ({ requestId, tenantId: 't1', resources: { memoryMiB: 512, vcpus: 1 } });

/** A release of another request: the moment the state prunes what is past the window. */
async function releaseAnother(h: ReturnType<typeof host>, requestId: string): Promise<void> {
  const other = unwrap(await h.allocate(vm(requestId)));
  unwrap(await h.release({ requestId: `${requestId}-rel`, allocationId: other.id }));
}

describe('retention of released request ids', () => {
  it('survives a forward wall-clock step of an hour: a late retry gets the released allocation, not a second one', async () => {
    const clock = new FakeClock();
    const h = host(clock, new MemoryJournal());
    const first = unwrap(await h.allocate(vm('vm-1')));
    unwrap(await h.release({ requestId: 'vm-1-rel', allocationId: first.id }));
    clock.advance(1_000);
    clock.stepWall(HOUR_MS);
    await releaseAnother(h, 'vm-2');
    expect(unwrap(await h.allocate(vm('vm-1')))).toMatchObject({ id: first.id, status: 'released' });
    // Once the window has passed on monotonic time, the id is new again.
    clock.advance(WINDOW_MS);
    await releaseAnother(h, 'vm-3');
    expect(unwrap(await h.allocate(vm('vm-1'))).status).toBe('active');
  });

  it('survives a restart after a forward wall-clock step: records restored from the ledger are kept a window from the start', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const h = host(clock, journal);
    const first = unwrap(await h.allocate(vm('vm-1')));
    unwrap(await h.release({ requestId: 'vm-1-rel', allocationId: first.id }));
    await h.stop();

    // Down for a second, the wall clock stepped an hour forward meanwhile; the new process's monotonic time starts again.
    const later = new FakeClock(clock.now() + 1_000 + HOUR_MS);
    const restarted = host(later, new MemoryJournal());
    unwrap(await restarted.restore(undefined, journal.records));
    await releaseAnother(restarted, 'vm-2');
    expect(unwrap(await restarted.allocate(vm('vm-1')))).toMatchObject({ id: first.id, status: 'released' });
    // Also through a snapshot taken after the restart.
    const snapshot = unwrap(await restarted.exportState());
    expect(snapshot.released.map((r) => r.allocation.id)).toContain(first.id);

    later.advance(WINDOW_MS);
    await releaseAnother(restarted, 'vm-3');
    expect(unwrap(await restarted.allocate(vm('vm-1'))).status).toBe('active');
  });

  it('keeps a fence through a forward wall-clock step: an allocate at the fenced epoch is still refused', async () => {
    const clock = new FakeClock();
    const h = host(clock, new MemoryJournal());
    unwrap(await h.fence('vm-f', 3));
    clock.stepWall(HOUR_MS);
    await releaseAnother(h, 'vm-2');
    const refused = await h.allocate(vm('vm-f'), { fence: 2 });
    expect(refused.ok).toBe(false);
  });
});
