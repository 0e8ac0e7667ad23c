import { unwrap, type AllocationRequestInput } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal } from './records.ts';

/*
 * Atomic preemption at the agent: the victims released and the preemptor allocated in one turn and one ledger record,
 * or nothing changed at all (the victims keep their exact grants).
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

/** A host full of memory: low-1 (priority 0, 2 GiB, an exclusive core), low-2 (priority 5, 1 GiB), mid (priority 45, 1 GiB). */
async function fullHost(journal = new MemoryJournal()): Promise<{ h: HostManager; journal: MemoryJournal; ids: Record<string, string> }> {
  const h = host(journal);
  const ids: Record<string, string> = {};
  ids['low-1'] = unwrap(await h.allocate(vm('low-1', 2048, 0, { cpu: { exclusive: true, numa: 'any' } }))).id;
  ids['low-2'] = unwrap(await h.allocate(vm('low-2', 1024, 5))).id;
  ids['mid'] = unwrap(await h.allocate(vm('mid', 1024, 45))).id;
  return { h, journal, ids };
}

describe('preempt', () => {
  it('releases the victims and allocates the preemptor in one ledger record', async () => {
    const { h, journal, ids } = await fullHost();
    const before = journal.records.length;
    const done = unwrap(await h.preempt(vm('high', 2048, 50), [ids['low-1'] as string], { fence: 1 }));
    expect(done.allocation).toMatchObject({ requestId: 'high', status: 'active', fence: 1, priority: 50 });
    expect(done.victims.map((v) => [v.id, v.status])).toEqual([[ids['low-1'], 'released']]);
    expect(journal.records.length).toBe(before + 1);
    expect(journal.records.at(-1)).toMatchObject({
      kind: 'preempted',
      allocation: { id: done.allocation.id, requestId: 'high' },
      victims: [{ allocationId: ids['low-1'], allocationRequestId: 'low-1', releaseRequestId: `${ids['low-1']}=preempted` }],
    });
    const live = unwrap(await h.getAllocations());
    expect(live.map((a) => a.requestId).sort()).toEqual(['high', 'low-2', 'mid']);
    const memory = unwrap(await h.getUsage()).find((u) => u.resourceType === 'memory');
    expect(memory?.committed).toBe(4096);
    const view = unwrap(await h.getHostView());
    expect(view.tenants).toEqual({ bronze: { vms: 2, memoryMiB: 2048, vcpus: 2 }, gold: { vms: 1, memoryMiB: 2048, vcpus: 1 } });
  });

  it('refuses without changing anything when releasing the victims does not make room', async () => {
    const { h, journal, ids } = await fullHost();
    const state = unwrap(await h.exportState());
    const before = journal.records.length;
    const r = await h.preempt(vm('high', 3072, 50), [ids['low-1'] as string]);
    expect(!r.ok && r.error).toMatchObject({ code: 'insufficient_capacity', details: { victims: [ids['low-1']] } });
    expect(journal.records.length).toBe(before);
    // The victim keeps its exact grant (its exclusive core), and nothing else moved.
    expect(unwrap(await h.exportState())).toEqual(state);
    // The same room is still there for an ordinary allocate afterwards: the trial left nothing taken.
    expect(unwrap(await h.getUsage()).find((u) => u.resourceType === 'memory')?.committed).toBe(4096);
  });

  it('refuses a victim too close in priority, unknown, already released, or named twice; nothing changes', async () => {
    const { h, journal, ids } = await fullHost();
    unwrap(await h.release({ requestId: 'rel-low-2', allocationId: ids['low-2'] as string }));
    const state = unwrap(await h.exportState());
    const before = journal.records.length;
    const close = await h.preempt(vm('high', 1024, 50), [ids['low-1'] as string, ids['mid'] as string]);
    expect(!close.ok && close.error).toMatchObject({
      code: 'conflict',
      details: { reason: 'victim_priority', allocationId: ids['mid'], priority: 45, preemptorPriority: 50, minGap: 10 },
    });
    const unknown = await h.preempt(vm('high', 1024, 50), ['n1:99']);
    expect(!unknown.ok && unknown.error).toMatchObject({ code: 'not_found', details: { reason: 'victim_unknown', allocationId: 'n1:99' } });
    const gone = await h.preempt(vm('high', 1024, 50), [ids['low-2'] as string]);
    expect(!gone.ok && gone.error).toMatchObject({ code: 'conflict', details: { reason: 'victim_gone', status: 'released' } });
    const twice = await h.preempt(vm('high', 1024, 50), [ids['low-1'] as string, ids['low-1'] as string]);
    expect(!twice.ok && twice.error).toMatchObject({ code: 'invalid_request', details: { field: 'victims' } });
    expect(journal.records.length).toBe(before);
    expect(unwrap(await h.exportState())).toEqual(state);
  });

  it('refuses on a cordoned host and keeps the victims', async () => {
    const { h, ids } = await fullHost();
    unwrap(await h.setCordon(true, 'maintenance'));
    const r = await h.preempt(vm('high', 1024, 50), [ids['low-1'] as string]);
    expect(!r.ok && r.error.code).toBe('unavailable');
    expect(
      unwrap(await h.getAllocations())
        .map((a) => a.requestId)
        .sort(),
    ).toEqual(['low-1', 'low-2', 'mid']);
  });

  it('is idempotent by the request id: a retry answers the same allocation and journals nothing', async () => {
    const { h, journal, ids } = await fullHost();
    const first = unwrap(await h.preempt(vm('high', 2048, 50), [ids['low-1'] as string], { fence: 1 }));
    const before = journal.records.length;
    const again = unwrap(await h.preempt(vm('high', 2048, 50), [ids['low-1'] as string], { fence: 2 }));
    expect(again.allocation.id).toBe(first.allocation.id);
    expect(again.victims.map((v) => v.status)).toEqual(['released']);
    // The allocate a coordinator's retry sends for the same request replays it too.
    expect(unwrap(await h.allocate(vm('high', 2048, 50), { fence: 3 })).id).toBe(first.allocation.id);
    expect(journal.records.slice(before).map((r) => r.kind)).toEqual(['fenced', 'fenced']);
    const other = await h.preempt(vm('high', 1024, 50), [ids['low-2'] as string]);
    expect(!other.ok && other.error.code).toBe('conflict');
  });

  it('is fenced like allocate: a refusal at f records f, and nothing at f or below commits afterwards', async () => {
    const { h, journal, ids } = await fullHost();
    const refused = await h.preempt(vm('high', 3072, 50), [ids['low-1'] as string], { fence: 2 });
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    expect(journal.records.at(-1)).toMatchObject({ kind: 'fenced', requestId: 'high', fence: 2 });
    const stale = await h.preempt(vm('high', 3072, 50), [ids['low-1'] as string, ids['low-2'] as string], { fence: 2 });
    expect(!stale.ok && stale.error).toMatchObject({ code: 'conflict', details: { reason: 'fenced', fence: 2 } });
    expect(
      unwrap(await h.getAllocations())
        .map((a) => a.requestId)
        .sort(),
    ).toEqual(['low-1', 'low-2', 'mid']);
    const next = unwrap(await h.preempt(vm('high', 3072, 50), [ids['low-1'] as string, ids['low-2'] as string], { fence: 3 }));
    expect(next.allocation.fence).toBe(3);
  });

  it('counts anti-affinity without the victims: a victim of the same group makes its place free', async () => {
    const h = host();
    const group = { name: 'web', maxPerNode: 1 };
    // Groups are per tenant: the victim is of the preemptor's tenant.
    const low = unwrap(await h.allocate(vm('low', 1024, 0, { group, tenantId: 'gold' })));
    const refusedByGroup = await h.allocate(vm('high', 1024, 50, { group }));
    expect(!refusedByGroup.ok && refusedByGroup.error.code).toBe('insufficient_capacity');
    const done = unwrap(await h.preempt(vm('high', 1024, 50, { group }), [low.id]));
    expect(done.allocation.status).toBe('active');
    expect(unwrap(await h.getHostView()).groups).toEqual({ 'gold/web': 1 });
  });

  it('replays from the records and restores from a snapshot to the same state', async () => {
    const { h, journal, ids } = await fullHost();
    unwrap(await h.preempt(vm('high', 3072, 50), [ids['low-1'] as string, ids['low-2'] as string], { fence: 1 }));
    const state = unwrap(await h.exportState());
    expect(state.live.map((a) => a.requestId).sort()).toEqual(['high', 'mid']);
    expect(state.released.map((r) => [r.allocation.requestId, r.releaseRequestId])).toEqual([
      ['low-1', `${ids['low-1']}=preempted`],
      ['low-2', `${ids['low-2']}=preempted`],
    ]);
    const fromRecords = host();
    unwrap(await fromRecords.restore(undefined, journal.records));
    expect(unwrap(await fromRecords.exportState())).toEqual(state);
    const fromSnapshot = host();
    unwrap(await fromSnapshot.restore(state, []));
    expect(unwrap(await fromSnapshot.exportState())).toEqual(state);
    // After the restart the retry still answers the same allocation.
    const again = unwrap(await fromRecords.preempt(vm('high', 3072, 50), [ids['low-1'] as string, ids['low-2'] as string], { fence: 1 }));
    expect(again.allocation.id).toBe(state.live.find((a) => a.requestId === 'high')?.id);
  });
});

describe('preempt with a grace period', () => {
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('holds the room with the victims until the deadline, then releases them and allocates the preemptor in one record', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const h = host(journal, clock);
    const low = unwrap(await h.allocate(vm('low', 3072, 0)));
    const started = clock.now();
    const waiting = unwrap(await h.preempt(vm('high', 2048, 50), [low.id], { fence: 1, graceMs: 30_000 }));
    expect(waiting.allocation).toMatchObject({ requestId: 'high', status: 'reserved', expiresAt: started + 30_000, cpu: null, fence: 1 });
    expect(waiting.victims.map((v) => v.status)).toEqual(['releasing']);
    expect(journal.records.at(-1)).toMatchObject({
      kind: 'preempting',
      allocation: { id: waiting.allocation.id },
      victims: [{ allocationId: low.id }],
    });
    // Still counted: nothing else can take the victim's room meanwhile.
    expect(unwrap(await h.getUsage()).find((u) => u.resourceType === 'memory')?.committed).toBe(3072);
    const other = await h.allocate(vm('other', 2048, 90));
    expect(!other.ok && other.error.code).toBe('insufficient_capacity');
    // The victim is released by the preemption only, the preemptor becomes active by itself, and a retry answers the wait.
    const release = await h.release({ requestId: 'rel-low', allocationId: low.id });
    expect(!release.ok && release.error).toMatchObject({
      code: 'conflict',
      details: { reason: 'preempting', preemptedBy: 'high', deadline: started + 30_000 },
    });
    const activate = await h.activateReservation(waiting.allocation.id, 'act-high');
    expect(!activate.ok && activate.error).toMatchObject({ code: 'conflict', details: { reason: 'preempting' } });
    const again = await h.preempt(vm('high', 2048, 50), [low.id], { fence: 1, graceMs: 30_000 });
    expect(again.ok && again.value.allocation.id).toBe(waiting.allocation.id);
    const second = await h.preempt(vm('high-2', 1024, 60), [low.id]);
    expect(!second.ok && second.error).toMatchObject({ code: 'conflict', details: { reason: 'victim_preempting' } });
    const before = journal.records.length;

    clock.advance(30_000);
    await settle();
    expect(journal.records.slice(before).map((r) => r.kind)).toEqual(['preempted']);
    expect(journal.records.at(-1)).toMatchObject({
      kind: 'preempted',
      allocation: { id: waiting.allocation.id, status: 'active' },
      victims: [{ allocationId: low.id }],
    });
    const live = unwrap(await h.getAllocations());
    expect(live.map((a) => [a.requestId, a.status])).toEqual([['high', 'active']]);
    expect(live[0]?.cpu?.cpuset.length).toBe(1);
    expect(unwrap(await h.getUsage()).find((u) => u.resourceType === 'memory')?.committed).toBe(2048);
  });

  it('holds the part of the room that was free at the start too: an allocate that would take it is refused until the deadline', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const h = host(journal, clock);
    const low = unwrap(await h.allocate(vm('low', 2048, 0)));
    // The preemptor needs the victim's 2 GiB and 1 GiB of the 2 GiB free now.
    unwrap(await h.preempt(vm('high', 3072, 50), [low.id], { graceMs: 10_000 }));
    unwrap(await h.allocate(vm('fits', 1024, 0)));
    const more = await h.allocate(vm('more', 1024, 0));
    expect(!more.ok && more.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { reason: 'held_for_preemption', preemptedBy: 'high' },
    });
    const second = await h.preempt(
      vm('high-2', 1024, 60),
      [unwrap(await h.getAllocations()).find((a) => a.requestId === 'fits')?.id as string],
      { graceMs: 1_000 },
    );
    expect(second.ok).toBe(true);
    clock.advance(10_000);
    await settle();
    expect(
      unwrap(await h.getAllocations())
        .map((a) => [a.requestId, a.status])
        .sort(),
    ).toEqual([
      ['high', 'active'],
      ['high-2', 'active'],
    ]);
    expect(journal.records.filter((r) => r.kind === 'preempted' || r.kind === 'expired').map((r) => r.kind)).toEqual([
      'preempted',
      'preempted',
    ]);
  });

  it('survives a restart: the wait replays and restores from a snapshot, and a deadline passed while down ends at start', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const h = host(journal, clock);
    const low = unwrap(await h.allocate(vm('low', 3072, 0)));
    const waiting = unwrap(await h.preempt(vm('high', 2048, 50), [low.id], { fence: 2, graceMs: 10_000 }));
    unwrap(await h.fence('high', 4));
    const state = unwrap(await h.exportState());
    expect(state.preempting).toEqual([{ allocation: waiting.allocation, victims: [expect.objectContaining({ allocationId: low.id })] }]);
    const fromRecords = host(new MemoryJournal(), clock);
    unwrap(await fromRecords.restore(undefined, journal.records));
    expect(unwrap(await fromRecords.exportState())).toEqual(state);
    const fromSnapshot = host(new MemoryJournal(), clock);
    unwrap(await fromSnapshot.restore(state, []));
    expect(unwrap(await fromSnapshot.exportState())).toEqual(state);
    expect(unwrap(await fromSnapshot.fence('high', 1)).fence).toBe(4);

    // Down past the deadline: the start ends the wait, journaled as one preempted record.
    const later = new FakeClock(clock.now() + 60_000);
    const restartJournal = new MemoryJournal();
    const restarted = host(restartJournal, later);
    const restored = unwrap(await restarted.restore(undefined, journal.records));
    expect(restored.expired).toBe(1);
    expect(restartJournal.records.map((r) => r.kind)).toEqual(['preempted']);
    expect(unwrap(await restarted.getAllocations()).map((a) => [a.requestId, a.status])).toEqual([['high', 'active']]);
    expect(unwrap(await restarted.fence('high', 1)).fence).toBe(4);
  });
});
