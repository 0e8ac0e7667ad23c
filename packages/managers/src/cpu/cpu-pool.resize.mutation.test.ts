import { describe, expect, it } from 'vitest';
import { unwrap } from '@allot/core';
import type { CpuGrant } from '@allot/core';
import { exclusive, grant, poolOf, shared } from './test-support.ts';

/*
 * CpuPool.resize and reshape at their edges: each refusal with its figures, the round-robin cursor after a growth,
 * reservations resized, and reshape's conflicts. Written against the survivors of a mutation run (docs/benchmarks.md).
 * The usual pool: 32 logical cores, 0 and 16 reserved, ratio 2: 30 shared cores, 60 shared vCPUs; node 0 = 0-7,16-23.
 */

describe('resize refusals', () => {
  it('answers not_found for an allocation holding nothing, and invalid_request for a size that is not a whole number >= 1', () => {
    const pool = poolOf('first-fit');
    expect(pool.resize('ghost', 2, 'any')).toEqual({
      ok: false,
      error: { code: 'not_found', message: 'allocation ghost holds no cores', details: { allocationId: 'ghost' } },
    });
    grant(pool, shared(2), 'a');
    for (const vcpus of [0, -1, 1.5, Number.NaN])
      expect(pool.resize('a', vcpus, 'any')).toEqual({
        ok: false,
        error: { code: 'invalid_request', message: 'vcpus: a whole number >= 1', details: { field: 'vcpus' } },
      });
    expect(pool.usage().sharedVcpusCommitted).toBe(2);
  });

  it('answers the grant it holds, unchanged, for the same size', () => {
    const pool = poolOf('round-robin');
    const a = grant(pool, shared(2), 'a');
    expect(unwrap(pool.resize('a', 2, 'any'))).toBe(a);
    // The cursor did not move: the next take starts right after a's cores.
    expect(grant(pool, shared(1), 'b').cpuset).toEqual([3]);
  });

  it("refuses to resize whole physical cores in place, naming the grant's thread policy", () => {
    const pool = poolOf('first-fit');
    unwrap(pool.take('vm', { ...exclusive(2), threadPolicy: 'require' }));
    expect(pool.resize('vm', 4, 'any')).toEqual({
      ok: false,
      error: {
        code: 'invalid_request',
        message: 'allocation vm holds whole physical cores (threadPolicy require); resizing them in place is not supported',
        details: { allocationId: 'vm', threadPolicy: 'require' },
      },
    });
  });

  it('refuses an exclusive growth past the idle cores, with how many are idle', () => {
    const pool = poolOf('first-fit');
    grant(pool, exclusive(2), 'a');
    grant(pool, shared(27), 'fill'); // 27 of the 28 other pool cores carry load: 1 stays idle
    const r = pool.resize('a', 4, 'any');
    expect(!r.ok && r.error.message).toBe('2 more exclusive cores requested, 1 idle cores in the shared pool');
    expect(!r.ok && r.error.details).toMatchObject({ requestedVcpus: 2, mode: 'exclusive', currentVcpus: 2, idleCores: 1 });
    // Exactly the idle ones fit.
    expect(unwrap(pool.resize('a', 3, 'any')).vcpus).toBe(3);
  });

  it('refuses an exclusive growth that would shrink the shared pool below what shared grants hold', () => {
    // Ratio 1.5: first-fit packs 2 shared vCPUs on a core, while the pool holds 1.5 per core.
    const pool = poolOf('first-fit', { overcommitRatio: 1.5 });
    grant(pool, exclusive(2), 'a'); // 28 pool cores
    for (let k = 0; k < 27; k += 1) grant(pool, shared(1)); // 27 vCPUs on 14 cores: 14 idle
    const r = pool.resize('a', 13, 'any');
    expect(!r.ok && r.error).toMatchObject({
      code: 'insufficient_capacity',
      message: 'taking 11 more exclusive cores would shrink the shared pool to 25 vCPUs, below the 27 committed',
      details: { requestedVcpus: 11, mode: 'exclusive', currentVcpus: 2, sharedVcpusCommitted: 27 },
    });
    // 18 pool cores hold exactly 27 vCPUs: that fits.
    expect(unwrap(pool.resize('a', 12, 'any')).vcpus).toBe(12);
    expect(pool.usage()).toMatchObject({ sharedVcpusCapacity: 27, sharedVcpusCommitted: 27, exclusiveCores: 12 });
  });

  it('refuses a shared growth needing more distinct cores than the pool has, and one past the free vCPUs', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(2), 'a');
    const wide = pool.resize('a', 31, 'any');
    expect(!wide.ok && wide.error).toMatchObject({
      code: 'insufficient_capacity',
      message: '31 vCPUs need 31 distinct shared cores, the shared pool has 30',
      details: { requestedVcpus: 29, mode: 'shared', currentVcpus: 2 },
    });
    expect(unwrap(pool.resize('a', 30, 'any')).vcpus).toBe(30);
    grant(pool, shared(20), 'b');
    grant(pool, shared(1), 'c'); // 51 of 60
    const past = pool.resize('b', 30, 'any');
    expect(!past.ok && past.error).toMatchObject({
      code: 'insufficient_capacity',
      message: '10 more vCPUs requested, 9 of 60 shared vCPUs free',
      details: { requestedVcpus: 10, freeVcpus: 9, currentVcpus: 20 },
    });
    // Exactly the free vCPUs fit.
    expect(unwrap(pool.resize('b', 29, 'any')).vcpus).toBe(29);
    expect(pool.usage().sharedVcpusCommitted).toBe(60);
  });

  it('names the node and the locality when a required node has too few cores for the growth', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(2, 'require'), 'a'); // node 0: 14 pool cores
    const r = pool.resize('a', 15, 'require');
    expect(!r.ok && r.error).toMatchObject({
      code: 'insufficient_capacity',
      message: 'node 0 has too few shared cores for 13 more (NUMA require)',
      details: { currentVcpus: 2, numa: 'require' },
    });
  });
});

describe('resize and the round-robin cursor', () => {
  it('moves the cursor past the cores a round-robin growth took', () => {
    const pool = poolOf('round-robin');
    expect(grant(pool, shared(2), 'a').cpuset).toEqual([1, 2]);
    expect(unwrap(pool.resize('a', 3, 'any')).cpuset).toEqual([1, 2, 3]);
    expect(grant(pool, shared(1), 'b').cpuset).toEqual([4]);
  });

  it('leaves the cursor where it was when the growth names another policy', () => {
    const pool = poolOf('round-robin');
    expect(grant(pool, shared(1), 'a').cpuset).toEqual([1]);
    expect(unwrap(pool.resize('a', 2, 'any', 'first-fit')).cpuset).toEqual([1, 2]);
    expect(grant(pool, shared(1), 'b').cpuset).toEqual([2]);
  });
});

describe('resizing a reservation', () => {
  it('keeps the reserved figure equal to what the reservation holds, shared or exclusive, until it is active', () => {
    for (const request of [shared(2), exclusive(2)]) {
      const pool = poolOf('first-fit');
      unwrap(pool.take('r', request, { reservation: true }));
      const held = () => pool.usage();
      expect(held().reserved).toBe(held().committed);
      unwrap(pool.resize('r', 5, 'any'));
      expect(held().reserved).toBe(held().committed);
      expect(held().committed).toBeGreaterThanOrEqual(5);
      unwrap(pool.resize('r', 1, 'any'));
      expect(held().reserved).toBe(held().committed);
      pool.markActive('r');
      expect(held().reserved).toBe(0);
      expect(pool.free('r')).toBe(true);
      expect(held()).toMatchObject({ committed: 0, reserved: 0 });
    }
  });
});

const g = (mode: 'shared' | 'exclusive', cpuset: number[], more: Partial<CpuGrant> = {}): CpuGrant => ({
  mode,
  vcpus: cpuset.length,
  cpuset,
  numaNodes: [0],
  numaFallback: false,
  policy: 'first-fit',
  ...more,
});

describe('reshape (a journaled resize re-applied)', () => {
  it('refuses an allocation holding nothing, another mode, and idle siblings', () => {
    const pool = poolOf('first-fit');
    expect(pool.reshape('ghost', g('shared', [1]))).toEqual({
      ok: false,
      error: { code: 'conflict', message: 'allocation ghost holds no cores to resize', details: { allocationId: 'ghost' } },
    });
    unwrap(pool.restore('a', g('shared', [1, 2])));
    expect(pool.reshape('a', g('exclusive', [1, 2, 3]))).toEqual({
      ok: false,
      error: { code: 'conflict', message: 'allocation a holds shared cores, not exclusive', details: { allocationId: 'a' } },
    });
    unwrap(pool.take('iso', { ...exclusive(1), threadPolicy: 'isolate' }));
    const isolated = pool.usage().cores.filter((c) => c.allocationId === 'iso');
    expect(isolated).toHaveLength(2);
    const own = isolated.map((c) => c.id).sort((x, y) => x - y);
    const r = pool.reshape('iso', g('exclusive', [own[0] ?? 0]));
    expect(r).toEqual({
      ok: false,
      error: {
        code: 'conflict',
        message: 'allocation iso holds idle siblings; its cores are not resized in place',
        details: { allocationId: 'iso' },
      },
    });
    const asked = pool.reshape('a', g('exclusive', [1, 2], { idleSiblings: [17] }));
    expect(!asked.ok && asked.error.code).toBe('conflict');
  });

  it('refuses an added core that is reserved, held exclusively, or (for an exclusive grant) loaded, and changes nothing', () => {
    const pool = poolOf('first-fit');
    unwrap(pool.restore('s', g('shared', [1, 2])));
    unwrap(pool.restore('x', g('exclusive', [5, 6])));
    unwrap(pool.restore('load', g('shared', [9])));
    const before = pool.usage();
    const conflict = (id: string, core: number) => ({
      ok: false,
      error: { code: 'conflict', message: `core ${core} added to ${id} is not free`, details: { allocationId: id, core } },
    });
    expect(pool.reshape('s', g('shared', [1, 2, 16]))).toEqual(conflict('s', 16));
    expect(pool.reshape('s', g('shared', [1, 2, 5]))).toEqual(conflict('s', 5));
    expect(pool.reshape('x', g('exclusive', [5, 6, 9]))).toEqual(conflict('x', 9));
    // A shared grant may add a loaded core.
    expect(pool.reshape('s', g('shared', [1, 2, 9])).ok).toBe(true);
    expect(pool.usage().sharedVcpusCommitted).toBe(before.sharedVcpusCommitted + 1);
  });

  it('gives back the dropped cores and takes the added ones, exclusive or shared', () => {
    const pool = poolOf('first-fit');
    unwrap(pool.restore('x', g('exclusive', [5, 6])));
    unwrap(pool.reshape('x', g('exclusive', [6, 7, 8])));
    const role = (id: number) => pool.usage().cores.find((c) => c.id === id);
    expect([role(5)?.role, role(6)?.allocationId, role(7)?.allocationId, role(8)?.role]).toEqual(['shared', 'x', 'x', 'exclusive']);
    expect(pool.usage().exclusiveCores).toBe(3);
    unwrap(pool.restore('s', g('shared', [1, 2])));
    unwrap(pool.reshape('s', g('shared', [2, 3])));
    expect(pool.usage().sharedVcpusCommitted).toBe(2);
    // Freed by the cores the reshape left it: nothing stays loaded or held.
    expect(pool.free('s') && pool.free('x')).toBe(true);
    expect(pool.usage()).toMatchObject({ committed: 0, exclusiveCores: 0, sharedVcpusCommitted: 0 });
    expect(pool.usage().cores.every((c) => c.role !== 'exclusive')).toBe(true);
  });

  it('keeps a reservation reserved across a reshape', () => {
    const pool = poolOf('first-fit');
    unwrap(pool.restore('r', g('exclusive', [5, 6]), { reservation: true }));
    unwrap(pool.reshape('r', g('exclusive', [5, 6, 7])));
    expect(pool.usage().reserved).toBe(pool.usage().committed);
    pool.markActive('r');
    expect(pool.usage().reserved).toBe(0);
  });
});
