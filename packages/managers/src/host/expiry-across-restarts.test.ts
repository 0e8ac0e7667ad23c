import { unwrap, type AllocationRequestInput } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal, type HostRecord } from './records.ts';

/*
 * What expires expires, also across restarts: a reservation's TTL and a preemption's grace period are durations, so a
 * restarted agent ends them when that much real time has passed, whatever its wall clock did while it was down. In
 * the same boot the ledger's deadline on the host's monotonic clock decides; after a reboot only the wall-clock
 * instant (expiresAt) is left.
 */

const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 4, threadsPerCore: 1 });
const TTL_MS = 30_000;
const STEP_MS = 150_000;
const BOOT = 'boot-a';

function host(clock: FakeClock, journal = new MemoryJournal()): HostManager {
  return unwrap(
    new ManagerFactory({ topology, clock })
      .host('n1')
      .memory({ capacity: 4096 })
      .cpu({ overcommitRatio: 1 })
      .journal(journal)
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

async function reservedIds(h: HostManager): Promise<string[]> {
  return unwrap(await h.getAllocations({ status: 'reserved' })).map((a) => a.requestId);
}

/** Reserves 3 GiB of the 4 GiB host for TTL_MS, 10 s pass, the agent stops. */
async function reservedThenStopped(clock: FakeClock, journal: MemoryJournal): Promise<void> {
  const h = host(clock, journal);
  unwrap(await h.reserve(vm('hold', 3072, { reservation: { ttlMs: TTL_MS } })));
  clock.advance(10_000);
  await h.stop();
}

describe('a reservation restored from the ledger in the same boot', () => {
  it('expires when its TTL of real time is up although the wall clock stepped back while the agent was down', async () => {
    const clock = new FakeClock(1_700_000_000_000, { bootId: BOOT, monotonic: 5_000_000 });
    const journal = new MemoryJournal();
    await reservedThenStopped(clock, journal);

    const later = clock.nextProcess(5_000, -STEP_MS);
    const restarted = host(later);
    unwrap(await restarted.restore(undefined, journal.records));
    later.advance(14_000); // 29 s of its 30 s
    expect(await reservedIds(restarted)).toEqual(['hold']);
    later.advance(1_000);
    expect(await reservedIds(restarted)).toEqual([]);
    // The room it held is free again: a VM that needs it is placed.
    expect(unwrap(await restarted.allocate(vm('vm-big', 3072))).status).toBe('active');
  });

  it('is not expired early by a forward step while the agent was down', async () => {
    const clock = new FakeClock(1_700_000_000_000, { bootId: BOOT, monotonic: 5_000_000 });
    const journal = new MemoryJournal();
    await reservedThenStopped(clock, journal);

    const later = clock.nextProcess(5_000, STEP_MS);
    const restarted = host(later);
    expect(unwrap(await restarted.restore(undefined, journal.records)).expired).toBe(0);
    expect(await reservedIds(restarted)).toEqual(['hold']);
    later.advance(14_000);
    expect(await reservedIds(restarted)).toEqual(['hold']);
    later.advance(1_000);
    expect(await reservedIds(restarted)).toEqual([]);
  });

  it('expires on time through a snapshot (ledger compaction) too', async () => {
    const clock = new FakeClock(1_700_000_000_000, { bootId: BOOT, monotonic: 5_000_000 });
    const h = host(clock);
    unwrap(await h.reserve(vm('hold', 3072, { reservation: { ttlMs: TTL_MS } })));
    clock.advance(10_000);
    const snapshot = unwrap(await h.exportState());
    await h.stop();

    const later = clock.nextProcess(5_000, -STEP_MS);
    const restarted = host(later);
    unwrap(await restarted.restore(snapshot, []));
    later.advance(14_000);
    expect(await reservedIds(restarted)).toEqual(['hold']);
    later.advance(1_000);
    expect(await reservedIds(restarted)).toEqual([]);
    // And a snapshot taken by the restarted process still carries the deadline: a second restart keeps it.
    const again = clock.nextProcess(6_000, -2 * STEP_MS);
    const h2 = host(again);
    unwrap(await h2.restore(unwrap(await restarted.exportState()), []));
    expect(await reservedIds(h2)).toEqual([]);
  });

  it('expires at once on restore when its TTL ran out while the agent was down, whatever the wall clock says', async () => {
    const clock = new FakeClock(1_700_000_000_000, { bootId: BOOT, monotonic: 5_000_000 });
    const journal = new MemoryJournal();
    await reservedThenStopped(clock, journal);

    const later = clock.nextProcess(25_000, -STEP_MS);
    const restarted = host(later);
    expect(unwrap(await restarted.restore(undefined, journal.records)).expired).toBe(1);
    expect(await reservedIds(restarted)).toEqual([]);
  });

  it('keeps expiresAt (epoch ms) in the record beside the boot id and the monotonic deadline', async () => {
    const clock = new FakeClock(1_700_000_000_000, { bootId: BOOT, monotonic: 5_000_000 });
    const journal = new MemoryJournal();
    const h = host(clock, journal);
    const held = unwrap(await h.reserve(vm('hold', 1024, { reservation: { ttlMs: TTL_MS } })));
    expect(held.expiresAt).toBe(1_700_000_000_000 + TTL_MS);
    expect(journal.records.at(-1)).toMatchObject({
      kind: 'reserved',
      allocation: { expiresAt: 1_700_000_000_000 + TTL_MS },
      deadline: { bootId: BOOT, monotonicMs: 5_000_000 + TTL_MS },
    });
  });
});

describe('a preemption grace period restored from the ledger in the same boot', () => {
  it('ends when its grace period of real time is up although the wall clock stepped back while the agent was down', async () => {
    const clock = new FakeClock(1_700_000_000_000, { bootId: BOOT, monotonic: 5_000_000 });
    const journal = new MemoryJournal();
    const h = host(clock, journal);
    const low = unwrap(await h.allocate(vm('low', 3072, { priority: 0 })));
    unwrap(await h.preempt(vm('high', 3072, { priority: 50 }), [low.id], { graceMs: TTL_MS }));
    clock.advance(10_000);
    await h.stop();

    const later = clock.nextProcess(5_000, -STEP_MS);
    const restarted = host(later);
    unwrap(await restarted.restore(undefined, journal.records));
    later.advance(14_000);
    // The victim still runs (releasing); the preemptor waits outside the live allocations.
    expect(unwrap(await restarted.getAllocations()).map((a) => [a.requestId, a.status])).toEqual([['low', 'releasing']]);
    later.advance(1_000);
    expect(unwrap(await restarted.getAllocations()).map((a) => [a.requestId, a.status])).toEqual([['high', 'active']]);
  });
});

describe('after a reboot, or from a ledger written before monotonic deadlines', () => {
  it('a reservation restored after a reboot expires at its wall-clock instant (the only information left)', async () => {
    const clock = new FakeClock(1_700_000_000_000, { bootId: BOOT, monotonic: 5_000_000 });
    const journal = new MemoryJournal();
    await reservedThenStopped(clock, journal);

    // Rebooted: another boot id, monotonic time from zero; the wall clock is right, 5 s later.
    const rebooted = new FakeClock(clock.now() + 5_000, { bootId: 'boot-b', monotonic: 2_000 });
    const restarted = host(rebooted);
    unwrap(await restarted.restore(undefined, journal.records));
    rebooted.advance(14_000);
    expect(await reservedIds(restarted)).toEqual(['hold']);
    rebooted.advance(1_000);
    expect(await reservedIds(restarted)).toEqual([]);
  });

  it('records without a monotonic deadline replay as before: the wall-clock instant decides', async () => {
    const clock = new FakeClock(1_700_000_000_000, { bootId: BOOT, monotonic: 5_000_000 });
    const journal = new MemoryJournal();
    await reservedThenStopped(clock, journal);
    const legacy = journal.records.map((r) => {
      const { deadline: _dropped, ...rest } = r as HostRecord & { deadline?: unknown };
      return rest as HostRecord;
    });

    const later = clock.nextProcess(5_000, -STEP_MS);
    const restarted = host(later);
    unwrap(await restarted.restore(undefined, legacy));
    later.advance(15_000 + STEP_MS - 1);
    expect(await reservedIds(restarted)).toEqual(['hold']);
    later.advance(1);
    expect(await reservedIds(restarted)).toEqual([]);
  });

  it('a snapshot without deadlines replays as before too', async () => {
    const clock = new FakeClock(1_700_000_000_000, { bootId: BOOT, monotonic: 5_000_000 });
    const h = host(clock);
    unwrap(await h.reserve(vm('hold', 3072, { reservation: { ttlMs: TTL_MS } })));
    clock.advance(10_000);
    const { deadlines, ...older } = unwrap(await h.exportState());
    expect(deadlines).toEqual([expect.objectContaining({ bootId: BOOT, monotonicMs: 5_000_000 + TTL_MS })]);
    await h.stop();

    const later = clock.nextProcess(5_000, -STEP_MS);
    const restarted = host(later);
    unwrap(await restarted.restore(older, []));
    later.advance(15_000 + STEP_MS - 1);
    expect(await reservedIds(restarted)).toEqual(['hold']);
    later.advance(1);
    expect(await reservedIds(restarted)).toEqual([]);
  });
});
