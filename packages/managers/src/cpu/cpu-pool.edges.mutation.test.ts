import { describe, expect, it } from 'vitest';
import { unwrap } from '@allot/core';
import type { CpuGrant } from '@allot/core';
import { exclusive, grant, poolOf, shared } from './test-support.ts';

/*
 * CpuPool edges left by the mutation run of 2026-11-30 (docs/benchmarks.md): a restore of the same allocation that
 * disagrees in its size or its idle siblings, the round-robin cursor under a request naming another policy, and the
 * words of an invalid configuration. The usual pool: 32 logical cores, 0 and 16 reserved, ratio 2.
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

describe('a restore of what an allocation already holds', () => {
  it('is a conflict when the ledgered grant says another vCPU count for the same cores', () => {
    const pool = poolOf('first-fit');
    unwrap(pool.restore('a', g('shared', [3, 9])));
    expect(pool.restore('a', g('shared', [3, 9], { vcpus: 3 })).ok).toBe(false);
    // Or more cores than vCPUs, the first of them the ones it holds.
    expect(pool.restore('a', g('shared', [3, 9, 11], { vcpus: 2 })).ok).toBe(false);
    expect(pool.usage().sharedVcpusCommitted).toBe(2);
  });

  it('is a conflict when the idle siblings differ, and accepts them in any order', () => {
    const pool = poolOf('first-fit');
    const iso = unwrap(pool.take('iso', { ...exclusive(2), threadPolicy: 'isolate' }));
    expect(iso.idleSiblings).toEqual([17, 18]);
    expect(pool.restore('iso', { ...iso, idleSiblings: [18, 17] }).ok).toBe(true);
    expect(pool.restore('iso', { ...iso, idleSiblings: [17, 19] }).ok).toBe(false);
    expect(pool.restore('iso', { ...iso, idleSiblings: [17] }).ok).toBe(false);
    const { idleSiblings: _dropped, ...without } = iso;
    expect(pool.restore('iso', without).ok).toBe(false);
  });
});

describe('the round-robin cursor under a per-request policy', () => {
  it('does not move for a take another policy chose', () => {
    const pool = poolOf('round-robin');
    expect(grant(pool, shared(1), 'a').cpuset).toEqual([1]);
    // first-fit packs core 1 up to 2 vCPUs, then 2: the cursor stays after core 1.
    expect(unwrap(pool.take('b', { ...shared(2), policy: 'first-fit' })).cpuset).toEqual([1, 2]);
    expect(grant(pool, shared(1), 'c').cpuset).toEqual([2]);
  });
});

describe('an invalid configuration', () => {
  it('is refused with every problem in the message and the first field named', () => {
    const pool = poolOf('first-fit');
    const r = pool.reconfigure({ overcommitRatio: 0, systemReserve: 40 });
    expect(!r.ok && r.error.message).toMatch(/^invalid CPU configuration: \S+: .+; \S+: .+/);
    expect(!r.ok && typeof r.error.details?.['field']).toBe('string');
  });

  it('makes the constructor throw, naming the problem', () => {
    expect(() => poolOf('first-fit', { systemReserve: 32 })).toThrow(/^invalid CPU pool config: systemReserve: reserves 32 of 32 cores/);
  });
});
