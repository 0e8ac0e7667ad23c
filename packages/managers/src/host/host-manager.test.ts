import { unwrap, type AllocationRequestInput, LimitsPatchSchema } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { FakeProbe } from '../testing/fake-probe.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal } from './records.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });

function host(options: { memoryMiB?: number; journal?: MemoryJournal; clock?: FakeClock; softLimit?: number } = {}) {
  const clock = options.clock ?? new FakeClock();
  const probe = new FakeProbe({ topology, totalMemoryMiB: 32768, now: () => clock.now() });
  const journal = options.journal ?? new MemoryJournal();
  const memory = { capacity: options.memoryMiB ?? 16384, ...(options.softLimit === undefined ? {} : { softLimit: options.softLimit }) };
  const h = unwrap(
    new ManagerFactory({ topology, probe, clock }).host('n1').memory(memory).cpu({ overcommitRatio: 2 }).journal(journal).build(),
  );
  return { host: h, journal, clock, probe };
}

const vm = (requestId: string, memoryMiB: number, vcpus: number, extra: Partial<AllocationRequestInput> = {}): AllocationRequestInput => ({
  requestId,
  tenantId: 't1',
  resources: { memoryMiB, vcpus },
  ...extra,
});

async function committed(h: HostManager): Promise<{ memory: number; cpu: number }> {
  const usage = unwrap(await h.getUsage());
  return {
    memory: usage.find((u) => u.resourceType === 'memory')?.committed ?? -1,
    cpu: usage.find((u) => u.resourceType === 'cpu')?.committed ?? -1,
  };
}

describe('HostManager', () => {
  it('allocates memory and CPU together and releases both', async () => {
    const { host: h } = host();
    const a = unwrap(await h.allocate(vm('r1', 4096, 2)));
    expect(a.id).toBe('n1:1');
    expect(a.cpu?.vcpus).toBe(2);
    expect(await committed(h)).toEqual({ memory: 4096, cpu: 2 });
    unwrap(await h.release({ requestId: 'rel-1', allocationId: a.id }));
    expect(await committed(h)).toEqual({ memory: 0, cpu: 0 });
  });

  it('rolls memory back when CPU refuses, and a concurrent usage read never sees the half state', async () => {
    const { host: h } = host();
    const allocating = h.allocate(vm('big-cpu', 4096, 1000));
    const reading = h.getUsage();
    const result = await allocating;
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe('insufficient_capacity');
    expect(!result.ok && result.error.details).toMatchObject({ resourceType: 'cpu', requested: 1000 });
    const seen = unwrap(await reading);
    expect(seen.find((u) => u.resourceType === 'memory')?.committed).toBe(0);
    expect(await committed(h)).toEqual({ memory: 0, cpu: 0 });
  });

  it('refuses memory that does not fit with the figures', async () => {
    const { host: h } = host({ memoryMiB: 8192 });
    unwrap(await h.allocate(vm('a', 7168, 1)));
    const refused = await h.allocate(vm('b', 4096, 1));
    expect(!refused.ok && refused.error).toMatchObject({
      code: 'insufficient_capacity',
      message: 'memory: requested 4096 MiB, free 1024 MiB of 8192 MiB effective capacity',
      details: { resourceType: 'memory', requested: 4096, free: 1024, effectiveCapacity: 8192 },
    });
  });

  it('returns the same allocation for a retried request id and a conflict for a different request under it', async () => {
    const { host: h, journal } = host();
    const first = unwrap(await h.allocate(vm('r1', 1024, 1)));
    const again = unwrap(await h.allocate(vm('r1', 1024, 1)));
    expect(again.id).toBe(first.id);
    expect(journal.records.length).toBe(1);
    const other = await h.allocate(vm('r1', 2048, 1));
    expect(!other.ok && other.error.code).toBe('conflict');
    unwrap(await h.release({ requestId: 'rel', allocationRequestId: 'r1' }));
    const late = unwrap(await h.allocate(vm('r1', 1024, 1)));
    expect(late.status).toBe('released');
    expect(await committed(h)).toEqual({ memory: 0, cpu: 0 });
  });

  it('expires a reservation when its time passes, and activates one in time', async () => {
    const { host: h, clock } = host();
    const held = unwrap(await h.reserve(vm('res', 2048, 2, { reservation: { ttlMs: 60_000 } })));
    const kept = unwrap(await h.reserve(vm('res2', 1024, 1, { reservation: { ttlMs: 60_000 } })));
    expect(held.status).toBe('reserved');
    expect(held.expiresAt).toBe(clock.now() + 60_000);
    unwrap(await h.activateReservation(kept.id, 'act-1'));
    clock.advance(60_001);
    await h.getUsage();
    expect(await committed(h)).toEqual({ memory: 1024, cpu: 1 });
    const late = await h.activateReservation(held.id, 'act-2');
    expect(!late.ok && late.error.code).toBe('conflict');
    // An expiry has no request id: a client's own release id that happens to read 'expired' is not taken by it.
    const released = await h.release({ requestId: 'expired', allocationId: kept.id });
    expect(released.ok).toBe(true);
  });

  it('expires on restore a reservation whose time passed while the process was down, and journals it', async () => {
    const clock = new FakeClock();
    const { host: h, journal } = host({ clock });
    unwrap(await h.reserve(vm('res', 2048, 2, { reservation: { ttlMs: 1_000 } })));
    unwrap(await h.allocate(vm('live', 1024, 1)));
    await h.stop();
    clock.advance(5_000);
    const { host: again } = host({ clock, journal: new MemoryJournal() });
    const restored = unwrap(await again.restore(undefined, journal.records));
    expect(restored.expired).toBe(1);
    expect(await committed(again)).toEqual({ memory: 1024, cpu: 1 });
    expect(again.journal instanceof MemoryJournal && again.journal.records.map((r) => r.kind)).toEqual(['expired']);
  });

  it('refuses allocate and reserve on a cordoned host with unavailable, and allocates again once uncordoned', async () => {
    const { host: h } = host();
    unwrap(await h.setCordon(true, 'maintenance'));
    const refused = await h.allocate(vm('r1', 1024, 1));
    expect(!refused.ok && refused.error.code).toBe('unavailable');
    unwrap(await h.setCordon(false));
    expect((await h.allocate(vm('r1', 1024, 1))).ok).toBe(true);
  });

  it('reports Degraded with a reason when committed memory crosses the soft limit, without refusing', async () => {
    const { host: h, probe, clock } = host({ softLimit: 2048 });
    probe.setMemory({ totalMiB: 32768, usedMiB: 1000, availableMiB: 31768 }, clock.now());
    unwrap(await h.allocate(vm('r1', 4096, 1)));
    const health = unwrap(await h.healthCheck());
    expect(health.status).toBe('degraded');
    expect(health.status === 'degraded' && health.reasons.join()).toContain('soft limit 2048');
  });

  it('refuses to shrink memory below what is committed unless forced, and then admits nothing new', async () => {
    const { host: h } = host();
    unwrap(await h.allocate(vm('r1', 8192, 1)));
    const refused = await h.updateLimits({ memory: { capacity: 4096 } });
    expect(!refused.ok && refused.error).toMatchObject({ code: 'conflict', details: { committed: 8192, effectiveCapacity: 4096 } });
    unwrap(await h.updateLimits({ memory: { capacity: 4096 } }, { force: true }));
    const next = await h.allocate(vm('r2', 1, 1));
    expect(!next.ok && next.error.code).toBe('insufficient_capacity');
  });

  it('rejects bad input with invalid_request naming the field, and changes nothing', async () => {
    const { host: h, journal } = host();
    const bad = await h.allocate({ requestId: 'r1', tenantId: 't1', resources: { memoryMiB: -5, vcpus: 1 } });
    expect(!bad.ok && bad.error.code).toBe('invalid_request');
    expect(!bad.ok && bad.error.message).toContain('resources.memoryMiB');
    expect(journal.records.length).toBe(0);
  });

  it('lists only the live allocation of a request id when asked by requestId, and none once it is released', async () => {
    const { host: h } = host();
    const a = unwrap(await h.allocate(vm('want', 1024, 1)));
    unwrap(await h.allocate(vm('other', 1024, 1)));
    expect(unwrap(await h.getAllocations({ requestId: 'want' })).map((x) => x.id)).toEqual([a.id]);
    expect(unwrap(await h.getAllocations({ requestId: 'never-seen' }))).toEqual([]);
    unwrap(await h.release({ requestId: 'rel-want', allocationRequestId: 'want' }));
    expect(unwrap(await h.getAllocations({ requestId: 'want' }))).toEqual([]);
    expect(unwrap(await h.getAllocations()).map((x) => x.requestId)).toEqual(['other']);
  });

  it('counts tenants and groups for the usage snapshot', async () => {
    const { host: h } = host();
    unwrap(await h.allocate(vm('r1', 1024, 1, { metadata: { 'allot.group': 'web' } })));
    unwrap(await h.allocate(vm('r2', 2048, 2, { metadata: { 'allot.group': 'web' } })));
    const view = unwrap(await h.getHostView());
    expect(view.tenants.t1).toEqual({ vms: 2, memoryMiB: 3072, vcpus: 3 });
    expect(view.groups['t1/web']).toBe(2);
    expect(view.seq).toBe(2);
  });

  it('refuses a member of an anti-affinity group past its per-node maximum, and admits it again after a release', async () => {
    const { host: h, journal } = host();
    const web = (id: string) => vm(id, 1024, 1, { group: { name: 'web', maxPerNode: 2 } });
    unwrap(await h.allocate(web('w1')));
    unwrap(await h.allocate(web('w2')));
    const third = await h.allocate(web('w3'));
    expect(!third.ok && third.error.code).toBe('insufficient_capacity');
    expect(!third.ok && third.error.details).toMatchObject({ group: 'web', count: 2, maxPerNode: 2 });
    expect(unwrap(await h.checkAvailability(web('w3'))).fits).toBe(false);
    expect(journal.records.length).toBe(2);
    unwrap(await h.release({ requestId: 'rel-w1', allocationRequestId: 'w1' }));
    expect(unwrap(await h.allocate(web('w3'))).status).toBe('active');
  });

  it('changes only the limits a partial limits.update names: the reserve and the overcommit ratio stay', async () => {
    const clock = new FakeClock();
    const h = unwrap(
      new ManagerFactory({ topology, clock })
        .host('n1')
        .memory({ capacity: 16384, systemReserve: 2048, overcommitRatio: 1.5 })
        .cpu({ overcommitRatio: 2 })
        .build(),
    );
    // The memory patch the agent's limits.update endpoint passes on for `allot limits set --memory-capacity 20480`.
    const patch = LimitsPatchSchema.parse({ capacity: 20480 });
    const limits = unwrap(await h.updateLimits({ memory: patch }));
    expect(limits.memory).toMatchObject({ capacity: 20480, systemReserve: 2048, overcommitRatio: 1.5 });
  });

  it('restarts from the journal when the journal fails, without losing acknowledged allocations', async () => {
    const { host: h, journal } = host();
    unwrap(await h.allocate(vm('r1', 1024, 1)));
    journal.failWith = new Error('disk full');
    const failed = await h.allocate(vm('r2', 2048, 1));
    expect(!failed.ok && failed.error.code).toBe('internal');
    journal.failWith = undefined;
    expect(await committed(h)).toEqual({ memory: 1024, cpu: 1 });
    expect(unwrap(await h.healthCheck()).status).toBe('degraded');
  });

  it('tells its owner when it cannot be rebuilt from the journal, and refuses everything after', async () => {
    const { host: h, journal } = host();
    const failures: string[] = [];
    h.onFailure((error) => failures.push(error.message));
    unwrap(await h.allocate(vm('r1', 1024, 1)));
    journal.failWith = new Error('disk gone');
    journal.load = () => Promise.reject(new Error('ledger unreadable'));
    const failed = await h.allocate(vm('r2', 2048, 1));
    expect(!failed.ok && failed.error.code).toBe('internal');
    const after = await h.allocate(vm('r3', 512, 1));
    expect(!after.ok && after.error.code).toBe('unavailable');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain('ledger unreadable');
  });

  it('remembers released requests through the retention window across ring growth, snapshot and restore, then forgets them', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const { host: h } = host({ clock, journal });
    const released: string[] = [];
    for (let i = 0; i < 2500; i += 1) {
      const a = unwrap(await h.allocate(vm(`ring-${i}`, 64, 1)));
      unwrap(await h.release({ requestId: `ring-rel-${i}`, allocationId: a.id }));
      released.push(a.id);
      if (i % 500 === 0) clock.advance(1000);
    }
    // A late retry of an early allocate returns the released allocation; a re-release is a no-op; a reused release id is a conflict.
    const retry = unwrap(await h.allocate(vm('ring-3', 64, 1)));
    expect(retry).toMatchObject({ id: released[3], status: 'released' });
    expect(unwrap(await h.release({ requestId: 'ring-rel-3', allocationId: released[3] as string })).status).toBe('released');
    expect((await h.release({ requestId: 'ring-rel-3', allocationId: released[4] as string })).ok).toBe(false);
    expect(unwrap(await h.release({ requestId: 'ring-rel-0', allocationId: released[0] as string })).status).toBe('released');
    expect(await committed(h)).toEqual({ memory: 0, cpu: 0 });
    const snapshot = unwrap(await h.exportState());
    expect(snapshot.released.map((r) => r.allocation.id)).toEqual(released);

    // Restored from the snapshot alone, the new manager remembers the same requests.
    const { host: restored } = host({ clock });
    unwrap(await restored.restore(snapshot, []));
    expect(unwrap(await restored.allocate(vm('ring-2499', 64, 1)))).toMatchObject({ id: released[2499], status: 'released' });
    expect(unwrap(await restored.exportState()).released).toEqual(snapshot.released);

    // Past the window (one hour by default), the next release forgets them all but itself: the request id is new again.
    clock.advance(3_600_001);
    const fresh = unwrap(await h.allocate(vm('ring-late', 64, 1)));
    unwrap(await h.release({ requestId: 'ring-late-rel', allocationId: fresh.id }));
    expect(unwrap(await h.exportState()).released.map((r) => r.allocation.id)).toEqual([fresh.id]);
    expect(unwrap(await h.allocate(vm('ring-3', 64, 1))).status).toBe('active');
    expect((await h.release({ requestId: 'ring-rel-0', allocationId: released[0] as string })).ok).toBe(false);
  });

  it('keeps the retained releases exact when the ring wraps, grows past a pruned head and holds many expiries', async () => {
    const clock = new FakeClock();
    const probe = new FakeProbe({ topology, totalMemoryMiB: 32768, now: () => clock.now() });
    const h = unwrap(
      new ManagerFactory({ topology, probe, clock })
        .host('n1')
        .memory({ capacity: 16384 })
        .cpu({ overcommitRatio: 2 })
        .journal(new MemoryJournal())
        .releasedRetention(10_000)
        .build(),
    );
    // 600 released, then 600 more after the first ones' window passed: the head moves, the ring wraps.
    for (let i = 0; i < 1200; i += 1) {
      if (i === 600) clock.advance(10_001);
      const a = unwrap(await h.allocate(vm(`w-${i}`, 64, 1)));
      unwrap(await h.release({ requestId: `w-rel-${i}`, allocationId: a.id }));
    }
    // Reservations that expire share the release id 'expired'; then enough releases to grow the ring from a wrapped head.
    const reserved = [];
    for (let i = 0; i < 5; i += 1) reserved.push(unwrap(await h.reserve(vm(`x-${i}`, 64, 1, { reservation: { ttlMs: 1000 } }))));
    clock.advance(1001);
    const later: string[] = [];
    for (let i = 0; i < 1000; i += 1) {
      const a = unwrap(await h.allocate(vm(`g-${i}`, 64, 1)));
      unwrap(await h.release({ requestId: `g-rel-${i}`, allocationId: a.id }));
      later.push(a.id);
    }
    const snapshot = unwrap(await h.exportState());
    expect(snapshot.released.length).toBe(600 + 5 + 1000);
    expect(snapshot.released.slice(605).map((r) => r.allocation.id)).toEqual(later);
    expect(unwrap(await h.allocate(vm('w-0', 64, 1))).status).toBe('active');
    expect(unwrap(await h.allocate(vm('w-600', 64, 1)))).toMatchObject({ status: 'released', requestId: 'w-600' });
    expect(unwrap(await h.allocate(vm('g-0', 64, 1)))).toMatchObject({ id: later[0], status: 'released' });
    for (const r of reserved) {
      const refused = await h.activateReservation(r.id, `act-${r.id}`);
      expect(!refused.ok && refused.error.message).toContain('its reservation expired');
    }
    const conflict = await h.release({ requestId: 'g-rel-7', allocationId: later[8] as string });
    expect(!conflict.ok && conflict.error.code).toBe('conflict');
    expect(unwrap(await h.release({ requestId: 'g-rel-7', allocationId: later[7] as string })).status).toBe('released');
  });
});
