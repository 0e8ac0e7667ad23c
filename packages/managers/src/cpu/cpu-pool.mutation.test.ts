import { describe, expect, it } from 'vitest';
import type { CpuGrant } from '@allot/core';
import { exclusive, grant, poolOf, shared } from './test-support.ts';

/*
 * CpuPool at its edges: what restore refuses and why, exact capacity boundaries, partial reconfigures, reservation
 * figures, the round-robin cursor. Written against the survivors of a mutation run (docs/benchmarks.md).
 * The usual pool: 32 logical cores, 0 and 16 reserved, ratio 2: 30 shared cores, 60 shared vCPUs.
 */

const g = (mode: 'shared' | 'exclusive', cpuset: number[], more: Partial<CpuGrant> = {}): CpuGrant => ({
  mode,
  vcpus: cpuset.length,
  cpuset,
  numaNodes: [0],
  numaFallback: false,
  policy: 'first-fit',
  ...more,
});

describe('restore refusals', () => {
  it('names a reserved core in a restored grant, and commits nothing', () => {
    const pool = poolOf('first-fit');
    const r = pool.restore('vm', g('shared', [1, 16]));
    expect(r).toEqual({
      ok: false,
      error: { code: 'conflict', message: 'core 16 of vm is reserved', details: { allocationId: 'vm', core: 16 } },
    });
    expect(pool.holds('vm')).toBe(false);
    expect(pool.usage()).toMatchObject({ sharedVcpusCommitted: 0, allocationCount: 0 });
    expect(pool.usage().cores.find((c) => c.id === 1)).toMatchObject({ role: 'shared' });
  });

  it('names the exclusive holder of a core in a restored grant', () => {
    const pool = poolOf('first-fit');
    expect(pool.restore('pinned', g('exclusive', [3, 4])).ok).toBe(true);
    for (const mode of ['shared', 'exclusive'] as const) {
      const r = pool.restore('late', g(mode, [2, 4]));
      expect(r).toEqual({
        ok: false,
        error: { code: 'conflict', message: 'core 4 of late is held exclusively by pinned', details: { allocationId: 'late', core: 4 } },
      });
    }
    expect(pool.usage()).toMatchObject({ exclusiveCores: 2, sharedVcpusCommitted: 0, allocationCount: 1 });
  });

  it('refuses an exclusive grant on a loaded core with the load, but lets shared grants share a core', () => {
    const pool = poolOf('first-fit');
    expect(pool.restore('a', g('shared', [5])).ok).toBe(true);
    expect(pool.restore('b', g('shared', [5, 6])).ok).toBe(true);
    const r = pool.restore('x', g('exclusive', [7, 5]));
    expect(r).toEqual({
      ok: false,
      error: { code: 'conflict', message: 'exclusive core 5 of x carries shared load', details: { allocationId: 'x', core: 5, load: 2 } },
    });
    expect(pool.usage().cores.find((c) => c.id === 7)).toMatchObject({ role: 'shared' });
    expect(pool.usage().sharedVcpusCommitted).toBe(3);
  });

  it('refuses a grant naming the same core twice', () => {
    const pool = poolOf('first-fit');
    const r = pool.restore('vm', g('shared', [3, 3]));
    expect(r).toEqual({
      ok: false,
      error: { code: 'invalid_request', message: 'grant.cpuset names core 3 twice', details: { field: 'grant.cpuset', core: 3 } },
    });
    expect(pool.usage().sharedVcpusCommitted).toBe(0);
  });

  it('refuses malformed grants naming the field', () => {
    const pool = poolOf('first-fit');
    const bad = (grantLike: unknown) => {
      const r = pool.restore('vm', grantLike as CpuGrant);
      return r.ok ? undefined : r.error;
    };
    expect(bad({ ...g('shared', [3]), mode: 'pinned' })).toMatchObject({
      code: 'invalid_request',
      message: 'grant.mode must be shared or exclusive',
      details: { field: 'grant.mode' },
    });
    expect(bad(null)).toMatchObject({ details: { field: 'grant.mode' } });
    expect(bad({ ...g('shared', [3, 4]), vcpus: 3 })).toMatchObject({
      message: 'grant.cpuset must list one core per vCPU',
      details: { field: 'grant.cpuset', vcpus: 3 },
    });
    expect(bad({ ...g('shared', []), vcpus: 0 })).toMatchObject({ details: { field: 'grant.cpuset', vcpus: 0 } });
    expect(bad({ ...g('shared', [3]), vcpus: 1.5 })).toMatchObject({ details: { field: 'grant.cpuset' } });
    expect(bad({ ...g('shared', [3]), cpuset: 'x' })).toMatchObject({ details: { field: 'grant.cpuset' } });
    expect(bad({ ...g('shared', [3]), policy: 'best' })).toMatchObject({ details: { field: 'grant' } });
    expect(bad({ ...g('shared', [3]), numaFallback: 'no' })).toMatchObject({ details: { field: 'grant' } });
    expect(bad({ ...g('shared', [3]), numaNodes: 0 })).toMatchObject({ details: { field: 'grant' } });
    expect(bad(g('shared', [1.5]))).toMatchObject({
      message: 'grant.cpuset names core 1.5, which is not on this host',
      details: { field: 'grant.cpuset', core: 1.5 },
    });
    expect(bad(g('shared', [64]))).toMatchObject({ details: { core: 64 } });
    expect(pool.usage().allocationCount).toBe(0);
  });

  it('accepts the same grant again in any core order, and refuses other cores, another size or another mode with what it holds', () => {
    const pool = poolOf('first-fit');
    expect(pool.restore('a', g('shared', [9, 3])).ok).toBe(true);
    expect(pool.restore('a', g('shared', [3, 9])).ok).toBe(true);
    expect(pool.restore('a', g('shared', [9, 3])).ok).toBe(true);
    expect(pool.usage().sharedVcpusCommitted).toBe(2);
    const other = pool.restore('a', g('shared', [3, 10]));
    expect(other).toEqual({
      ok: false,
      error: { code: 'conflict', message: 'allocation a already holds other cores', details: { allocationId: 'a', held: [3, 9] } },
    });
    expect(pool.restore('a', g('exclusive', [3, 9])).ok).toBe(false);
    expect(pool.restore('a', g('shared', [3]), {}).ok).toBe(false);
    expect(pool.restore('a', g('shared', [3, 9, 11])).ok).toBe(false);
  });

  it('frees a restored grant by the cores it named, in whatever order they were ledgered', () => {
    const pool = poolOf('first-fit');
    expect(pool.restore('x', g('exclusive', [12, 4, 8])).ok).toBe(true);
    expect(pool.usage().exclusiveCores).toBe(3);
    expect(pool.free('x')).toBe(true);
    expect(pool.usage()).toMatchObject({ exclusiveCores: 0, sharedCores: 30, committed: 0 });
    expect(pool.free('x')).toBe(false);
  });
});

describe('reservation figures', () => {
  it('counts a restored shared reservation until it is active or freed', () => {
    const pool = poolOf('first-fit');
    expect(pool.restore('r', g('shared', [3, 4]), { reservation: true }).ok).toBe(true);
    expect(pool.usage()).toMatchObject({ committed: 2, reserved: 2 });
    pool.markActive('r');
    expect(pool.usage()).toMatchObject({ committed: 2, reserved: 0 });
    pool.markActive('r');
    pool.markActive('unknown');
    expect(pool.usage()).toMatchObject({ committed: 2, reserved: 0 });
    expect(unwrapTake(pool, 'r2', shared(3), true)).toBe(true);
    expect(pool.usage()).toMatchObject({ committed: 5, reserved: 3 });
    pool.free('r2');
    expect(pool.usage()).toMatchObject({ committed: 2, reserved: 0 });
  });

  it('counts an exclusive reservation at what its cores take from the pool, and drops it when freed or activated', () => {
    const pool = poolOf('first-fit');
    expect(unwrapTake(pool, 'r', exclusive(2), true)).toBe(true);
    // 2 cores out of the pool: 60 -> 56 shared vCPUs, cost 4.
    expect(pool.usage()).toMatchObject({ committed: 4, reserved: 4, exclusiveCores: 2 });
    pool.free('r');
    expect(pool.usage()).toMatchObject({ committed: 0, reserved: 0, exclusiveCores: 0 });
    expect(unwrapTake(pool, 'q', exclusive(3), true)).toBe(true);
    pool.markActive('q');
    expect(pool.usage()).toMatchObject({ committed: 6, reserved: 0 });
  });
});

function unwrapTake(
  pool: ReturnType<typeof poolOf>,
  id: string,
  request: Parameters<ReturnType<typeof poolOf>['take']>[1],
  reservation: boolean,
): boolean {
  return pool.take(id, request, { reservation }).ok;
}

describe('capacity boundaries', () => {
  it('takes the last shared vCPU and refuses the next, with the figures', () => {
    const pool = poolOf('first-fit');
    for (let i = 0; i < 4; i += 1) grant(pool, shared(15));
    expect(pool.usage().sharedVcpusCommitted).toBe(60);
    const r = pool.take('one-more', shared(1));
    expect(r).toEqual({
      ok: false,
      error: {
        code: 'insufficient_capacity',
        message: '1 vCPUs requested, 0 of 60 shared vCPUs free',
        details: {
          requestedVcpus: 1,
          mode: 'shared',
          freeVcpus: 0,
          effectiveCapacity: 60,
          committed: 60,
          sharedCores: 30,
          idleCores: 0,
          sharedVcpusCommitted: 60,
          sharedVcpusCapacity: 60,
        },
      },
    });
  });

  it('grants a shared request as wide as the pool and refuses one core wider', () => {
    const pool = poolOf('first-fit');
    expect(pool.take('wide', shared(30)).ok).toBe(true);
    const r = pool.take('wider', shared(31));
    expect(!r.ok && r.error.message).toBe('31 vCPUs need 31 distinct shared cores, the shared pool has 30');
  });

  it('grants every grantable core exclusively, refuses one more as never fitting, and one more than idle as capacity', () => {
    const pool = poolOf('first-fit');
    const never = pool.take('x', exclusive(31));
    expect(never).toEqual({
      ok: false,
      error: {
        code: 'invalid_request',
        message: 'an exclusive request for 31 cores can never fit: the host grants at most 30',
        details: { field: 'vcpus', requestedVcpus: 31, grantableCores: 30 },
      },
    });
    grant(pool, shared(1), 'one'); // loads core 1
    const busy = pool.take('y', exclusive(30));
    expect(!busy.ok && busy.error).toMatchObject({
      code: 'insufficient_capacity',
      message: '30 exclusive cores requested, 29 idle cores in the shared pool',
      details: { idleCores: 29, mode: 'exclusive' },
    });
    pool.free('one');
    expect(pool.take('all', exclusive(30)).ok).toBe(true);
    expect(pool.usage()).toMatchObject({ sharedCores: 0, exclusiveCores: 30, sharedVcpusCapacity: 0 });
  });

  it('lets an exclusive grant shrink the pool to exactly what shared grants hold, not below', () => {
    // Ratio 1.5: 45 shared vCPUs on 30 cores. 40 committed, packed 2 per core on 20 cores: 10 idle cores, but only
    // 3 may go exclusive (27 x 1.5 = 40.5 -> 40).
    const pool = poolOf('first-fit', { overcommitRatio: 1.5 });
    grant(pool, shared(20), 'a');
    grant(pool, shared(20), 'b');
    const tooMany = pool.take('x', exclusive(4));
    expect(!tooMany.ok && tooMany.error).toMatchObject({
      message: 'taking 4 exclusive cores would shrink the shared pool to 39 vCPUs, below the 40 committed',
      details: { sharedVcpusCapacityAfter: 39, idleCores: 10 },
    });
    expect(pool.take('x', exclusive(3)).ok).toBe(true);
    expect(pool.usage()).toMatchObject({ sharedVcpusCapacity: 40, sharedVcpusCommitted: 40 });
  });

  it('refuses a second take under the same id with the id, whatever the request', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(1), 'dup');
    expect(pool.take('dup', exclusive(1))).toEqual({
      ok: false,
      error: { code: 'conflict', message: 'allocation dup already holds cores', details: { allocationId: 'dup' } },
    });
  });
});

describe('round-robin cursor', () => {
  it('starts each take after the last core the previous one took, wrapping past the last core', () => {
    const pool = poolOf('round-robin', { overcommitRatio: 1 });
    const first = grant(pool, shared(2));
    const second = grant(pool, shared(2));
    expect(Math.min(...second.cpuset)).toBeGreaterThan(Math.max(...first.cpuset));
    // Exhaust the rest singly: every core is used once before any is used twice.
    const seen = new Set([...first.cpuset, ...second.cpuset]);
    for (let i = 0; i < 26; i += 1) for (const id of grant(pool, shared(1)).cpuset) seen.add(id);
    expect(seen.size).toBe(30);
  });

  it('does not move for check or a refused take', () => {
    const pool = poolOf('round-robin');
    const a = grant(pool, shared(1));
    pool.check(shared(4));
    expect(pool.take('too-big', shared(31)).ok).toBe(false);
    const b = grant(pool, shared(1));
    expect(b.cpuset[0]).toBe((a.cpuset[0] ?? 0) + 1);
  });
});

describe('reconfigure with partial changes', () => {
  it('a hard limit alone keeps the ratio and the reserved cores', () => {
    const pool = poolOf('first-fit');
    const r = pool.reconfigure({ hardLimit: 40 });
    expect(r).toEqual({ ok: true, value: { capacity: 32, systemReserve: 2, overcommitRatio: 2, hardLimit: 40 } });
    expect(pool.usage()).toMatchObject({ effectiveCapacity: 40, reservedCores: 2 });
    expect(pool.reconfigure({}).ok && pool.limits()).toEqual({ capacity: 32, systemReserve: 2, overcommitRatio: 2, hardLimit: 40 });
  });

  it('a ratio alone keeps the hard limit and the policy', () => {
    const pool = poolOf('round-robin', { hardLimit: 50 });
    expect(pool.reconfigure({ overcommitRatio: 1 }).ok).toBe(true);
    expect(pool.limits()).toEqual({ capacity: 32, systemReserve: 2, overcommitRatio: 1, hardLimit: 50 });
    expect(pool.policyName).toBe('round-robin');
    expect(pool.usage()).toMatchObject({ effectiveCapacity: 30 });
  });

  it('explicit reserved cores set the reserve to their count; systemReserve alone replaces them; [] goes back', () => {
    const pool = poolOf('first-fit');
    expect(pool.reconfigure({ reservedCores: [5, 6, 7] }).ok && pool.limits().systemReserve).toBe(3);
    expect(
      pool
        .usage()
        .cores.filter((c) => c.role === 'reserved')
        .map((c) => c.id),
    ).toEqual([5, 6, 7]);
    // The same count keeps the explicit list.
    expect(pool.reconfigure({ systemReserve: 3 }).ok).toBe(true);
    expect(
      pool
        .usage()
        .cores.filter((c) => c.role === 'reserved')
        .map((c) => c.id),
    ).toEqual([5, 6, 7]);
    // Another count replaces it with the lowest cores.
    expect(pool.reconfigure({ systemReserve: 2 }).ok).toBe(true);
    expect(
      pool
        .usage()
        .cores.filter((c) => c.role === 'reserved')
        .map((c) => c.id),
    ).toEqual([0, 16]);
    expect(pool.reconfigure({ reservedCores: [9] }).ok).toBe(true);
    expect(pool.reconfigure({ reservedCores: [] }).ok).toBe(true);
    expect(pool.limits().systemReserve).toBe(0);
    expect(pool.usage().reservedCores).toBe(0);
  });

  it('a ratio change that keeps what is committed is accepted at exactly the committed figure', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(30));
    expect(pool.reconfigure({ overcommitRatio: 1 }).ok).toBe(true);
    expect(pool.usage()).toMatchObject({ sharedVcpusCapacity: 30, sharedVcpusCommitted: 30 });
    const r = pool.reconfigure({ reservedCores: [5] });
    expect(!r.ok && r.error).toMatchObject({ code: 'conflict', details: { heldCores: [5] } });
  });

  it('keeps an exclusive reservation counted on the cores still exclusive after a forced reserve', () => {
    const pool = poolOf('first-fit');
    const held = unwrapTakeGrant(pool, 'r', exclusive(2));
    const first = held.cpuset[0] ?? 0;
    expect(pool.reconfigure({ reservedCores: [first] }, true).ok).toBe(true);
    expect(pool.usage()).toMatchObject({ exclusiveCores: 1, reservedCores: 1 });
    // The one core still exclusive costs 2 shared vCPUs at ratio 2: that is what the reservation holds now.
    expect(pool.usage().reserved).toBe(2);
    pool.free('r');
    expect(pool.usage()).toMatchObject({ exclusiveCores: 0, reserved: 0 });
  });
});

function unwrapTakeGrant(pool: ReturnType<typeof poolOf>, id: string, request: Parameters<ReturnType<typeof poolOf>['take']>[1]): CpuGrant {
  const r = pool.take(id, request, { reservation: true });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

describe('figures a host reports', () => {
  it('lists every core once with its NUMA node, socket, physical core and holder', () => {
    const pool = poolOf('first-fit');
    const held = unwrapTakeGrant(pool, 'x', exclusive(1));
    const cores = pool.usage().cores;
    expect(cores).toHaveLength(32);
    expect(cores.find((c) => c.id === 9)).toMatchObject({ numa: 1, socket: 1 });
    expect(cores.find((c) => c.id === 25)?.core).toBe(cores.find((c) => c.id === 9)?.core);
    expect(cores.find((c) => c.id === 9)?.core).not.toBe(0);
    expect(cores.find((c) => c.id === held.cpuset[0])?.allocationId).toBe('x');
    expect(cores.filter((c) => 'allocationId' in c)).toHaveLength(1);
    expect(pool.limits()).not.toHaveProperty('hardLimit');
  });

  it('spreads a whole-host utilisation figure over the cores when the probe has no per-core figures, and ignores NaN', () => {
    const pool = poolOf('first-fit');
    expect(pool.usage({ perCorePermille: new Map(), totalPermille: 500 }).used).toBe(16);
    expect(
      pool.usage({ perCorePermille: new Map([[3, Number.NaN]]), totalPermille: 0 }).cores.find((c) => c.id === 3)?.utilizationPermille,
    ).toBe(0);
  });

  it('tells how many shared vCPUs are still free when refusing, and counts exclusive cores in committed', () => {
    const pool = poolOf('first-fit');
    grant(pool, exclusive(2), 'pinned'); // 28 pool cores: 56 shared vCPUs, exclusive cost 4
    for (let i = 0; i < 3; i += 1) grant(pool, shared(15));
    const r = pool.take('more', shared(12));
    expect(!r.ok && r.error).toMatchObject({
      message: '12 vCPUs requested, 11 of 56 shared vCPUs free',
      details: { freeVcpus: 11, committed: 49, sharedVcpusCommitted: 45 },
    });
  });

  it('counts only reservations in reserved when an active exclusive allocation holds cores too', () => {
    const pool = poolOf('first-fit');
    grant(pool, exclusive(2), 'active');
    expect(unwrapTake(pool, 'held', exclusive(2), true)).toBe(true);
    expect(pool.usage()).toMatchObject({ committed: 8, reserved: 4 });
  });

  it('rotates from the very first core when nothing is reserved', () => {
    const pool = poolOf('round-robin', { systemReserve: 0 });
    expect(grant(pool, shared(1)).cpuset).toEqual([0]);
    expect(grant(pool, shared(1)).cpuset).toEqual([1]);
  });

  it('keeps the round-robin cursor at the start after first-fit takes, when the policy changes', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(3));
    expect(pool.reconfigure({ policy: 'round-robin' }).ok).toBe(true);
    expect(grant(pool, shared(1)).cpuset).toEqual([1]);
  });
});

describe('more reconfigure edges', () => {
  it('keeps explicit reserved cores when only the ratio changes', () => {
    const pool = poolOf('first-fit');
    expect(pool.reconfigure({ reservedCores: [5, 6, 7] }).ok).toBe(true);
    expect(pool.reconfigure({ overcommitRatio: 1 }).ok).toBe(true);
    expect(
      pool
        .usage()
        .cores.filter((c) => c.role === 'reserved')
        .map((c) => c.id),
    ).toEqual([5, 6, 7]);
    expect(pool.limits()).toMatchObject({ systemReserve: 3, overcommitRatio: 1 });
  });

  it('refuses an invalid hard limit naming the field, with every problem in the message', () => {
    const pool = poolOf('first-fit');
    const r = pool.reconfigure({ hardLimit: -5 });
    expect(!r.ok && r.error.code).toBe('invalid_request');
    expect(!r.ok && r.error.message).toMatch(/^invalid CPU configuration: hardLimit: ./);
    expect(!r.ok && r.error.details).toMatchObject({ field: 'hardLimit' });
  });

  it('reserves more cores when none is held, and says what committed would be when refusing a smaller ratio', () => {
    const pool = poolOf('first-fit');
    expect(pool.reconfigure({ systemReserve: 4 }).ok).toBe(true);
    expect(pool.usage().reservedCores).toBe(4);
    const other = poolOf('first-fit');
    grant(other, exclusive(2), 'pinned');
    grant(other, shared(20));
    grant(other, shared(20));
    const r = other.reconfigure({ overcommitRatio: 1 });
    expect(!r.ok && r.error.details).toMatchObject({ sharedVcpusCommitted: 40, newSharedVcpusCapacity: 28, committed: 42 });
  });

  it('packs first-fit cores to the new ratio after a change', () => {
    const pool = poolOf('first-fit');
    expect(pool.reconfigure({ overcommitRatio: 3 }).ok).toBe(true);
    const homes = Array.from({ length: 4 }, () => grant(pool, shared(1)).cpuset[0]);
    expect(homes).toEqual([1, 1, 1, 2]);
  });
});
