import { unwrap, type AllocationRequestInput, type Result } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { HeldJournal } from '../testing/held-journal.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal } from './records.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 4, threadsPerCore: 1 });

function host(journal: HeldJournal | MemoryJournal, memoryMiB = 4096): HostManager {
  const clock = new FakeClock();
  return unwrap(
    new ManagerFactory({ topology, clock }).host('n1').memory({ capacity: memoryMiB }).cpu({ overcommitRatio: 2 }).journal(journal).build(),
  );
}

const vm = (requestId: string, memoryMiB: number, extra: Partial<AllocationRequestInput> = {}): AllocationRequestInput => ({
  requestId,
  tenantId: 't1',
  resources: { memoryMiB, vcpus: 1 },
  ...extra,
});

/** Lets every pending reaction run (replies that could be given now are given). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Tracks whether a promise has settled yet. */
function watch<T>(promise: Promise<T>): { readonly settled: boolean; readonly promise: Promise<T> } {
  const state = { settled: false, promise };
  void promise.then(() => (state.settled = true));
  return state;
}

/** A turn that throws: a bug in a read, which makes the supervisor rebuild the manager. */
function crashATurn(h: HostManager): Promise<Result<unknown>> {
  return (h as unknown as { read(fn: () => never): Promise<Result<unknown>> }).read(() => {
    throw new Error('a bug in a read');
  });
}

describe('replies to retries and reconciling reads', () => {
  it('answers a retried allocate only once the original record is durable, and not ok when the disk then fails', async () => {
    const journal = new HeldJournal();
    const h = host(journal);
    const first = watch(h.allocate(vm('r1', 1024)));
    const retry = watch(h.allocate(vm('r1', 1024)));
    await settle();
    expect(first.settled).toBe(false);
    expect(retry.settled).toBe(false);
    journal.fail(new Error('disk died'));
    expect((await first.promise).ok).toBe(false);
    const retried = await retry.promise;
    expect(!retried.ok && retried.error.code).toBe('internal');
  });

  it('answers a retried release and a retried activate only once the original record is durable', async () => {
    const journal = new HeldJournal();
    const h = host(journal);
    const pending = h.allocate(vm('r1', 1024));
    const held = h.reserve(vm('res', 1024, { reservation: { ttlMs: 60_000 } }));
    journal.flush();
    const a = unwrap(await pending);
    const r = unwrap(await held);
    const release = watch(h.release({ requestId: 'rel', allocationId: a.id }));
    const releaseRetry = watch(h.release({ requestId: 'rel', allocationId: a.id }));
    const activate = watch(h.activateReservation(r.id, 'act'));
    const activateRetry = watch(h.activateReservation(r.id, 'act'));
    await settle();
    expect([release.settled, releaseRetry.settled, activate.settled, activateRetry.settled]).toEqual([false, false, false, false]);
    journal.flush();
    expect(unwrap(await releaseRetry.promise).status).toBe('released');
    expect(unwrap(await activateRetry.promise).status).toBe('active');
  });

  it('lists allocations only once what it lists is durable', async () => {
    const journal = new HeldJournal();
    const h = host(journal);
    void h.allocate(vm('r1', 1024));
    const listed = watch(h.getAllocations());
    await settle();
    expect(listed.settled).toBe(false);
    journal.fail(new Error('disk died'));
    expect((await listed.promise).ok).toBe(false);
  });
});

describe('a supervisor rebuild while records are in flight', () => {
  it('never admits against a prefix: R1 (3 of 4 GiB) in flight, a turn crashes, R2 (3 GiB) is refused', async () => {
    const journal = new HeldJournal();
    const h = host(journal, 4096);
    const r1 = h.allocate(vm('r1', 3072));
    const crashed = crashATurn(h);
    const r2 = h.allocate(vm('r2', 3072));
    await settle();
    journal.flush();
    await settle();
    journal.flush();
    const first = await r1;
    expect(unwrap(first).id).toBe('n1:1');
    expect((await crashed).ok).toBe(false);
    const second = await r2;
    expect(!second.ok && second.error.code).toBe('insufficient_capacity');
    // A restart from the disk holds exactly what was acknowledged.
    const restarted = host(new MemoryJournal(), 4096);
    unwrap(await restarted.restore(undefined, journal.records));
    expect(unwrap(await restarted.getAllocations()).map((a) => a.requestId)).toEqual(['r1']);
    expect(new Set(journal.records.map((r) => r.seq)).size).toBe(journal.records.length);
  });

  it('fails the in-flight replies when their append fails during the rebuild, and rebuilds from what is durable', async () => {
    const journal = new HeldJournal();
    const h = host(journal, 4096);
    const r1 = h.allocate(vm('r1', 3072));
    const crashed = crashATurn(h);
    await settle();
    journal.fail(new Error('disk died'));
    const first = await r1;
    expect(!first.ok && first.error.code).toBe('internal');
    expect((await crashed).ok).toBe(false);
    expect(journal.records).toEqual([]);
  });
});
