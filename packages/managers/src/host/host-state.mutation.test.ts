import { unwrap, type AllocationRequestInput } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { FakeProbe } from '../testing/fake-probe.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal, type HostRecord } from './records.ts';

/*
 * HostState's replay and its refusals as a host shows them: a rebuilt host equals the one that wrote the journal
 * (activations, limit changes, cordons included), and a journal or snapshot that does not fit is refused, naming why.
 * Written against the survivors of a mutation run (docs/benchmarks.md, Mutation testing).
 */

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });

function host(nodeId = 'n1', clock = new FakeClock(), journal = new MemoryJournal()) {
  const probe = new FakeProbe({ topology, totalMemoryMiB: 32768, now: () => clock.now() });
  const h = unwrap(
    new ManagerFactory({ topology, probe, clock })
      .host(nodeId)
      .memory({ capacity: 16384 })
      .cpu({ overcommitRatio: 2 })
      .journal(journal)
      .build(),
  );
  return { host: h, journal, clock };
}

const vm = (requestId: string, memoryMiB: number, vcpus: number, extra: Partial<AllocationRequestInput> = {}): AllocationRequestInput => ({
  requestId,
  tenantId: 't1',
  resources: { memoryMiB, vcpus },
  ...extra,
});

/** What a user sees of a host: its view (allocations, tenants, cordon) and its limits. */
async function seen(h: HostManager) {
  const view = unwrap(await h.getHostView());
  const allocations = unwrap(await h.getAllocations({}));
  return {
    view,
    allocations: allocations.map((a) => ({ id: a.id, status: a.status, cpuset: a.cpu?.cpuset })),
    limits: unwrap(await h.getLimits()),
  };
}

describe('replay', () => {
  it('rebuilds activations, limit changes and cordons from the journal exactly', async () => {
    const clock = new FakeClock();
    const { host: h, journal } = host('n1', clock);
    const r = unwrap(await h.reserve(vm('res', 1024, 2, { reservation: { ttlMs: 60_000 } })));
    unwrap(await h.allocate(vm('a', 2048, 1)));
    unwrap(await h.activateReservation(r.id, 'act'));
    unwrap(await h.updateLimits({ memory: { capacity: 8192 }, cpu: { overcommitRatio: 1 } }));
    unwrap(await h.setCordon(true, 'maintenance'));
    expect(journal.records.map((x) => x.kind)).toEqual([
      'reserved',
      'allocated',
      'activated',
      'limits_updated',
      'limits_updated',
      'cordoned',
    ]);

    const { host: rebuilt } = host('n1', clock);
    expect(unwrap(await rebuilt.restore(undefined, journal.records))).toEqual({ seq: 6, expired: 0 });
    expect(await seen(rebuilt)).toEqual(await seen(h));
    const after = await seen(rebuilt);
    expect(after.allocations.map((a) => a.status)).toEqual(['active', 'active']);
    expect(after.limits['memory']?.capacity).toBe(8192);
    expect(after.limits['cpu']?.overcommitRatio).toBe(1);
    // The rebuilt host is still cordoned, and the reservation no longer expires.
    expect((await rebuilt.allocate(vm('b', 512, 1))).ok).toBe(false);
    clock.advance(120_000);
    expect(unwrap(await rebuilt.getAllocations({})).map((a) => a.status)).toEqual(['active', 'active']);
    // Ids continue after the replayed ones.
    unwrap(await rebuilt.setCordon(false));
    expect(unwrap(await rebuilt.allocate(vm('c', 512, 1))).id).toBe('n1:3');
  });

  it('replays an uncordon and a release, and skips records a snapshot already covers', async () => {
    const { host: h, journal } = host();
    const a = unwrap(await h.allocate(vm('a', 1024, 1)));
    unwrap(await h.setCordon(true, 'x'));
    const snapshot = unwrap(await h.exportState());
    unwrap(await h.setCordon(false));
    unwrap(await h.release({ requestId: 'rel', allocationId: a.id }));

    const { host: rebuilt } = host();
    // Every record given, the snapshot's too: those at or below its seq are skipped, not applied twice.
    expect(unwrap(await rebuilt.restore(snapshot, journal.records))).toEqual({ seq: 4, expired: 0 });
    expect(await seen(rebuilt)).toEqual(await seen(h));
    expect(unwrap(await rebuilt.allocate(vm('b', 16384, 1))).id).toBe('n1:2');
  });

  it('expires at restore a reservation whose time passed while the host was down', async () => {
    const clock = new FakeClock();
    const { host: h, journal } = host('n1', clock);
    unwrap(await h.reserve(vm('res', 1024, 2, { reservation: { ttlMs: 1_000 } })));
    const down = [...journal.records];
    await h.stop();
    clock.advance(1_000);
    const { host: rebuilt, journal: next } = host('n1', clock, new MemoryJournal());
    expect(unwrap(await rebuilt.restore(undefined, down))).toEqual({ seq: 2, expired: 1 });
    expect(next.records.map((r) => r.kind)).toEqual(['expired']);
    expect(unwrap(await rebuilt.getAllocations({ status: 'reserved' }))).toEqual([]);
  });
});

describe('replay refusals', () => {
  it('refuses a snapshot of another node, naming both', async () => {
    const { host: other } = host('n2');
    unwrap(await other.allocate(vm('a', 1024, 1)));
    const snapshot = unwrap(await other.exportState());
    const { host: h } = host('n1');
    const refused = await h.restore(snapshot, []);
    expect(!refused.ok && refused.error).toMatchObject({ code: 'internal', message: 'snapshot is of node n2, not n1' });
    // Nothing of it was taken.
    expect(unwrap(await h.getAllocations({}))).toEqual([]);
  });

  it('refuses a journal with a gap, naming the seq expected and found', async () => {
    const { host: h, journal } = host();
    unwrap(await h.allocate(vm('a', 1024, 1)));
    unwrap(await h.allocate(vm('b', 1024, 1)));
    unwrap(await h.allocate(vm('c', 1024, 1)));
    const gap = [journal.records[0], journal.records[2]] as HostRecord[];
    const { host: rebuilt } = host();
    const refused = await rebuilt.restore(undefined, gap);
    expect(!refused.ok && refused.error).toMatchObject({
      code: 'internal',
      message: 'journal gap: expected seq 2, found 3',
      details: { expected: 2, found: 3 },
    });
    expect(unwrap(await rebuilt.getUsage()).every((u) => u.committed === 0)).toBe(true);
  });

  it('refuses records about allocations the journal never made, and limits of a type without a manager', async () => {
    const at = 1;
    const cases: Array<[HostRecord, string]> = [
      [{ kind: 'activated', seq: 1, at, allocationId: 'n1:9', requestId: 'x' }, 'journal activates unknown allocation n1:9'],
      [
        { kind: 'released', seq: 1, at, allocationId: 'n1:9', requestId: 'x', allocationRequestId: 'y', reason: 'released' },
        'journal releases unknown allocation n1:9',
      ],
      [{ kind: 'expired', seq: 1, at, allocationId: 'n1:8', requestId: 'x' }, 'journal releases unknown allocation n1:8'],
      [
        {
          kind: 'limits_updated',
          seq: 1,
          at,
          resourceType: 'gpu',
          config: { limits: { capacity: 1, systemReserve: 0, overcommitRatio: 1 } },
          force: false,
        },
        'journal configures gpu, which has no manager',
      ],
    ];
    for (const [record, message] of cases) {
      const { host: h } = host();
      const refused = await h.restore(undefined, [record]);
      expect(!refused.ok && refused.error).toMatchObject({ code: 'internal', message });
    }
  });

  it('refuses a journal whose allocation collides with another on the same cores', async () => {
    const { host: h, journal } = host();
    unwrap(await h.allocate(vm('a', 1024, 2, { cpu: { exclusive: true, numa: 'any' } })));
    const first = journal.records[0] as Extract<HostRecord, { kind: 'allocated' }>;
    const twin: HostRecord = { ...first, seq: 2, allocation: { ...first.allocation, id: 'n1:2', requestId: 'twin' }, idCounter: 2 };
    const { host: rebuilt } = host();
    const refused = await rebuilt.restore(undefined, [first, twin]);
    expect(!refused.ok && refused.error.code).toBe('conflict');
  });
});

describe('release, activate and check as a caller sees them', () => {
  it('names what is wrong with a release: no target, an unknown one, another request, a reused release id', async () => {
    const { host: h } = host();
    const a = unwrap(await h.allocate(vm('a', 1024, 1)));
    const b = unwrap(await h.allocate(vm('b', 1024, 1)));
    const missing = await h.release({ requestId: 'r0' } as never);
    // The host's parser refuses it before HostState sees it (HostState's own refusal is defence in depth).
    expect(!missing.ok && missing.error).toMatchObject({
      code: 'invalid_request',
      message: 'allocationId: name the allocation by allocationId or allocationRequestId',
    });
    const unknown = await h.release({ requestId: 'r1', allocationRequestId: 'nobody' });
    expect(!unknown.ok && unknown.error).toMatchObject({
      code: 'not_found',
      message: 'no allocation nobody on node n1',
      details: { allocationRequestId: 'nobody' },
    });
    const mismatch = await h.release({ requestId: 'r2', allocationId: a.id, allocationRequestId: 'b' });
    expect(!mismatch.ok && mismatch.error).toMatchObject({
      code: 'invalid_request',
      message: `allocation ${a.id} was not created by request b`,
      details: { field: 'allocationRequestId' },
    });
    expect(unwrap(await h.release({ requestId: 'r3', allocationRequestId: 'a' })).status).toBe('released');
    const reused = await h.release({ requestId: 'r3', allocationId: b.id });
    expect(!reused.ok && reused.error).toMatchObject({
      code: 'conflict',
      message: `release request id r3 was already used to release ${a.id}`,
      details: { requestId: 'r3', allocationId: a.id },
    });
    // Releasing what is released again succeeds and journals nothing.
    expect(unwrap(await h.release({ requestId: 'r4', allocationId: a.id, allocationRequestId: 'a' })).status).toBe('released');
    expect(unwrap(await h.getAllocations({})).map((x) => x.id)).toEqual([b.id]);
  });

  it('says whether a reservation that cannot be activated expired, was released or never existed', async () => {
    const clock = new FakeClock();
    const { host: h } = host('n1', clock);
    const expiring = unwrap(await h.reserve(vm('e', 1024, 1, { reservation: { ttlMs: 1_000 } })));
    const released = unwrap(await h.reserve(vm('r', 1024, 1, { reservation: { ttlMs: 60_000 } })));
    unwrap(await h.release({ requestId: 'rel', allocationId: released.id }));
    clock.advance(1_000);
    await h.getUsage();
    const late = await h.activateReservation(expiring.id, 'act-1');
    expect(!late.ok && late.error).toMatchObject({
      code: 'conflict',
      message: `allocation ${expiring.id} is no longer held (its reservation expired at ${clock.now()})`,
      details: { allocationId: expiring.id, status: 'released' },
    });
    const gone = await h.activateReservation(released.id, 'act-2');
    expect(!gone.ok && gone.error.message).toBe(`allocation ${released.id} is no longer held (released at ${clock.now() - 1_000})`);
    const never = await h.activateReservation('n1:99', 'act-3');
    expect(!never.ok && never.error).toMatchObject({
      code: 'not_found',
      message: 'no reservation n1:99 on node n1',
      details: { allocationId: 'n1:99' },
    });
    // Activating an active allocation is a no-op that succeeds.
    const active = unwrap(await h.allocate(vm('x', 512, 1)));
    expect(unwrap(await h.activateReservation(active.id, 'act-4')).status).toBe('active');
  });

  it('check gives the figures of every resource and the cordon as the reason', async () => {
    const { host: h } = host();
    unwrap(await h.allocate(vm('a', 4096, 2)));
    const fits = unwrap(await h.checkAvailability(vm('b', 2048, 1)));
    expect(fits.fits).toBe(true);
    expect(fits.figures['memory']).toMatchObject({ requested: 2048, free: 12288, effectiveCapacity: 16384 });
    expect(fits.figures['cpu']).toMatchObject({ requested: 1 });
    const tooBig = unwrap(await h.checkAvailability(vm('c', 20_000, 1)));
    expect(tooBig).toMatchObject({ fits: false, reason: { code: 'insufficient_capacity' } });
    unwrap(await h.setCordon(true, 'disk swap'));
    const cordoned = unwrap(await h.checkAvailability(vm('d', 1024, 1)));
    expect(cordoned).toMatchObject({ fits: false, reason: { code: 'unavailable', message: 'node n1 is cordoned: disk swap' } });
    const refused = await h.allocate(vm('d', 1024, 1));
    expect(!refused.ok && refused.error).toMatchObject({
      code: 'unavailable',
      message: 'node n1 is cordoned: disk swap',
      details: { nodeId: 'n1', cordoned: true },
    });
    // Cordoning again with the same reason journals nothing new.
    unwrap(await h.setCordon(true, 'disk swap'));
  });
});

describe('more of what a host remembers', () => {
  it('refuses resources it has no manager for, naming them, and check reports their figures', async () => {
    const clock = new FakeClock();
    const probe = new FakeProbe({ topology, totalMemoryMiB: 32768, now: () => clock.now() });
    const memoryOnly = unwrap(
      new ManagerFactory({ topology, probe, clock }).host('m1').memory({ capacity: 4096 }).journal(new MemoryJournal()).build(),
    );
    const refused = await memoryOnly.allocate(vm('a', 1024, 2));
    expect(!refused.ok && refused.error).toMatchObject({
      code: 'insufficient_capacity',
      message: 'no cpu manager on node m1',
      details: { resourceType: 'cpu', nodeId: 'm1' },
    });
    const gpu = await memoryOnly.allocate({ requestId: 'g', tenantId: 't1', resources: { memoryMiB: 1024, vcpus: 0, extra: { gpu: 1 } } });
    expect(!gpu.ok && gpu.error.message).toBe('no gpu manager on node m1');
    expect(unwrap(await memoryOnly.allocate(vm('m', 1024, 0))).granted.memoryMiB).toBe(1024);
    const checked = unwrap(
      await memoryOnly.checkAvailability({ requestId: 'c', tenantId: 't1', resources: { memoryMiB: 1024, vcpus: 3, extra: { gpu: 2 } } }),
    );
    expect(checked).toMatchObject({ fits: false, reason: { code: 'insufficient_capacity', message: 'no cpu manager on node m1' } });
    expect(checked.figures).toMatchObject({
      cpu: { requested: 3, free: 0, effectiveCapacity: 0 },
      gpu: { requested: 2, free: 0, effectiveCapacity: 0 },
      memory: { requested: 1024 },
    });
  });

  it('expires reservations one by one at their own times, also after the earliest one is activated', async () => {
    const clock = new FakeClock();
    const { host: h } = host('n1', clock);
    const early = unwrap(await h.reserve(vm('early', 512, 1, { reservation: { ttlMs: 1_000 } })));
    const mid = unwrap(await h.reserve(vm('mid', 512, 1, { reservation: { ttlMs: 3_000 } })));
    const late = unwrap(await h.reserve(vm('late', 512, 1, { reservation: { ttlMs: 5_000 } })));
    unwrap(await h.activateReservation(early.id, 'act'));
    const statusOf = async () => Object.fromEntries(unwrap(await h.getAllocations({})).map((a) => [a.id, a.status]));
    clock.advance(2_999);
    await h.getUsage();
    expect(await statusOf()).toEqual({ [early.id]: 'active', [mid.id]: 'reserved', [late.id]: 'reserved' });
    clock.advance(1);
    await h.getUsage();
    expect(await statusOf()).toEqual({ [early.id]: 'active', [late.id]: 'reserved' });
    unwrap(await h.release({ requestId: 'rel', allocationId: early.id }));
    clock.advance(2_000);
    await h.getUsage();
    expect(await statusOf()).toEqual({});
  });

  it('forgets a tenant and a group in its view once their last allocation is gone', async () => {
    const { host: h } = host();
    const a = unwrap(await h.allocate(vm('a', 1024, 1, { tenantId: 'acme', group: { name: 'web', maxPerNode: 3 } })));
    const b = unwrap(await h.allocate(vm('b', 1024, 1, { tenantId: 'acme', group: { name: 'web', maxPerNode: 3 } })));
    expect(unwrap(await h.getHostView())).toMatchObject({
      tenants: { acme: { vms: 2, memoryMiB: 2048, vcpus: 2 } },
      groups: { 'acme/web': 2 },
    });
    unwrap(await h.release({ requestId: 'r1', allocationId: a.id }));
    expect(unwrap(await h.getHostView())).toMatchObject({ tenants: { acme: { vms: 1 } }, groups: { 'acme/web': 1 } });
    unwrap(await h.release({ requestId: 'r2', allocationId: b.id }));
    const view = unwrap(await h.getHostView());
    expect(view.tenants).toEqual({});
    expect(view.groups).toEqual({});
  });

  it('journals a cordon whose reason changes, and a release with its default reason', async () => {
    const { host: h, journal } = host();
    unwrap(await h.setCordon(true, 'a'));
    unwrap(await h.setCordon(true, 'b'));
    unwrap(await h.setCordon(false, 'b'));
    unwrap(await h.setCordon(false, 'b'));
    expect(journal.records.map((r) => [r.kind, 'reason' in r ? r.reason : undefined])).toEqual([
      ['cordoned', 'a'],
      ['cordoned', 'b'],
      ['uncordoned', 'b'],
    ]);
    const a = unwrap(await h.allocate(vm('a', 512, 1)));
    unwrap(await h.release({ requestId: 'rel', allocationId: a.id }));
    expect(journal.records.at(-1)).toMatchObject({ kind: 'released', reason: 'released', allocationRequestId: 'a', requestId: 'rel' });
  });

  it('keeps the fence on a released allocation and across a snapshot', async () => {
    const { host: h } = host();
    const a = unwrap(await h.allocate(vm('a', 512, 1), { fence: 3 }));
    expect(a.fence).toBe(3);
    const released = unwrap(await h.release({ requestId: 'rel', allocationId: a.id }));
    expect(released.fence).toBe(3);
    unwrap(await h.fence('a', 5));
    const { host: rebuilt } = host();
    unwrap(await rebuilt.restore(unwrap(await h.exportState()), []));
    expect(unwrap(await rebuilt.fence('a', 1))).toMatchObject({ fence: 5, allocation: { id: a.id, status: 'released', fence: 3 } });
  });

  it('restores from a snapshot the configuration a forced update left: reserved cores under a holder, hard limit, policy', async () => {
    const { host: h } = host();
    const pinned = unwrap(await h.allocate(vm('p', 512, 2, { cpu: { exclusive: true, numa: 'any' } })));
    const core = pinned.cpu?.cpuset[0] as number;
    unwrap(await h.updateLimits({ cpu: { reservedCores: [core], hardLimit: 12, policy: 'round-robin' } as never }, { force: true }));
    unwrap(await h.updateLimits({ memory: { hardLimit: 8192 } }));
    const snapshot = unwrap(await h.exportState());
    const { host: rebuilt } = host();
    unwrap(await rebuilt.restore(snapshot, []));
    expect(await seen(rebuilt)).toEqual(await seen(h));
    expect(unwrap(await rebuilt.getLimits())['cpu']).toMatchObject({ hardLimit: 12 });
    // Freed, the reserved core stays reserved.
    unwrap(await rebuilt.release({ requestId: 'rel', allocationId: pinned.id }));
    const cores = unwrap(await rebuilt.getUsage()).find((u) => u.resourceType === 'cpu') as unknown as {
      cores: Array<{ id: number; role: string }>;
    };
    expect(cores.cores.find((c) => c.id === core)?.role).toBe('reserved');
  });
});
