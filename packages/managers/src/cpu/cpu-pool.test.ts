import { describe, expect, it } from 'vitest';
import { CpuUsageSchema } from '@allot/core';
import { CpuPool } from './cpu-pool.ts';
import { exclusive, grant, poolOf, range, shared, twoSocketHost } from './test-support.ts';

describe('capacity and overcommit', () => {
  it('keeps the lowest physical core, both threads, for the host when systemReserve is 2', () => {
    const usage = poolOf('first-fit').usage();
    expect(usage.cores.filter((c) => c.role === 'reserved').map((c) => c.id)).toEqual([0, 16]);
    expect(usage).toMatchObject({ capacity: 32, systemReserve: 2, reservedCores: 2, sharedCores: 30 });
  });

  it('applies ratio 2 as 60 shared vCPUs on 30 shared cores, and refuses the 61st with the figures', () => {
    const pool = poolOf('best-fit');
    expect(pool.usage()).toMatchObject({ effectiveCapacity: 60, sharedVcpusCapacity: 60 });
    for (let k = 0; k < 20; k += 1) grant(pool, shared(3));
    const refused = pool.take('one-more', shared(1));
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.error.code).toBe('insufficient_capacity');
    expect(refused.error.details).toMatchObject({ requestedVcpus: 1, freeVcpus: 0, effectiveCapacity: 60, sharedVcpusCommitted: 60 });
    expect(pool.usage()).toMatchObject({ committed: 60, effectiveCapacity: 60 });
  });

  it('applies a fractional ratio as an integer percentage: 1.55 on 30 cores is 46 vCPUs', () => {
    expect(poolOf('first-fit', { overcommitRatio: 1.55 }).usage().effectiveCapacity).toBe(46);
  });

  it('never commits above the hard limit, whatever the ratio', () => {
    const pool = poolOf('round-robin', { hardLimit: 40 });
    expect(pool.usage()).toMatchObject({ effectiveCapacity: 40, sharedVcpusCapacity: 40 });
    for (let k = 0; k < 10; k += 1) grant(pool, shared(4));
    const refused = pool.take('over', shared(1));
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    expect(pool.usage().committed).toBe(40);
  });

  it('counts exclusive cores against the hard limit at the ratio they take out of the pool', () => {
    const pool = poolOf('first-fit', { hardLimit: 10 });
    grant(pool, exclusive(4)); // removes 8 vCPUs of capacity
    expect(pool.usage()).toMatchObject({ committed: 8, effectiveCapacity: 10, sharedVcpusCapacity: 2 });
    expect(pool.take('too-big', exclusive(2)).ok).toBe(false);
    expect(pool.take('fits', shared(2)).ok).toBe(true);
  });

  it('refuses a shared request wider than the shared pool, because each vCPU needs its own core', () => {
    const refused = poolOf('first-fit').take('wide', shared(31));
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    expect(!refused.ok && refused.error.message).toContain('31 distinct shared cores');
  });

  it('reports committed as shared vCPUs plus the capacity exclusive cores removed', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(5));
    grant(pool, exclusive(3));
    expect(pool.usage()).toMatchObject({
      sharedVcpusCommitted: 5,
      exclusiveCores: 3,
      sharedCores: 27,
      sharedVcpusCapacity: 54,
      committed: 11,
      allocationCount: 2,
    });
  });
});

describe('bad input', () => {
  it.each([
    ['zero vCPUs', { vcpus: 0, exclusive: false, numa: 'any' }, 'vcpus'],
    ['fractional vCPUs', { vcpus: 1.5, exclusive: false, numa: 'any' }, 'vcpus'],
    ['an unknown NUMA policy', { vcpus: 1, exclusive: false, numa: 'nearest' }, 'numa'],
    ['more exclusive cores than the host could ever grant', { vcpus: 31, exclusive: true, numa: 'any' }, 'vcpus'],
  ])('refuses %s as invalid_request naming the field, changing nothing', (_name, request, field) => {
    const pool = poolOf('first-fit');
    grant(pool, shared(2));
    const before = pool.usage();
    const refused = pool.take('bad', request as never);
    expect(!refused.ok && refused.error.code).toBe('invalid_request');
    expect(!refused.ok && refused.error.details?.field).toBe(field);
    expect(pool.usage()).toEqual(before);
    expect(pool.holds('bad')).toBe(false);
  });

  it('refuses to take twice under one allocation id', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(2), 'vm');
    const again = pool.take('vm', shared(2));
    expect(!again.ok && again.error.code).toBe('conflict');
    expect(pool.usage().sharedVcpusCommitted).toBe(2);
  });
});

describe('first-fit', () => {
  it('packs the lowest ids up to ceil(ratio) vCPUs per core, then moves on', () => {
    const pool = poolOf('first-fit');
    expect(grant(pool, shared(3)).cpuset).toEqual([1, 2, 3]);
    expect(grant(pool, shared(3)).cpuset).toEqual([1, 2, 3]);
    expect(grant(pool, shared(3)).cpuset).toEqual([4, 5, 6]);
  });

  it('gives exclusive requests the lowest idle ids and never a loaded core', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(3));
    const pinned = grant(pool, exclusive(3));
    expect(pinned).toMatchObject({ mode: 'exclusive', cpuset: [4, 5, 6], numaNodes: [0], numaFallback: false, policy: 'first-fit' });
    expect(grant(pool, shared(3)).cpuset).toEqual([1, 2, 3]);
    expect(grant(pool, shared(4)).cpuset).toEqual([7, 8, 9, 10]);
  });

  it('with numa prefer, uses the first node that can hold the request whole', () => {
    const pool = poolOf('first-fit');
    const g = grant(pool, shared(15, 'prefer')); // node 0 has only 14 shared cores
    expect(g).toMatchObject({ cpuset: [...range(8, 15), ...range(24, 30)], numaNodes: [1], numaFallback: false });
  });

  it('with numa prefer and no node big enough, spans nodes and says so', () => {
    const g = grant(poolOf('first-fit'), shared(20, 'prefer'));
    expect(g).toMatchObject({ numaNodes: [0, 1], numaFallback: true });
    expect(g.cpuset).toEqual([...range(1, 15), ...range(17, 21)]);
  });

  it('with numa any, spans nodes without calling it a fallback', () => {
    expect(grant(poolOf('first-fit'), shared(20))).toMatchObject({ numaNodes: [0, 1], numaFallback: false });
  });
});

describe('best-fit', () => {
  it('homes shared vCPUs on the least-loaded cores', () => {
    const pool = poolOf('best-fit');
    expect(grant(pool, shared(3), 'a').cpuset).toEqual([1, 2, 3]);
    expect(grant(pool, shared(3), 'b').cpuset).toEqual([4, 5, 6]);
    pool.free('a');
    expect(grant(pool, shared(3), 'c').cpuset).toEqual([1, 2, 3]);
  });

  it('puts an exclusive request on the tightest NUMA node that fits', () => {
    const pool = poolOf('best-fit');
    // node 0 has 14 idle cores, node 1 has 16: node 0 is the tighter fit.
    expect(grant(pool, exclusive(4))).toMatchObject({ cpuset: [1, 2, 17, 18], numaNodes: [0] });
  });

  it('finishes a half-used physical core before splitting a whole one', () => {
    const pool = poolOf('best-fit');
    expect(grant(pool, exclusive(1)).cpuset).toEqual([1]);
    expect(grant(pool, exclusive(1)).cpuset).toEqual([17]);
  });
});

describe('round-robin', () => {
  it('rotates its start past each allocation and wraps, always with distinct cores', () => {
    const pool = poolOf('round-robin');
    const sets = Array.from({ length: 8 }, () => grant(pool, shared(4)).cpuset);
    expect(sets.slice(0, 4)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 10, 11, 12],
      [13, 14, 15, 17],
    ]);
    expect(sets[7]).toEqual([1, 2, 30, 31]);
  });

  it('does not move its cursor on check', () => {
    const pool = poolOf('round-robin');
    grant(pool, shared(4));
    const first = pool.check(shared(2));
    expect(pool.check(shared(2))).toEqual(first);
    expect(grant(pool, shared(2)).cpuset).toEqual([5, 6]);
  });

  it('wraps to the first core of a NUMA node when its cursor is past that node', () => {
    const pool = poolOf('round-robin');
    grant(pool, exclusive(15, 'require')); // node 1: 8-15, 24-30; the cursor moves to 31
    expect(grant(pool, shared(2, 'prefer'))).toMatchObject({ cpuset: [1, 2], numaNodes: [0] });
  });

  it('skips loaded cores for exclusive requests', () => {
    const pool = poolOf('round-robin');
    grant(pool, shared(29)); // 1..15, 17..30
    expect(grant(pool, exclusive(1)).cpuset).toEqual([31]);
    expect(!pool.take('none-idle', exclusive(1)).ok).toBe(true);
  });
});

describe('affinity-aware', () => {
  it('keeps a shared grant on one node with SMT siblings together', () => {
    const pool = poolOf('affinity-aware');
    expect(grant(pool, shared(4))).toMatchObject({ cpuset: [1, 2, 17, 18], numaNodes: [0], numaFallback: false });
    // node 1 is now less loaded per core
    expect(grant(pool, shared(4))).toMatchObject({ cpuset: [8, 9, 24, 25], numaNodes: [1] });
  });

  it('takes whole physical cores for exclusive requests and completes the split one next', () => {
    const pool = poolOf('affinity-aware');
    expect(grant(pool, exclusive(3)).cpuset).toEqual([1, 2, 17]);
    expect(grant(pool, exclusive(1)).cpuset).toEqual([18]);
    expect(grant(pool, exclusive(2)).cpuset).toEqual([3, 19]);
  });

  it('falls back to spanning nodes, roomiest first, and flags it', () => {
    const g = grant(poolOf('affinity-aware'), shared(20));
    expect(g).toMatchObject({ numaNodes: [0, 1], numaFallback: true });
    expect(g.cpuset).toEqual([1, 2, ...range(8, 15), 17, 18, ...range(24, 31)]);
  });

  it('refuses numa require when no node can hold it, naming the largest per-node figure', () => {
    const pool = poolOf('affinity-aware');
    const refused = pool.take('big', shared(20, 'require'));
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    expect(!refused.ok && refused.error.details).toMatchObject({ largestNodeFree: 16, requestedVcpus: 20 });
    expect(!refused.ok && refused.error.message).toContain('the largest has 16');
    expect(pool.usage().committed).toBe(0);
  });
});

describe('numa require with the other policies', () => {
  it.each(['first-fit', 'best-fit', 'round-robin'] as const)('%s keeps a required grant on one node or refuses', (policy) => {
    const pool = poolOf(policy);
    expect(grant(pool, exclusive(10, 'require')).numaNodes).toHaveLength(1);
    const refused = pool.take('x', exclusive(17, 'require')); // 20 idle cores, at most 16 on one node
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error.details?.largestNodeFree).toBe(16);
    expect(grant(pool, exclusive(17, 'any')).numaNodes).toEqual([0, 1]);
  });
});

describe('exclusive cores and the shared pool', () => {
  it('refuses an exclusive grant that would shrink the pool below the shared vCPUs committed', () => {
    const pool = poolOf('first-fit');
    for (let k = 0; k < 4; k += 1) grant(pool, shared(14, 'require')); // 56 vCPUs, all on node 0
    expect(grant(pool, exclusive(2)).cpuset).toEqual([8, 9]); // floor(28 x 2) = 56 still covers them
    const refused = pool.take('one-more', exclusive(1));
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    expect(!refused.ok && refused.error.details).toMatchObject({ sharedVcpusCapacityAfter: 54, sharedVcpusCommitted: 56 });
  });

  it('returns exclusive cores to the pool when freed, and free is idempotent', () => {
    const pool = poolOf('first-fit');
    grant(pool, exclusive(4), 'pinned');
    expect(pool.free('pinned')).toBe(true);
    expect(pool.free('pinned')).toBe(false);
    expect(pool.usage()).toMatchObject({ committed: 0, exclusiveCores: 0, sharedCores: 30, sharedVcpusCapacity: 60 });
  });

  it('shows who holds each exclusive core', () => {
    const pool = poolOf('first-fit');
    grant(pool, exclusive(2), 'db');
    const held = pool.usage().cores.filter((c) => c.role === 'exclusive');
    expect(held.map((c) => [c.id, c.allocationId])).toEqual([
      [1, 'db'],
      [2, 'db'],
    ]);
  });
});

describe('reservations', () => {
  it('counts a reservation in reserved until it becomes active', () => {
    const pool = poolOf('first-fit');
    pool.take('hold', shared(4), { reservation: true });
    pool.take('pin', exclusive(2), { reservation: true });
    expect(pool.usage()).toMatchObject({ committed: 8, reserved: 8 });
    pool.markActive('pin');
    expect(pool.usage()).toMatchObject({ committed: 8, reserved: 4 });
    pool.free('hold');
    expect(pool.usage()).toMatchObject({ committed: 4, reserved: 0 });
  });
});

describe('restore', () => {
  it('re-applies ledgered grants exactly into a fresh pool', () => {
    const pool = poolOf('round-robin');
    const a = grant(pool, shared(5), 'a');
    const b = grant(pool, exclusive(3), 'b');
    const fresh = poolOf('round-robin');
    expect(fresh.restore('a', a).ok).toBe(true);
    expect(fresh.restore('b', b, { reservation: true }).ok).toBe(true);
    pool.free('b');
    grant(pool, exclusive(3), 'b2');
    expect(fresh.usage().cores).toEqual(
      poolOf('round-robin')
        .usage()
        .cores.map((c) => ({ ...c, ...(b.cpuset.includes(c.id) ? { role: 'exclusive', allocationId: 'b' } : {}) })),
    );
    expect(fresh.usage()).toMatchObject({ sharedVcpusCommitted: 5, exclusiveCores: 3, reserved: 6 });
  });

  it('refuses a grant that collides with an exclusive core or a reserved one', () => {
    const pool = poolOf('first-fit');
    const pinned = grant(pool, exclusive(2), 'pinned');
    const collide = pool.restore('other', { ...pinned });
    expect(!collide.ok && collide.error.code).toBe('conflict');
    const onReserved = pool.restore('sys', {
      mode: 'shared',
      vcpus: 1,
      cpuset: [0],
      numaNodes: [0],
      numaFallback: false,
      policy: 'first-fit',
    });
    expect(!onReserved.ok && onReserved.error.code).toBe('conflict');
  });

  it('refuses an exclusive grant on a core carrying shared load', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(1)); // core 1
    const r = pool.restore('x', { mode: 'exclusive', vcpus: 1, cpuset: [1], numaNodes: [0], numaFallback: false, policy: 'first-fit' });
    expect(!r.ok && r.error.code).toBe('conflict');
  });

  it('refuses a malformed grant as invalid_request', () => {
    const r = poolOf('first-fit').restore('x', {
      mode: 'shared',
      vcpus: 2,
      cpuset: [1, 99],
      numaNodes: [0],
      numaFallback: false,
      policy: 'first-fit',
    });
    expect(!r.ok && r.error.code).toBe('invalid_request');
  });

  it('accepts the same grant twice under one id, and refuses a different one', () => {
    const pool = poolOf('first-fit');
    const g = grant(pool, shared(2), 'a');
    expect(pool.restore('a', g).ok).toBe(true);
    const other = pool.restore('a', { ...g, cpuset: [5, 6] });
    expect(!other.ok && other.error.code).toBe('conflict');
  });
});

describe('reconfigure', () => {
  it('refuses to shrink the ratio below what is committed, with the figures', () => {
    const pool = poolOf('first-fit');
    for (let k = 0; k < 10; k += 1) grant(pool, shared(4));
    const refused = pool.reconfigure({ overcommitRatio: 1 });
    expect(!refused.ok && refused.error.code).toBe('conflict');
    expect(!refused.ok && refused.error.details).toMatchObject({ sharedVcpusCommitted: 40, newSharedVcpusCapacity: 30 });
    expect(pool.limits().overcommitRatio).toBe(2);
  });

  it('when forced, applies the change and refuses every take until frees bring committed back under', () => {
    const pool = poolOf('first-fit');
    const ids = Array.from({ length: 10 }, (_, k) => `vm-${k}`);
    for (const id of ids) grant(pool, shared(4), id);
    expect(pool.reconfigure({ overcommitRatio: 1 }, true).ok).toBe(true);
    expect(pool.usage()).toMatchObject({ committed: 40, effectiveCapacity: 30 });
    expect(pool.take('s', shared(1)).ok).toBe(false);
    expect(pool.take('e', exclusive(1)).ok).toBe(false);
    for (const id of ids.slice(0, 3)) pool.free(id);
    expect(pool.take('s', shared(1)).ok).toBe(true);
  });

  it('refuses to reserve a held core unless forced, and then never grants it again', () => {
    const pool = poolOf('first-fit');
    grant(pool, exclusive(1), 'pinned'); // core 1
    const refused = pool.reconfigure({ systemReserve: 4 }); // 0, 16, 1, 17
    expect(!refused.ok && refused.error.details?.heldCores).toEqual([1]);
    expect(pool.reconfigure({ systemReserve: 4 }, true).ok).toBe(true);
    pool.free('pinned');
    expect(
      pool
        .usage()
        .cores.filter((c) => c.role === 'reserved')
        .map((c) => c.id),
    ).toEqual([0, 1, 16, 17]);
    expect(grant(pool, exclusive(1)).cpuset).toEqual([2]);
  });

  it('switches policy and hard limit, and clears the limit with null', () => {
    const pool = poolOf('first-fit');
    const limits = pool.reconfigure({ policy: 'round-robin', hardLimit: 12, reservedCores: [0, 1] });
    expect(limits.ok && limits.value).toEqual({ capacity: 32, systemReserve: 2, overcommitRatio: 2, hardLimit: 12 });
    expect(pool.policyName).toBe('round-robin');
    expect(pool.reconfigure({ hardLimit: null }).ok && pool.limits().hardLimit).toBeUndefined();
  });

  it('refuses an invalid change as invalid_request naming the field', () => {
    const r = poolOf('first-fit').reconfigure({ overcommitRatio: 1.234 });
    expect(!r.ok && r.error).toMatchObject({ code: 'invalid_request', details: { field: 'overcommitRatio' } });
  });
});

describe('usage', () => {
  it('takes per-core utilisation from the probe sample and matches the wire schema', () => {
    const pool = poolOf('first-fit');
    const usage = pool.usage({
      perCorePermille: new Map([
        [3, 500],
        [4, 1000],
        [5, 1500],
      ]),
      totalPermille: 78,
    });
    expect(usage.cores.find((c) => c.id === 3)?.utilizationPermille).toBe(500);
    expect(usage.cores.find((c) => c.id === 5)?.utilizationPermille).toBe(1000);
    expect(usage.cores.find((c) => c.id === 6)?.utilizationPermille).toBe(0);
    expect(usage.used).toBe(3); // 2.5 busy cores, rounded
    expect(CpuUsageSchema.safeParse(usage).success).toBe(true);
  });

  it('reports no utilisation without a sample rather than inventing one', () => {
    const usage = poolOf('first-fit').usage();
    expect(usage.used).toBe(0);
    expect(usage.cores.every((c) => c.utilizationPermille === 0)).toBe(true);
  });
});

describe('fragmentation', () => {
  it('counts idle cores stranded on NUMA nodes too small for the reference exclusive size', () => {
    // 14 idle on node 0, 16 on node 1: 3 + 4 requests of 4 cores, 2 cores stranded.
    expect(poolOf('first-fit').fragmentation(4, true)).toEqual({ fragmentation: 2 / 30, fits: 7 });
  });

  it('counts free shared vCPUs beyond whole reference requests', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(3));
    expect(pool.fragmentation(4, false)).toEqual({ fragmentation: 1 / 57, fits: 14 });
    expect(pool.fragmentation(31, false)).toEqual({ fragmentation: 1, fits: 0 });
  });

  it('limits exclusive fits by what the shared pool must keep', () => {
    const pool = poolOf('first-fit', { overcommitRatio: 1 });
    grant(pool, shared(14, 'require')); // node 0 full of shared load, 14 of 30 vCPUs committed
    expect(pool.fragmentation(4, true)).toEqual({ fragmentation: 0, fits: 4 });
    grant(pool, shared(4, 'require'));
    // 18 committed: at most 12 cores may leave the pool, so 3 requests of 4
    expect(pool.fragmentation(4, true).fits).toBe(3);
  });
});

it('constructs only from a valid config', () => {
  expect(
    () => new CpuPool({ topology: twoSocketHost, reservedCores: [99], systemReserve: 0, overcommitRatio: 2, policy: 'first-fit' }),
  ).toThrow(/reservedCores/);
});
