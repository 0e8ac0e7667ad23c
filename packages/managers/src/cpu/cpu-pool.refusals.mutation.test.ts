import { describe, expect, it } from 'vitest';
import type { CpuGrant } from '@allot/core';
import { exclusive, grant, poolOf, shared } from './test-support.ts';

/*
 * What CpuPool's refusals say (reconfigure conflicts, invalid configurations, NUMA, malformed grants), the reserved
 * cores a partial reconfigure keeps, and probe figures that are not numbers. The usual pool: 32 logical cores, 0 and 16
 * reserved, ratio 2; NUMA node 0 = 0-7,16-23, node 1 = 8-15,24-31. Written against the survivors of a mutation run
 * (docs/benchmarks.md, Mutation testing).
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

describe('reconfigure refusals', () => {
  it('names the held cores a new reservation would take', () => {
    const pool = poolOf('first-fit');
    const held = grant(pool, exclusive(2), 'pinned');
    const r = pool.reconfigure({ reservedCores: held.cpuset });
    expect(r).toEqual({
      ok: false,
      error: expect.objectContaining({
        code: 'conflict',
        message: `cores ${held.cpuset.join(',')} are held by allocations; free them first or force`,
        details: { heldCores: held.cpuset },
      }),
    });
  });

  it('names the new shared capacity and what is committed when a lower ratio would not hold it', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(20), 'a');
    grant(pool, shared(20), 'b');
    const r = pool.reconfigure({ overcommitRatio: 1 });
    expect(r).toMatchObject({
      ok: false,
      error: { code: 'conflict', message: 'the new shared capacity 30 vCPUs is below the 40 committed; free some first or force' },
    });
  });

  it('lists every problem of an invalid configuration and names the first field', () => {
    const pool = poolOf('first-fit');
    const r = pool.reconfigure({ reservedCores: [99] });
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    if (r.ok) return;
    expect(r.error.message.startsWith('invalid CPU configuration: ')).toBe(true);
    expect(r.error.message).toContain('99');
    expect(typeof r.error.details?.['field']).toBe('string');
    expect(r.error.message).toContain(`${String(r.error.details?.['field'])}: `);
  });
});

describe('reserved cores across a reconfigure', () => {
  it('keeps explicitly reserved cores when only the ratio changes, and counts them as the reserve', () => {
    const pool = poolOf('first-fit', { reservedCores: [3], systemReserve: 1 });
    expect(pool.usage().cores.find((c) => c.id === 3)?.role).toBe('reserved');
    expect(pool.reconfigure({ overcommitRatio: 3 }).ok).toBe(true);
    expect(pool.usage().cores.find((c) => c.id === 3)?.role).toBe('reserved');
    expect(pool.usage().systemReserve).toBe(1);
  });

  it('takes the reserve from the cores named when the change names cores but no reserve', () => {
    const pool = poolOf('first-fit');
    expect(pool.reconfigure({ reservedCores: [5, 6, 7] }).ok).toBe(true);
    const usage = pool.usage();
    expect(usage.systemReserve).toBe(3);
    expect(usage.cores.filter((c) => c.role === 'reserved').map((c) => c.id)).toEqual([5, 6, 7]);
  });
});

describe('NUMA refusals', () => {
  it("names the largest NUMA node's free cores, shared or idle", () => {
    const pool = poolOf('first-fit');
    expect(pool.take('big', shared(17, 'require'))).toMatchObject({
      ok: false,
      error: {
        code: 'insufficient_capacity',
        message: 'no NUMA node can hold 17 shared cores: the largest has 16',
        details: { numa: 'require', largestNodeFree: 16 },
      },
    });
    expect(pool.take('big', exclusive(17, 'require'))).toMatchObject({
      ok: false,
      error: { message: 'no NUMA node can hold 17 idle cores: the largest has 16' },
    });
  });
});

describe('malformed grants on restore', () => {
  it('says what is wrong with the grant', () => {
    const pool = poolOf('first-fit');
    expect(pool.restore('a', g('shared', [1, 2], { vcpus: 3 }))).toEqual({
      ok: false,
      error: expect.objectContaining({
        code: 'invalid_request',
        message: 'grant.cpuset must list one core per vCPU',
        details: { field: 'grant.cpuset', vcpus: 3 },
      }),
    });
    expect(pool.restore('a', g('shared', [1], { numaFallback: 'no' as unknown as boolean }))).toEqual({
      ok: false,
      error: expect.objectContaining({
        code: 'invalid_request',
        message: 'grant.numaNodes, numaFallback and policy must be as take() wrote them',
        details: { field: 'grant' },
      }),
    });
    expect(pool.restore('a', g('shared', [1], { cpuset: 'x' as unknown as number[] })).ok).toBe(false);
    expect(pool.restore('a', g('bogus' as 'shared', [1])).ok).toBe(false);
    expect(pool.holds('a')).toBe(false);
  });
});

describe('probe figures', () => {
  it('reads a core utilisation that is not a number as idle', () => {
    const pool = poolOf('first-fit');
    const usage = pool.usage({
      perCorePermille: new Map([
        [1, Number.NaN],
        [2, 500],
      ]),
      totalPermille: 0,
    });
    expect(usage.cores.find((c) => c.id === 1)?.utilizationPermille).toBe(0);
    expect(usage.cores.find((c) => c.id === 2)?.utilizationPermille).toBe(500);
  });
});
