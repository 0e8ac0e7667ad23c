import {
  AllocationRequestSchema,
  HealthThresholdsSchema,
  unwrap,
  type Allocation,
  type AllocationRequestInput,
  type ResourceType,
} from '@allot/core';
import { describe, expect, it } from 'vitest';
import { CountingSlice } from '../counting/counting-slice.ts';
import { CpuSlice } from '../cpu/cpu-slice.ts';
import { topologyFixture } from '../cpu/index.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { HostState } from './host-state.ts';
import type { HostRecord } from './records.ts';
import type { ResourceSlice } from './slice.ts';

/*
 * HostState on its own, with real slices in a chosen order: the figures and refusals it builds itself (missing
 * managers, anti-affinity, fences), reservation expiry bookkeeping, retention and fence pruning at their exact bounds,
 * what a snapshot carries and what restore and replay rebuild. Written against the survivors of a mutation run
 * (docs/benchmarks.md, Mutation testing).
 */

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });
const thresholds = HealthThresholdsSchema.parse({});

type SliceKind = 'memory' | 'cpu' | 'gpu';

function makeSlice(kind: SliceKind, clock: FakeClock, reservedCores: number[] = []): ResourceSlice {
  if (kind === 'cpu')
    return new CpuSlice({
      topology,
      reservedCores,
      systemReserve: reservedCores.length,
      overcommitRatio: 2,
      policy: 'first-fit',
      thresholds,
      clock,
    });
  return new CountingSlice({
    type: kind,
    limits: { capacity: kind === 'memory' ? 16384 : 4, systemReserve: 0, overcommitRatio: 1 },
    thresholds,
    clock,
  });
}

function state(
  kinds: SliceKind[] = ['memory', 'cpu'],
  options: { clock?: FakeClock; retentionMs?: number; maxRetained?: number; reservedCores?: number[]; nodeId?: string } = {},
) {
  const clock = options.clock ?? new FakeClock();
  const s = new HostState({
    nodeId: options.nodeId ?? 'n1',
    now: () => clock.now(),
    monotonic: () => clock.monotonic(),
    ...(options.retentionMs === undefined ? {} : { releasedRetentionMs: options.retentionMs }),
    ...(options.maxRetained === undefined ? {} : { maxRetained: options.maxRetained }),
  });
  for (const kind of kinds) s.slices.set(kind, makeSlice(kind, clock, kind === 'cpu' ? options.reservedCores : undefined));
  return { s, clock };
}

const req = (requestId: string, memoryMiB: number, vcpus: number, extra: Partial<AllocationRequestInput> = {}) =>
  AllocationRequestSchema.parse({ requestId, tenantId: 't1', resources: { memoryMiB, vcpus }, ...extra });

const usageOf = (s: HostState, type: ResourceType) => (s.slices.get(type) as ResourceSlice).usage();

describe('check without a manager for a type', () => {
  it('names the first missing manager and gives each missing type its requested figure', () => {
    const { s } = state(['cpu']);
    const a = s.check(req('r', 1024, 1, { resources: { memoryMiB: 1024, vcpus: 1, extra: { gpu: 2, disk: 0 } } }));
    expect(a.fits).toBe(false);
    expect(a.figures['memory']).toEqual({ requested: 1024, free: 0, effectiveCapacity: 0 });
    expect(a.figures['gpu']).toEqual({ requested: 2, free: 0, effectiveCapacity: 0 });
    expect(a.figures['disk']).toBeUndefined();
    expect(a.figures['cpu']?.requested).toBe(1);
    expect(a).toMatchObject({ reason: { code: 'insufficient_capacity', message: 'no memory manager on node n1' } });

    const { s: memOnly } = state(['memory']);
    const c = memOnly.check(req('r', 0, 3));
    expect(c.figures['cpu']).toEqual({ requested: 3, free: 0, effectiveCapacity: 0 });
    expect(c).toMatchObject({ reason: { message: 'no cpu manager on node n1' } });
  });

  it('fits a request whose extra amount is zero for a type with no manager', () => {
    const { s } = state(['memory', 'cpu']);
    const a = s.check(req('r', 1024, 1, { resources: { memoryMiB: 1024, vcpus: 1, extra: { gpu: 0 } } }));
    expect(a).toMatchObject({ fits: true });
    expect(
      unwrap(s.allocate(req('r', 1024, 1, { resources: { memoryMiB: 1024, vcpus: 1, extra: { gpu: 0 } } }), false)).allocation.status,
    ).toBe('active');
  });

  it('gives a full anti-affinity group as the reason', () => {
    const { s } = state();
    unwrap(s.allocate(req('a', 512, 1, { group: { name: 'g', maxPerNode: 1 } }), false));
    const a = s.check(req('b', 512, 1, { group: { name: 'g', maxPerNode: 1 } }));
    expect(a).toMatchObject({
      fits: false,
      reason: { code: 'insufficient_capacity', message: 'anti-affinity group g already has 1 of at most 1 allocations on node n1' },
    });
  });
});

describe('allocate', () => {
  it('refuses a reused request id, naming the allocation, and a stale fence, naming both fences', () => {
    const { s } = state();
    unwrap(s.allocate(req('a', 512, 1), false));
    expect(s.allocate(req('a', 1024, 1), false)).toEqual({
      ok: false,
      error: expect.objectContaining({
        code: 'conflict',
        message: 'request id a was already used for a different request (allocation n1:1)',
        details: { requestId: 'a', allocationId: 'n1:1' },
      }),
    });
    expect(s.raiseFence('b', 5)).toMatchObject({ kind: 'fenced', fence: 5 });
    expect(s.allocate(req('b', 512, 1), false, 5)).toMatchObject({
      ok: false,
      error: { code: 'conflict', message: 'request id b was fenced at 5; an allocate at fence 5 is stale' },
    });
  });

  it('names every missing manager in the refusal', () => {
    const { s } = state(['cpu']);
    const r = s.allocate(req('a', 512, 1, { resources: { memoryMiB: 512, vcpus: 1, extra: { gpu: 1 } } }), false);
    expect(r).toMatchObject({
      ok: false,
      error: {
        code: 'insufficient_capacity',
        message: 'no memory, gpu manager on node n1',
        details: { resourceType: 'memory', nodeId: 'n1' },
      },
    });
    expect(usageOf(s, 'cpu').committed).toBe(0);
  });

  it('keeps the CPU grant whatever the order of the slices', () => {
    const { s } = state(['cpu', 'memory']);
    const a = unwrap(s.allocate(req('a', 512, 2, { cpu: { exclusive: true } }), false)).allocation;
    expect(a.cpu?.cpuset).toEqual([0, 1]);
  });

  it('an allocation carries no expiry and no fence unless it has them; a reservation expires after its ttl', () => {
    const { s, clock } = state();
    const plain = unwrap(s.allocate(req('a', 512, 1), false)).allocation;
    expect(plain).not.toHaveProperty('expiresAt');
    expect(plain).not.toHaveProperty('fence');
    const held = unwrap(s.allocate(req('b', 512, 1, { reservation: { ttlMs: 2_000 } }), true, 3)).allocation;
    expect(held).toMatchObject({ status: 'reserved', expiresAt: clock.now() + 2_000, fence: 3 });
    // A reservation asked without a ttl (the caller's parser requires one) expires at once rather than never.
    const bare = unwrap(s.allocate(req('c', 512, 1), true)).allocation;
    expect(bare.expiresAt).toBe(clock.now());
  });

  it('activating an active allocation changes nothing and journals nothing', () => {
    const { s } = state();
    const a = unwrap(s.allocate(req('a', 512, 1), false)).allocation;
    const seq = s.seq;
    const again = unwrap(s.activate(a.id, 'act'));
    expect(again.record).toBeUndefined();
    expect(again.allocation).toBe(a);
    expect(s.seq).toBe(seq);
  });

  it('an activated reservation is no longer counted as reserved in any slice, and keeps no fence it never had', () => {
    const { s } = state(['cpu', 'memory']);
    const r = unwrap(s.allocate(req('r', 1024, 2, { reservation: { ttlMs: 5_000 } }), true)).allocation;
    expect(usageOf(s, 'memory').reserved).toBe(1024);
    expect(usageOf(s, 'cpu').reserved).toBe(2);
    const active = unwrap(s.activate(r.id, 'act')).allocation;
    expect(usageOf(s, 'memory').reserved).toBe(0);
    expect(usageOf(s, 'cpu').reserved).toBe(0);
    expect(usageOf(s, 'memory').committed).toBe(1024);
    expect(active).not.toHaveProperty('fence');
    expect(active).not.toHaveProperty('expiresAt');
  });
});

describe('release', () => {
  it('refuses a release naming no allocation', () => {
    const { s } = state();
    unwrap(s.allocate(req('a', 512, 1), false));
    expect(s.release({ requestId: 'rel' })).toEqual({
      ok: false,
      error: expect.objectContaining({
        code: 'invalid_request',
        message: 'name the allocation by allocationId or allocationRequestId',
        details: { field: 'allocationId' },
      }),
    });
    expect(s.live.size).toBe(1);
  });

  it('releases by allocation id alone, and refuses a stale fence naming the recorded one', () => {
    const { s } = state();
    const a = unwrap(s.allocate(req('a', 512, 1), false, 2)).allocation;
    const b = unwrap(s.allocate(req('b', 512, 1), false)).allocation;
    s.raiseFence('a', 4);
    expect(s.release({ requestId: 'rel', allocationId: a.id, fence: 3 })).toMatchObject({
      ok: false,
      error: { code: 'conflict', message: 'request id a was fenced at 4 since; a release at fence 3 is stale' },
    });
    expect(unwrap(s.release({ requestId: 'rel2', allocationId: b.id })).allocation.status).toBe('released');
  });
});

describe('reservation expiry bookkeeping', () => {
  it('has nothing due without reservations, and is due exactly at the earliest expiry', () => {
    const { s, clock } = state();
    expect(s.hasDue()).toBe(false);
    unwrap(s.allocate(req('late', 512, 1, { reservation: { ttlMs: 5_000 } }), true));
    unwrap(s.allocate(req('early', 512, 1, { reservation: { ttlMs: 1_000 } }), true));
    expect(s.nextExpiry).toBe(clock.now() + 1_000);
    expect(s.reservationCount).toBe(2);
    clock.advance(999);
    expect(s.hasDue()).toBe(false);
    expect(s.expireDue()).toEqual([]);
    clock.advance(1);
    expect(s.hasDue()).toBe(true);
    // Only the reservation whose time came expires.
    expect(s.expireDue().map((r) => r.kind === 'expired' && r.requestId)).toEqual(['early']);
    expect(s.reservationCount).toBe(1);
    expect(s.nextExpiry).toBe(clock.now() + 4_000);
  });

  it('after the earliest reservation is activated, the next expiry is the earliest of the rest', () => {
    const { s, clock } = state();
    const t0 = clock.now();
    const first = unwrap(s.allocate(req('a', 512, 1, { reservation: { ttlMs: 1_000 } }), true)).allocation;
    unwrap(s.allocate(req('b', 512, 1, { reservation: { ttlMs: 4_000 } }), true));
    unwrap(s.allocate(req('c', 512, 1, { reservation: { ttlMs: 2_000 } }), true));
    unwrap(s.allocate(req('d', 512, 1, { reservation: { ttlMs: 3_000 } }), true));
    unwrap(s.activate(first.id, 'act'));
    expect(s.reservationCount).toBe(3);
    expect(s.nextExpiry).toBe(t0 + 2_000);
  });
});

describe('fences of request ids with no allocation', () => {
  it('never lower a recorded fence on replay, with or without an allocation', () => {
    const { s } = state();
    unwrap(s.allocate(req('a', 512, 1), false, 6));
    let seq = s.seq;
    const fenced = (requestId: string, fence: number): HostRecord => ({ kind: 'fenced', seq: (seq += 1), at: 0, requestId, fence });
    expect(s.apply(fenced('a', 3)).ok).toBe(true);
    expect(s.recordedFence('a')).toBe(6);
    expect(s.apply(fenced('x', 5)).ok).toBe(true);
    expect(s.apply(fenced('x', 2)).ok).toBe(true);
    expect(s.recordedFence('x')).toBe(5);
  });

  it('forgets the oldest recorded fence past the count, counting a re-recorded one as new', () => {
    const { s, clock } = state(['memory', 'cpu'], { maxRetained: 2 });
    s.raiseFence('a', 1);
    clock.advance(1);
    s.raiseFence('b', 1);
    expect([s.recordedFence('a'), s.recordedFence('b')]).toEqual([1, 1]);
    clock.advance(1);
    s.raiseFence('a', 2);
    clock.advance(1);
    s.raiseFence('c', 1);
    // b is now the oldest record: it goes, a (re-recorded) stays.
    expect([s.recordedFence('a'), s.recordedFence('b'), s.recordedFence('c')]).toEqual([2, 0, 1]);
  });

  it('forgets a recorded fence exactly at the end of the window, and leaves it out of a snapshot then', () => {
    const { s, clock } = state(['memory', 'cpu'], { retentionMs: 10_000 });
    s.raiseFence('a', 1);
    clock.advance(10_000);
    expect(s.exportState().fences).toEqual([]);
    s.raiseFence('b', 1);
    expect(s.recordedFence('a')).toBe(0);
    expect(s.recordedFence('b')).toBe(1);
  });
});

describe('retained releases', () => {
  it('forgets a release exactly at the end of the window, and leaves it out of a snapshot then', () => {
    const { s, clock } = state(['memory', 'cpu'], { retentionMs: 10_000 });
    const a = unwrap(s.allocate(req('a', 512, 1), false)).allocation;
    const b = unwrap(s.allocate(req('b', 512, 1), false)).allocation;
    unwrap(s.release({ requestId: 'ra', allocationId: a.id }));
    clock.advance(9_999);
    expect(s.exportState().released.map((r) => r.allocation.id)).toEqual([a.id]);
    clock.advance(1);
    expect(s.exportState().released).toEqual([]);
    unwrap(s.release({ requestId: 'rb', allocationId: b.id }));
    expect(s.find(a.id)).toBeUndefined();
    expect(s.find(b.id)?.status).toBe('released');
    expect(s.retainedCount()).toBe(1);
  });

  it('keeps exactly maxRetained releases, and forgets the release request id of one it dropped', () => {
    const { s } = state(['memory', 'cpu'], { maxRetained: 2 });
    const ids = ['a', 'b', 'c', 'd'].map((r) => unwrap(s.allocate(req(r, 256, 1), false)).allocation.id);
    unwrap(s.release({ requestId: 'r1', allocationId: ids[0] as string }));
    unwrap(s.release({ requestId: 'r2', allocationId: ids[1] as string }));
    expect(s.retainedCount()).toBe(2);
    expect(s.find(ids[0] as string)?.status).toBe('released');
    unwrap(s.release({ requestId: 'r3', allocationId: ids[2] as string }));
    expect(s.retainedCount()).toBe(2);
    expect(s.find(ids[0] as string)).toBeUndefined();
    // r1 released a forgotten allocation: reusing it for another is no longer a conflict.
    expect(unwrap(s.release({ requestId: 'r1', allocationId: ids[3] as string })).allocation.status).toBe('released');
    // r3 is remembered: reusing it for another is.
    const e = unwrap(s.allocate(req('e', 256, 1), false)).allocation;
    expect(s.release({ requestId: 'r3', allocationId: e.id })).toMatchObject({ ok: false, error: { code: 'conflict' } });
  });

  it('keeps pruning correctly after the ring of releases wraps around', () => {
    const { s } = state(['memory'], { maxRetained: 3 });
    let last = '';
    for (let i = 0; i < 1_100; i += 1) {
      const a = unwrap(s.allocate(req(`r${i}`, 1, 0), false)).allocation;
      unwrap(s.release({ requestId: `rel${i}`, allocationId: a.id }));
      last = a.id;
    }
    expect(s.retainedCount()).toBe(3);
    expect(s.find(last)?.status).toBe('released');
    expect(s.find('n1:1098')?.status).toBe('released');
    expect(s.find('n1:1098')?.requestId).toBe('r1097');
    expect(s.find('n1:1097')).toBeUndefined();
  });

  it('a restore keeps releases a whole window from the start, however long the host was down (it cannot know)', () => {
    const clock = new FakeClock();
    const { s } = state(['memory', 'cpu'], { clock, retentionMs: 10_000 });
    const a = unwrap(s.allocate(req('a', 512, 1), false)).allocation;
    unwrap(s.release({ requestId: 'ra', allocationId: a.id }));
    const snapshot = s.exportState();
    expect(snapshot.released).toHaveLength(1);
    clock.advance(10_000);
    const { s: rebuilt } = state(['memory', 'cpu'], { clock, retentionMs: 10_000 });
    unwrap(rebuilt.restore(snapshot, []));
    expect(rebuilt.find(a.id)?.status).toBe('released');
    clock.advance(9_999);
    expect(rebuilt.exportState().released.map((r) => r.allocation.id)).toEqual([a.id]);
    // A window after the start it is out of a snapshot, and once the next release prunes, the request id is new again.
    clock.advance(1);
    expect(rebuilt.exportState().released).toEqual([]);
    const b = unwrap(rebuilt.allocate(req('b', 512, 1), false)).allocation;
    unwrap(rebuilt.release({ requestId: 'rb', allocationId: b.id }));
    expect(unwrap(rebuilt.allocate(req('a', 512, 1), false)).allocation.id).toBe('n1:3');
  });
});

describe('snapshots', () => {
  it("carry a fence only where it is above the allocation's own", () => {
    const { s } = state();
    unwrap(s.allocate(req('a', 512, 1), false));
    unwrap(s.allocate(req('b', 512, 1), false, 4));
    expect(s.exportState().fences).toEqual([]);
    s.raiseFence('a', 3);
    expect(s.exportState().fences).toEqual([{ requestId: 'a', fence: 3, at: expect.any(Number) }]);
  });

  it('restore refuses a configuration for a type with no manager', () => {
    const { s } = state(['memory', 'cpu']);
    const snapshot = s.exportState();
    const { s: memOnly } = state(['memory']);
    expect(memOnly.restore(snapshot, [])).toMatchObject({
      ok: false,
      error: { code: 'internal', message: 'snapshot configures cpu, which has no manager' },
    });
  });

  it('restores a holder of a core the host now reserves, on a host whose base configuration reserves it too', () => {
    const { s } = state(['memory', 'cpu']);
    const a = unwrap(s.allocate(req('a', 512, 1, { cpu: { exclusive: true } }), false)).allocation;
    expect(a.cpu?.cpuset).toEqual([0]);
    unwrap(s.updateConfig('cpu', { reservedCores: [0], systemReserve: 1 }, true));
    const snapshot = s.exportState();
    const { s: rebuilt } = state(['memory', 'cpu'], { reservedCores: [0] });
    expect(rebuilt.restore(snapshot, []).ok).toBe(true);
    expect(rebuilt.live.get(a.id)?.cpu?.cpuset).toEqual([0]);
    expect(rebuilt.slices.get('cpu')?.config().reservedCores).toEqual([0]);
  });

  it('restore refuses two holders of one exclusive core, and the first error stops it', () => {
    const { s } = state(['memory', 'cpu']);
    const a = unwrap(s.allocate(req('a', 512, 1, { cpu: { exclusive: true } }), false)).allocation;
    const snapshot = s.exportState();
    const twin: Allocation = { ...a, id: 'n1:9', requestId: 'twin' };
    const r = state(['memory', 'cpu']).s.restore({ ...snapshot, live: [a, twin] }, []);
    expect(r.ok).toBe(false);
  });

  it('a refused restore of one allocation leaves nothing of it in the slices restored before', () => {
    const { s } = state(['memory', 'cpu']);
    const a = unwrap(s.allocate(req('a', 512, 1, { cpu: { exclusive: true } }), false)).allocation;
    const twin: Allocation = { ...a, id: 'n1:2', requestId: 'twin', request: { ...a.request, requestId: 'twin' } };
    const record: HostRecord = { kind: 'allocated', seq: s.seq + 1, at: 0, allocation: twin, idCounter: 2 };
    const refused = s.apply(record);
    expect(refused.ok).toBe(false);
    expect(usageOf(s, 'memory').committed).toBe(512);
    expect(s.live.has('n1:2')).toBe(false);
  });

  it('a journal allocation holding a type with no manager is refused by name', () => {
    const { s } = state(['memory', 'cpu', 'gpu']);
    const a = unwrap(s.allocate(req('a', 512, 1, { resources: { memoryMiB: 512, vcpus: 1, extra: { gpu: 1 } } }), false));
    const { s: noGpu } = state(['memory', 'cpu']);
    expect(noGpu.apply(a.record as HostRecord)).toMatchObject({
      ok: false,
      error: { code: 'internal', message: 'allocation n1:1 holds gpu, which has no manager' },
    });
  });

  it('a restored reservation is still counted as reserved', () => {
    const { s } = state();
    const r = unwrap(s.allocate(req('r', 1024, 1, { reservation: { ttlMs: 60_000 } }), true));
    const { s: rebuilt } = state();
    expect(rebuilt.apply(r.record as HostRecord).ok).toBe(true);
    expect(usageOf(rebuilt, 'memory').reserved).toBe(1024);
    expect(rebuilt.reservationCount).toBe(1);
  });

  it('replays a limits change with its soft limit and policy', () => {
    const { s } = state();
    const changed = unwrap(s.updateConfig('cpu', { softLimit: 6, policy: 'best-fit' }, false));
    expect(changed.record).toMatchObject({ kind: 'limits_updated', config: { policy: 'best-fit', limits: { softLimit: 6 } } });
    const { s: rebuilt } = state();
    expect(rebuilt.apply(changed.record).ok).toBe(true);
    expect(rebuilt.slices.get('cpu')?.config()).toMatchObject({ policy: 'best-fit', limits: { softLimit: 6 } });
    expect(rebuilt.exportState().configs).toEqual(s.exportState().configs);
  });

  it('a memory configuration in a record has no policy or reserved cores', () => {
    const { s } = state();
    const changed = unwrap(s.updateConfig('memory', { capacity: 8192 }, false));
    expect(changed.record).toMatchObject({ kind: 'limits_updated', resourceType: 'memory' });
    const config = (changed.record as Extract<HostRecord, { kind: 'limits_updated' }>).config;
    expect(Object.keys(config)).toEqual(['limits']);
  });

  it('updateConfig of a type with no manager is not_found', () => {
    const { s } = state(['memory']);
    expect(s.updateConfig('cpu', { capacity: 4 }, false)).toEqual({
      ok: false,
      error: expect.objectContaining({ code: 'not_found', message: 'no cpu manager on node n1', details: { resourceType: 'cpu' } }),
    });
  });
});

describe('the slice list', () => {
  it('follows deletions and clears', () => {
    const { s } = state(['memory', 'cpu']);
    expect(s.slices.list.map((x) => x.type)).toEqual(['memory', 'cpu']);
    s.slices.delete('memory');
    expect(s.slices.list.map((x) => x.type)).toEqual(['cpu']);
    s.slices.clear();
    expect(s.slices.list).toEqual([]);
    expect(s.slices.size).toBe(0);
  });
});

describe('reads and the cordon', () => {
  it('finds live allocations by id and request id, and released ones only by id', () => {
    const { s } = state();
    const a = unwrap(s.allocate(req('a', 512, 1), false)).allocation;
    expect(s.findLive(a.id)).toBe(a);
    expect(s.liveOf('a')).toBe(a);
    unwrap(s.release({ requestId: 'ra', allocationId: a.id }));
    expect(s.findLive(a.id)).toBeUndefined();
    expect(s.liveOf('a')).toBeUndefined();
    expect(s.find(a.id)?.status).toBe('released');
    expect(s.find('n1:99')).toBeUndefined();
    expect(s.liveOf('never')).toBeUndefined();
  });

  it('a fresh host is uncordoned with no reason: uncordoning it journals nothing', () => {
    const { s } = state();
    expect(s.cordon).toEqual({ cordoned: false, reason: '' });
    expect(s.setCordon(false, '')).toBeUndefined();
    expect(s.seq).toBe(0);
    expect(s.setCordon(true, 'disk')).toMatchObject({ kind: 'cordoned', reason: 'disk', seq: 1 });
  });
});
