import { AllocationRequestSchema, HealthThresholdsSchema, unwrap, type AllocationRequestInput, type ResourceType } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { CountingSlice } from '../counting/counting-slice.ts';
import { CpuSlice } from '../cpu/cpu-slice.ts';
import { topologyFixture } from '../cpu/index.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { HostState } from './host-state.ts';
import type { HostRecord } from './records.ts';
import type { ResourceSlice } from './slice.ts';

/*
 * HostState on its own: preempt's refusals as a scheduler reads them, a grace period's bookkeeping (the earliest
 * deadline, fences raised meanwhile, a wait given up: the victims' shares back and preemptable again), the trial's
 * all-or-nothing, journals that do not replay, snapshots of older versions, fences and retention across a restore.
 * Written against the survivors of the mutation run of 2026-11-30 (docs/benchmarks.md, Mutation testing).
 * The host: 16,384 MiB of memory, 8 cores at ratio 2 (16 shared vCPUs).
 */

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });
const thresholds = HealthThresholdsSchema.parse({});

type SliceKind = 'memory' | 'cpu' | 'gpu';

function makeSlice(kind: SliceKind, clock: FakeClock): ResourceSlice {
  if (kind === 'cpu')
    return new CpuSlice({ topology, reservedCores: [], systemReserve: 0, overcommitRatio: 2, policy: 'first-fit', thresholds, clock });
  return new CountingSlice({
    type: kind,
    limits: { capacity: kind === 'memory' ? 16384 : 4, systemReserve: 0, overcommitRatio: 1 },
    thresholds,
    clock,
  });
}

function state(kinds: SliceKind[] = ['memory', 'cpu'], options: { clock?: FakeClock; maxRetained?: number; retentionMs?: number } = {}) {
  const clock = options.clock ?? new FakeClock();
  const s = new HostState({
    nodeId: 'n1',
    now: () => clock.now(),
    monotonic: () => clock.monotonic(),
    ...(options.maxRetained === undefined ? {} : { maxRetained: options.maxRetained }),
    ...(options.retentionMs === undefined ? {} : { releasedRetentionMs: options.retentionMs }),
  });
  for (const kind of kinds) s.slices.set(kind, makeSlice(kind, clock));
  return { s, clock };
}

const req = (requestId: string, memoryMiB: number, vcpus: number, extra: Partial<AllocationRequestInput> = {}) =>
  AllocationRequestSchema.parse({ requestId, tenantId: 't1', resources: { memoryMiB, vcpus }, ...extra });

const usageOf = (s: HostState, type: ResourceType) => (s.slices.get(type) as ResourceSlice).usage();

/** Applies records in order, stopping at the first refusal. */
function replay(s: HostState, records: readonly HostRecord[]) {
  for (const r of records) {
    const applied = s.apply(r);
    if (!applied.ok) return applied;
  }
  return { ok: true as const, value: undefined };
}

describe('preempt refuses', () => {
  it('a reused request id, a stale fence and a cordoned node, as allocate does', () => {
    const { s } = state();
    unwrap(s.allocate(req('low', 8192, 1), false));
    unwrap(s.allocate(req('low2', 4096, 1), false));
    const high = req('high', 12000, 1, { priority: 10 });
    expect(unwrap(s.preempt(high, ['n1:1'])).allocation.id).toBe('n1:3');
    expect(s.preempt(req('high', 100, 1, { priority: 10 }), ['n1:2'])).toEqual({
      ok: false,
      error: {
        code: 'conflict',
        message: 'request id high was already used for a different request (allocation n1:3)',
        details: { requestId: 'high', allocationId: 'n1:3' },
      },
    });
    expect(s.raiseFence('f', 5)).toMatchObject({ kind: 'fenced' });
    expect(s.preempt(req('f', 100, 1, { priority: 10 }), ['n1:2'], 5)).toEqual({
      ok: false,
      error: {
        code: 'conflict',
        message: 'request id f was fenced at 5; a preempt at fence 5 is stale',
        details: { requestId: 'f', reason: 'fenced', fence: 5 },
      },
    });
    s.setCordon(true, 'maintenance');
    expect(s.preempt(req('c', 100, 1, { priority: 10 }), ['n1:2'])).toEqual({
      ok: false,
      error: { code: 'unavailable', message: 'node n1 is cordoned: maintenance', details: { nodeId: 'n1', cordoned: true } },
    });
  });

  it('a victim named twice, one already released and one it never had, each by name', () => {
    const { s } = state();
    unwrap(s.allocate(req('low', 8192, 1), false));
    unwrap(s.allocate(req('low2', 4096, 1), false));
    unwrap(s.preempt(req('high', 12000, 1, { priority: 10 }), ['n1:1']));
    const p = req('p', 100, 1, { priority: 10 });
    expect(s.preempt(p, ['n1:2', 'n1:2'])).toEqual({
      ok: false,
      error: { code: 'invalid_request', message: 'victims: an allocation is named twice', details: { field: 'victims' } },
    });
    expect(s.preempt(p, ['n1:1'])).toEqual({
      ok: false,
      error: {
        code: 'conflict',
        message: 'victim n1:1 is no longer held on node n1 (released)',
        details: { reason: 'victim_gone', allocationId: 'n1:1', status: 'released' },
      },
    });
    expect(s.preempt(p, ['n1:9'])).toEqual({
      ok: false,
      error: { code: 'not_found', message: 'no allocation n1:9 on node n1', details: { reason: 'victim_unknown', allocationId: 'n1:9' } },
    });
  });

  it('a request for a type with no manager, naming it', () => {
    const { s } = state(['memory']);
    unwrap(s.allocate(req('low', 1024, 0), false));
    expect(s.preempt(req('p', 1024, 2, { priority: 10 }), ['n1:1'])).toEqual({
      ok: false,
      error: {
        code: 'insufficient_capacity',
        message: 'no cpu manager on node n1',
        details: { resourceType: 'cpu', requested: 0, free: 0, effectiveCapacity: 0, nodeId: 'n1' },
      },
    });
    const both = s.preempt(req('q', 1024, 2, { priority: 10, resources: { memoryMiB: 1024, vcpus: 2, extra: { gpu: 1 } } }), ['n1:1']);
    expect(!both.ok && both.error.message).toBe('no cpu, gpu manager on node n1');
    expect(s.live.size).toBe(1);
  });

  it('victims that do not make room, naming them all', () => {
    const { s } = state();
    unwrap(s.allocate(req('a', 1024, 1), false));
    unwrap(s.allocate(req('b', 1024, 1), false));
    unwrap(s.allocate(req('c', 8192, 1, { priority: 50 }), false));
    const r = s.preempt(req('p', 12000, 1, { priority: 10 }), ['n1:1', 'n1:2']);
    expect(!r.ok && r.error.message).toMatch(/^releasing n1:1, n1:2 does not make room for p: /);
    expect(!r.ok && r.error.details?.['victims']).toEqual(['n1:1', 'n1:2']);
  });

  it('a full anti-affinity group, counting only the victims that are in it as leaving', () => {
    const { s } = state();
    unwrap(s.allocate(req('member', 512, 1, { group: { name: 'g', maxPerNode: 1 } }), false));
    unwrap(s.allocate(req('loner', 512, 1), false));
    const p = req('p', 512, 1, { priority: 10, group: { name: 'g', maxPerNode: 1 } });
    expect(s.preempt(p, ['n1:2'])).toMatchObject({
      ok: false,
      error: { code: 'insufficient_capacity', message: 'anti-affinity group g already has 1 of at most 1 allocations on node n1' },
    });
    expect(unwrap(s.preempt(p, ['n1:1'])).victims.map((v) => v.id)).toEqual(['n1:1']);
  });
});

describe('a preemption', () => {
  it('answers a retry with the victims as they are now, leaving out ids the host does not know', () => {
    const { s } = state();
    unwrap(s.allocate(req('low', 8192, 1), false));
    const high = req('high', 12000, 1, { priority: 10 });
    const first = unwrap(s.preempt(high, ['n1:1']));
    expect(first.allocation).not.toHaveProperty('fence');
    const retry = unwrap(s.preempt(high, ['n1:1', 'n1:9']));
    expect(retry.record).toBeUndefined();
    expect(retry.victims.map((v) => [v.id, v.status])).toEqual([['n1:1', 'released']]);
  });

  it('keeps the CPU grant whatever the order of the slices', () => {
    const { s } = state(['cpu', 'memory']);
    unwrap(s.allocate(req('low', 1024, 1), false));
    const done = unwrap(s.preempt(req('p', 1024, 2, { priority: 10 }), ['n1:1']));
    expect(done.allocation.cpu).toMatchObject({ mode: 'shared', vcpus: 2 });
  });

  it('refused by the second slice leaves nothing taken in the first, and a reserved victim still reserved', () => {
    const { s } = state();
    unwrap(s.allocate(req('low', 1024, 1, { reservation: { ttlMs: 60_000 } }), true));
    // 9 vCPUs need 9 distinct cores: the host has 8, whatever the victims free.
    const r = s.preempt(req('p', 2048, 9, { priority: 10 }), ['n1:1']);
    expect(r.ok).toBe(false);
    expect(usageOf(s, 'memory')).toMatchObject({ committed: 1024, reserved: 1024 });
    expect(usageOf(s, 'cpu')).toMatchObject({ committed: 1, reserved: 1 });
  });
});

describe('a grace period', () => {
  /** low (8,192 MiB) waits to be released for high (12,000 MiB, fence 5) until 10 s from now. */
  function waiting(options: { clock?: FakeClock } = {}) {
    const { s, clock } = state(['memory', 'cpu'], options);
    const records: HostRecord[] = [];
    const push = (r: HostRecord | undefined) => {
      if (r !== undefined) records.push(r);
    };
    push(unwrap(s.allocate(req('low', 8192, 1), false)).record);
    const p = unwrap(s.preempt(req('high', 12000, 1, { priority: 10 }), ['n1:1'], 5, 10_000));
    push(p.record);
    return { s, clock, records, push, preemptor: p.allocation };
  }

  it('plays the waits in deadline order when checking a later allocation: the wait ending first must still fit', () => {
    const { s } = state();
    unwrap(s.allocate(req('x', 8000, 1), false));
    unwrap(s.allocate(req('y', 1000, 1), false));
    unwrap(s.preempt(req('a', 1000, 1, { priority: 10 }), ['n1:1'], undefined, 5_000));
    unwrap(s.preempt(req('b', 5000, 1, { priority: 10 }), ['n1:2'], undefined, 2_000));
    // 3,384 MiB left after z: b, ending first, would find 3,384 + y's 1,000 < 5,000 (a, had it ended first, would fit).
    expect(s.allocate(req('z', 4000, 1), false)).toMatchObject({
      ok: false,
      error: { code: 'insufficient_capacity', details: { reason: 'held_for_preemption', preemptedBy: 'b' } },
    });
    expect(unwrap(s.allocate(req('z2', 3384, 1), false)).allocation.status).toBe('active');
  });

  it('ends each of two waits at its own deadline when the first to end began first', () => {
    const { s, clock } = state();
    unwrap(s.allocate(req('x', 4000, 1), false));
    unwrap(s.allocate(req('y', 4000, 1), false));
    unwrap(s.preempt(req('soon', 4000, 1, { priority: 10 }), ['n1:1'], undefined, 2_000));
    unwrap(s.preempt(req('late', 4000, 1, { priority: 10 }), ['n1:2'], undefined, 5_000));
    expect(s.nextExpiry).toBe(clock.now() + 2_000);
    clock.advance(2_000);
    expect(s.expireDue().map((r) => (r.kind === 'preempted' ? r.allocation.requestId : r.kind))).toEqual(['soon']);
  });

  it('ends waits that are all due at once in deadline order, in the journal too', () => {
    const { s, clock } = state();
    unwrap(s.allocate(req('x', 4000, 1), false));
    unwrap(s.allocate(req('y', 4000, 1), false));
    unwrap(s.preempt(req('late', 4000, 1, { priority: 10 }), ['n1:1'], undefined, 5_000));
    unwrap(s.preempt(req('soon', 4000, 1, { priority: 10 }), ['n1:2'], undefined, 2_000));
    clock.advance(5_000);
    expect(s.expireDue().map((r) => (r.kind === 'preempted' ? r.allocation.requestId : r.kind))).toEqual(['soon', 'late']);
  });

  it('plays two waits ending in the same millisecond in the order they began', () => {
    const { s } = state();
    unwrap(s.allocate(req('x', 8000, 1), false));
    unwrap(s.allocate(req('y', 1000, 1), false));
    unwrap(s.preempt(req('a', 1000, 1, { priority: 10 }), ['n1:1'], undefined, 2_000));
    unwrap(s.preempt(req('b', 5000, 1, { priority: 10 }), ['n1:2'], undefined, 2_000));
    // a first frees x's 8,000 before b needs its 5,000: z fits.
    expect(unwrap(s.allocate(req('z', 4000, 1), false)).allocation.status).toBe('active');
  });

  it('is the next expiry when it ends before every reservation', () => {
    const { s, clock } = state();
    unwrap(s.allocate(req('res', 512, 1, { reservation: { ttlMs: 60_000 } }), true));
    unwrap(s.allocate(req('low', 8192, 1), false));
    unwrap(s.preempt(req('high', 12000, 1, { priority: 10 }), ['n1:2'], undefined, 10_000));
    expect(s.nextExpiry).toBe(clock.now() + 10_000);
  });

  it('keeps the preemptor’s fence, and a fence raised meanwhile, through the end and a replay', () => {
    const { s, clock, records, push } = waiting();
    expect(s.fenceOf('high').fence).toBe(5);
    push(s.raiseFence('high', 7));
    clock.advance(10_000);
    for (const r of s.expireDue()) push(r);
    expect(records.map((r) => r.kind)).toEqual(['allocated', 'preempting', 'fenced', 'preempted']);
    expect(s.recordedFence('high')).toBe(7);
    const { s: rebuilt } = state(['memory', 'cpu'], { clock });
    expect(replay(rebuilt, records).ok).toBe(true);
    expect(rebuilt.recordedFence('high')).toBe(7);
    expect(rebuilt.liveOf('high')?.status).toBe('active');
  });

  it('finds the waiting preemptor by its request id, reserved until the deadline', () => {
    const { s, clock } = waiting();
    expect(s.liveOf('high')).toMatchObject({ id: 'n1:2', status: 'reserved', expiresAt: clock.now() + 10_000 });
  });

  it('answers not_found for activating an allocation the host does not know, not the wait', () => {
    const { s } = waiting();
    expect(s.activate('n1:9', 'act')).toEqual({
      ok: false,
      error: { code: 'not_found', message: 'no reservation n1:9 on node n1', details: { allocationId: 'n1:9' } },
    });
  });

  it('lets another allocation grow while the room stays held', () => {
    const { s } = waiting();
    unwrap(s.allocate(req('other', 512, 1), false));
    const grown = unwrap(s.resize({ requestId: 'rz', allocationId: 'n1:3', memoryMiB: 1024, vcpus: 1 }));
    expect(grown.allocation.granted.memoryMiB).toBe(1024);
  });

  it('refuses a preempt that would take the held room, and leaves nothing of it taken', () => {
    const { s } = waiting();
    unwrap(s.allocate(req('x', 1024, 1), false));
    const r = s.preempt(req('q', 5000, 1, { priority: 10 }), ['n1:3']);
    expect(!r.ok && r.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { reason: 'held_for_preemption', preemptedBy: 'high' },
    });
    expect(usageOf(s, 'memory').committed).toBe(8192 + 1024);
    expect(s.findLive('n1:3')?.status).toBe('active');
  });

  describe('given up when a forced change took the room', () => {
    function abandoned() {
      const w = waiting();
      unwrap(w.s.allocate(req('w', 2048, 1), false));
      unwrap(w.s.updateConfig('memory', { capacity: 12000 }, true));
      w.clock.advance(10_000);
      expect(w.s.expireDue().map((r) => r.kind)).toEqual(['expired']);
      return w;
    }

    it('gives the victims their shares back', () => {
      const { s } = abandoned();
      expect(usageOf(s, 'memory').committed).toBe(8192 + 2048);
      expect(s.findLive('n1:1')?.status).toBe('active');
    });

    it('leaves the preemptor released, its reservation expired', () => {
      const { s, clock, preemptor } = abandoned();
      expect(s.find(preemptor.id)?.status).toBe('released');
      expect(s.activate(preemptor.id, 'act')).toMatchObject({
        ok: false,
        error: { code: 'conflict', message: `allocation ${preemptor.id} is no longer held (its reservation expired at ${clock.now()})` },
      });
    });

    it('lets another request preempt the victims again', () => {
      const { s } = abandoned();
      const again = unwrap(s.preempt(req('q', 4000, 1, { priority: 10 }), ['n1:1']));
      expect(again.victims.map((v) => [v.id, v.status])).toEqual([['n1:1', 'released']]);
    });
  });
});

describe('replay refuses', () => {
  it('a limits change the slice refuses', () => {
    const { s } = state();
    const r = s.apply({
      kind: 'limits_updated',
      seq: 1,
      at: 0,
      resourceType: 'cpu',
      config: { limits: { capacity: 8, systemReserve: 0, overcommitRatio: 0 }, policy: 'first-fit' },
      force: true,
    });
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(s.seq).toBe(0);
  });

  it('a resize to cores the host does not have', () => {
    const { s } = state();
    const a = unwrap(s.allocate(req('a', 512, 1), false)).allocation;
    const cpu = a.cpu;
    if (cpu === null) throw new Error('a shared vCPU has a CPU grant');
    const r = s.apply({
      kind: 'resized',
      seq: 2,
      at: 0,
      requestId: 'rz',
      allocation: { ...a, cpu: { ...cpu, cpuset: [99] } },
      previous: { memoryMiB: 512, vcpus: 1 },
    });
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(s.seq).toBe(1);
  });

  it('a grace period or a preemption naming a victim the journal never allocated', () => {
    const { s: source } = state();
    unwrap(source.allocate(req('low', 8192, 1), false));
    const preemptor = unwrap(source.preempt(req('high', 12000, 1, { priority: 10 }), ['n1:1'], undefined, 10_000)).allocation;
    const victims = [{ allocationId: 'n1:7', allocationRequestId: 'ghost', releaseRequestId: 'n1:7=preempted' }];
    const refusal = { ok: false, error: { code: 'internal', message: 'journal preempts unknown allocation n1:7' } };
    const { s: waiting } = state();
    expect(waiting.apply({ kind: 'preempting', seq: 1, at: 0, allocation: preemptor, idCounter: 1, victims })).toMatchObject(refusal);
    const { s: done } = state();
    const active = { ...preemptor, status: 'active' as const };
    expect(done.apply({ kind: 'preempted', seq: 1, at: 0, allocation: active, idCounter: 1, victims })).toMatchObject(refusal);
  });

  it('an allocation holding two types with no manager, naming both', () => {
    const { s: source } = state();
    const a = unwrap(source.allocate(req('a', 512, 1), false));
    const { s } = state(['gpu']);
    expect(s.apply(a.record as HostRecord)).toMatchObject({
      ok: false,
      error: { code: 'internal', message: 'allocation n1:1 holds memory, cpu, which has no manager' },
    });
  });
});

describe('restore', () => {
  it('refuses a snapshot whose configuration the slice refuses (a reserved core the host does not have)', () => {
    const { s: source } = state();
    const snapshot = source.exportState();
    const configs = snapshot.configs.map((c) => (c.resourceType === 'cpu' ? { ...c, config: { ...c.config, reservedCores: [99] } } : c));
    const { s } = state();
    expect(s.restore({ ...snapshot, configs }, [])).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
  });

  it('reads a snapshot of a version with no fences or resizes in it', () => {
    const { s: source } = state();
    unwrap(source.allocate(req('a', 512, 1), false));
    const { fences: _f, resizes: _r, ...older } = source.exportState();
    const { s } = state();
    expect(unwrap(s.restore(older, []))).toEqual([]);
    expect(s.exportState()).toMatchObject({ fences: [], resizes: [] });
    expect(s.liveOf('a')?.id).toBe('n1:1');
  });

  it('keeps at most maxRetained of a snapshot’s releases, the newest', () => {
    const { s: source } = state();
    for (const id of ['a', 'b', 'c']) {
      const a = unwrap(source.allocate(req(id, 512, 1), false)).allocation;
      unwrap(source.release({ requestId: `rel-${id}`, allocationId: a.id }));
    }
    const { s } = state(['memory', 'cpu'], { maxRetained: 2 });
    unwrap(s.restore(source.exportState(), []));
    expect(s.retainedCount()).toBe(2);
    expect(s.fenceOf('a').allocation).toBeNull();
    expect(s.fenceOf('c').allocation?.status).toBe('released');
  });

  it('keeps the fence of a released allocation', () => {
    const { s: source } = state();
    const a = unwrap(source.allocate(req('a', 512, 1), false, 5)).allocation;
    unwrap(source.release({ requestId: 'rel', allocationId: a.id }));
    const { s } = state();
    unwrap(s.restore(source.exportState(), []));
    expect(s.recordedFence('a')).toBe(5);
  });
});

describe('bookkeeping a user sees', () => {
  it('has no next expiry with nothing reserved or waiting', () => {
    const { s } = state();
    unwrap(s.allocate(req('a', 512, 1), false));
    expect(s.nextExpiry).toBeUndefined();
  });

  it('keeps in a snapshot the deadlines of what still waits or is reserved, and no others', () => {
    const clock = new FakeClock();
    const s = new HostState({ nodeId: 'n1', now: () => clock.now(), monotonic: () => clock.monotonic(), bootId: 'boot-1' });
    for (const kind of ['memory', 'cpu'] as const) s.slices.set(kind, makeSlice(kind, clock));
    expect(s.exportState()).not.toHaveProperty('deadlines');
    const kept = unwrap(s.allocate(req('kept', 512, 1, { reservation: { ttlMs: 60_000 } }), true)).allocation;
    const used = unwrap(s.allocate(req('used', 512, 1, { reservation: { ttlMs: 60_000 } }), true)).allocation;
    unwrap(s.activate(used.id, 'act'));
    unwrap(s.allocate(req('low', 8192, 1), false));
    unwrap(s.preempt(req('high', 4096, 1, { priority: 10 }), ['n1:3'], undefined, 1_000));
    clock.advance(1_000);
    expect(s.expireDue().map((r) => r.kind)).toEqual(['preempted']);
    expect(s.exportState().deadlines?.map((d) => d.allocationId)).toEqual([kept.id]);
  });

  it('forgets a resize request id once its window has passed, at the next release', () => {
    const { s, clock } = state(['memory', 'cpu'], { retentionMs: 60_000 });
    unwrap(s.allocate(req('a', 512, 1), false));
    unwrap(s.allocate(req('b', 512, 1), false));
    unwrap(s.resize({ requestId: 'rz', allocationId: 'n1:1', memoryMiB: 1024, vcpus: 1 }));
    expect(s.resizes.get('rz')?.allocation.granted.memoryMiB).toBe(1024);
    clock.advance(60_000);
    unwrap(s.release({ requestId: 'rel', allocationId: 'n1:2' }));
    expect(s.resizes.get('rz')).toBeUndefined();
  });

  it('lists each retained release once in a snapshot, also with exactly as many as the first ring of them holds', () => {
    const { s } = state();
    for (let k = 1; k <= 1024; k += 1) {
      unwrap(s.allocate(req(`r${k}`, 1, 1), false));
      unwrap(s.release({ requestId: `rel${k}`, allocationId: `n1:${k}` }));
    }
    const released = s.exportState().released.map((r) => r.allocation.id);
    expect(released).toHaveLength(1024);
    expect(new Set(released).size).toBe(1024);
  });

  it('a fence recorded before the allocation moves into it: the snapshot carries it once, as the allocation’s', () => {
    const { s } = state();
    expect(s.raiseFence('r', 3)).toMatchObject({ kind: 'fenced', fence: 3 });
    unwrap(s.allocate(req('r', 512, 1), false, 4));
    expect(s.fenceOf('r').fence).toBe(4);
    expect(s.exportState().fences).toEqual([]);
  });

  it('expires the earlier of two reservations at its time when the later one was made second', () => {
    const { s, clock } = state();
    unwrap(s.allocate(req('soon', 512, 1, { reservation: { ttlMs: 10_000 } }), true));
    unwrap(s.allocate(req('late', 512, 1, { reservation: { ttlMs: 60_000 } }), true));
    clock.advance(10_000);
    expect(s.expireDue().map((r) => (r.kind === 'expired' ? r.allocationId : r.kind))).toEqual(['n1:1']);
  });

  it('counts no group for allocations that name none', () => {
    const { s } = state();
    unwrap(s.allocate(req('a', 512, 1), false));
    expect([...s.groups]).toEqual([]);
  });

  it('gives an affinity refusal its group and node', () => {
    const { s } = state();
    expect(s.allocate(req('a', 512, 1, { affinity: ['db'] }), false)).toEqual({
      ok: false,
      error: {
        code: 'insufficient_capacity',
        message: 'affinity group db has no allocation on node n1',
        details: { group: 'db', nodeId: 'n1' },
      },
    });
  });
});
