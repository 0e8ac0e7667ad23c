import { unwrap, type AllocationRequestInput } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal } from './records.ts';

/*
 * Preemption at its edges: the refusals' words, a grace period a forced limits change leaves without room (the
 * preemptor expires, the victims are active again, replay agrees), a reserved victim that stops expiring, the room of
 * two waits. Written against the survivors of a mutation run (docs/benchmarks.md).
 * The host: 4 GiB of memory, 4 cores at ratio 1.
 */

const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 4, threadsPerCore: 1 });

function host(journal = new MemoryJournal(), clock: FakeClock = new FakeClock()): HostManager {
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

const vm = (
  requestId: string,
  memoryMiB: number,
  priority: number,
  extra: Partial<AllocationRequestInput> = {},
): AllocationRequestInput => ({
  requestId,
  tenantId: priority >= 50 ? 'gold' : 'bronze',
  resources: { memoryMiB, vcpus: 1 },
  priority,
  ...extra,
});

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('preempt refusals as a scheduler reads them', () => {
  it('says which victims did not make room for which request, and why', async () => {
    const h = host();
    const low = unwrap(await h.allocate(vm('low', 1024, 0)));
    unwrap(await h.allocate(vm('mid', 2048, 45)));
    const r = await h.preempt(vm('high', 3072, 50), [low.id]);
    expect(!r.ok && r.error.code).toBe('insufficient_capacity');
    expect(!r.ok && r.error.message).toMatch(new RegExp(`^releasing ${low.id} does not make room for high: `));
    expect(!r.ok && r.error.details).toMatchObject({ victims: [low.id], resourceType: 'memory' });
  });

  it('names the priority a victim would need, exactly the gap below being enough', async () => {
    const h = host();
    const edge = unwrap(await h.allocate(vm('edge', 3072, 40)));
    const close = unwrap(await h.allocate(vm('close', 1024, 41)));
    const refused = await h.preempt(vm('high', 2048, 50), [close.id]);
    expect(!refused.ok && refused.error.message).toBe(`victim ${close.id} has priority 41; preempting for priority 50 needs at most 40`);
    const done = unwrap(await h.preempt(vm('high', 2048, 50), [edge.id]));
    expect(done.victims.map((v) => [v.id, v.status])).toEqual([[edge.id, 'released']]);
  });

  it('names the victim that is already being preempted, and by whom', async () => {
    const h = host();
    const low = unwrap(await h.allocate(vm('low', 3072, 0)));
    unwrap(await h.preempt(vm('high', 2048, 50), [low.id], { graceMs: 5_000 }));
    const r = await h.preempt(vm('other', 2048, 60), [low.id]);
    expect(!r.ok && r.error).toEqual({
      code: 'conflict',
      message: `victim ${low.id} is already being preempted by high`,
      details: { reason: 'victim_preempting', allocationId: low.id, preemptedBy: 'high' },
    });
  });
});

describe('a grace period as the other verbs see it', () => {
  it('refuses to release a victim or the waiting preemptor, and to activate the preemptor, saying until when', async () => {
    const clock = new FakeClock();
    const h = host(new MemoryJournal(), clock);
    const low = unwrap(await h.allocate(vm('low', 3072, 0)));
    const waiting = unwrap(await h.preempt(vm('high', 2048, 50), [low.id], { graceMs: 5_000 })).allocation;
    const deadline = clock.now() + 5_000;
    const victim = await h.release({ requestId: 'rel-low', allocationId: low.id });
    expect(!victim.ok && victim.error.message).toBe(
      `allocation ${low.id} is released for high at ${deadline}, when its preemption's grace period ends`,
    );
    const preemptor = await h.release({ requestId: 'rel-high', allocationRequestId: 'high' });
    expect(!preemptor.ok && preemptor.error).toEqual({
      code: 'conflict',
      message: `preemptor ${waiting.id} becomes active at ${deadline}, when its preemption's grace period ends`,
      details: { reason: 'preempting', allocationId: waiting.id, preemptedBy: 'high', deadline },
    });
    const activate = await h.activateReservation(waiting.id, 'act-high');
    expect(!activate.ok && activate.error.message).toBe(preemptor.ok ? '' : preemptor.error.message);
    // Another allocation is released as usual meanwhile.
    const other = unwrap(await h.allocate(vm('other', 512, 0)));
    expect(unwrap(await h.release({ requestId: 'rel-other', allocationId: other.id })).status).toBe('released');
  });

  it('ends a wait whose room a forced limits change took: the preemptor expires, the victims are active again, and replay agrees', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const h = host(journal, clock);
    const low = unwrap(await h.allocate(vm('low', 3072, 0)));
    const waiting = unwrap(await h.preempt(vm('high', 2048, 50), [low.id], { graceMs: 5_000 })).allocation;
    unwrap(await h.updateLimits({ memory: { capacity: 1024 } }, { force: true }));
    clock.advance(5_000);
    await settle();
    expect(journal.records.at(-1)).toMatchObject({ kind: 'expired', allocationId: waiting.id, requestId: 'high' });
    expect(unwrap(await h.getAllocations()).map((a) => [a.requestId, a.status])).toEqual([['low', 'active']]);
    // The victim is an ordinary allocation again; the preemptor's request id is remembered as expired.
    const again = await h.activateReservation(waiting.id, 'act-high');
    expect(!again.ok && again.error.code).toBe('conflict');
    expect(unwrap(await h.release({ requestId: 'rel-low', allocationId: low.id })).status).toBe('released');
    const state = unwrap(await h.exportState());
    const replayed = host(new MemoryJournal(), clock);
    unwrap(await replayed.restore(undefined, journal.records));
    expect(unwrap(await replayed.exportState())).toEqual(state);
  });

  it('keeps a reserved victim past its own expiry while it is released for the preemptor', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const h = host(journal, clock);
    const low = unwrap(await h.reserve(vm('low', 3072, 0, { reservation: { ttlMs: 2_000 } })));
    const waiting = unwrap(await h.preempt(vm('high', 2048, 50), [low.id], { graceMs: 5_000 }));
    expect(waiting.victims.map((v) => [v.id, v.status])).toEqual([[low.id, 'releasing']]);
    clock.advance(2_000);
    await settle();
    expect(unwrap(await h.getAllocations()).map((a) => [a.requestId, a.status])).toEqual([['low', 'releasing']]);
    clock.advance(3_000);
    await settle();
    expect(journal.records.filter((r) => r.kind === 'expired' || r.kind === 'preempted').map((r) => r.kind)).toEqual(['preempted']);
    expect(unwrap(await h.getAllocations()).map((a) => [a.requestId, a.status])).toEqual([['high', 'active']]);
    expect(unwrap(await h.getUsage()).find((u) => u.resourceType === 'memory')).toMatchObject({ committed: 2048, reserved: 0 });
  });

  it('answers a retry after the wait with the preemptor active and the victims released', async () => {
    const clock = new FakeClock();
    const h = host(new MemoryJournal(), clock);
    const low = unwrap(await h.allocate(vm('low', 3072, 0)));
    const waiting = unwrap(await h.preempt(vm('high', 2048, 50), [low.id], { graceMs: 1_000 }));
    clock.advance(1_000);
    await settle();
    const retry = unwrap(await h.preempt(vm('high', 2048, 50), [low.id], { graceMs: 1_000 }));
    expect([retry.allocation.id, retry.allocation.status]).toEqual([waiting.allocation.id, 'active']);
    expect(retry.victims.map((v) => [v.id, v.status])).toEqual([[low.id, 'released']]);
  });
});

describe('the room of waits', () => {
  it('refuses an allocate that would take a wait’s room, naming the preemptor and its deadline', async () => {
    const clock = new FakeClock();
    const h = host(new MemoryJournal(), clock);
    const low = unwrap(await h.allocate(vm('low', 2048, 0)));
    unwrap(await h.preempt(vm('high', 3072, 50), [low.id], { graceMs: 10_000 }));
    const deadline = clock.now() + 10_000;
    unwrap(await h.allocate(vm('fits', 1024, 0)));
    const more = await h.allocate(vm('more', 1024, 0));
    expect(!more.ok && more.error.message).toMatch(new RegExp(`^node n1 holds room for preemptor high until ${deadline}: `));
    expect(!more.ok && more.error.details).toMatchObject({ reason: 'held_for_preemption', preemptedBy: 'high', deadline, nodeId: 'n1' });
    // An immediate preempt that would take the held room is refused the same way, and its victim keeps its grant.
    const fits = unwrap(await h.getAllocations()).find((a) => a.requestId === 'fits');
    const grab = await h.preempt(vm('grab', 2048, 60), [fits?.id as string]);
    expect(!grab.ok && grab.error.details).toMatchObject({ reason: 'held_for_preemption', victims: [fits?.id] });
    expect(unwrap(await h.getAllocations()).find((a) => a.requestId === 'fits')?.status).toBe('active');
  });
});

describe('deadlines and expiries side by side', () => {
  it('expires a reservation at its own time while a later grace period runs, and ends two waits each at its deadline', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const h = host(journal, clock);
    const a = unwrap(await h.allocate(vm('a', 1024, 0)));
    const b = unwrap(await h.allocate(vm('b', 1024, 0)));
    unwrap(await h.reserve(vm('r', 512, 0, { reservation: { ttlMs: 1_000 } })));
    unwrap(await h.preempt(vm('late', 1024, 50), [a.id], { graceMs: 5_000 }));
    unwrap(await h.preempt(vm('soon', 1024, 50), [b.id], { graceMs: 2_000 }));
    const kinds = () =>
      journal.records.flatMap((r) =>
        r.kind === 'expired' ? [[r.kind, r.requestId]] : r.kind === 'preempted' ? [[r.kind, r.allocation.requestId]] : [],
      );
    clock.advance(1_000);
    await settle();
    expect(kinds()).toEqual([['expired', 'r']]);
    clock.advance(1_000);
    await settle();
    expect(kinds()).toEqual([
      ['expired', 'r'],
      ['preempted', 'soon'],
    ]);
    expect(
      unwrap(await h.getAllocations())
        .map((x) => [x.requestId, x.status])
        .sort(),
    ).toEqual([
      ['a', 'releasing'],
      ['soon', 'active'],
    ]);
    clock.advance(3_000);
    await settle();
    expect(
      unwrap(await h.getAllocations())
        .map((x) => [x.requestId, x.status])
        .sort(),
    ).toEqual([
      ['late', 'active'],
      ['soon', 'active'],
    ]);
  });
});
