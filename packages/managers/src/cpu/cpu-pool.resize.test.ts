import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CPU_POLICIES, unwrap } from '@allot/core';
import type { CpuGrant, CpuPolicy } from '@allot/core';
import { CpuPool } from './cpu-pool.ts';
import { exclusive, grant, poolOf, shared, twoSocketHost } from './test-support.ts';

describe('CpuPool.resize', () => {
  it('grows a shared grant with cores it does not hold, though its own still have room under first-fit', () => {
    const pool = poolOf('first-fit'); // ratio 2: first-fit packs a core up to 2 shared vCPUs before the next
    const a = grant(pool, shared(2), 'a');
    expect(a.cpuset).toEqual([1, 2]);
    const grown = unwrap(pool.resize('a', 4, 'any'));
    expect(grown.cpuset).toEqual([1, 2, 3, 4]);
    expect(pool.usage().sharedVcpusCommitted).toBe(4);
  });

  it('shrinks by giving back the highest core ids, and their load', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(4), 'a');
    const before = pool.usage();
    const shrunk = unwrap(pool.resize('a', 1, 'any'));
    expect(shrunk.cpuset).toEqual([1]);
    expect(pool.usage().sharedVcpusCommitted).toBe(before.sharedVcpusCommitted - 3);
  });

  it('keeps a NUMA-required exclusive grant on its node, and refuses with the figures when the node is full', () => {
    const pool = poolOf('first-fit');
    const a = grant(pool, exclusive(2, 'require'), 'a');
    expect(a.numaNodes).toEqual([0]);
    const grown = unwrap(pool.resize('a', 14, 'require'));
    expect(grown.numaNodes).toEqual([0]);
    const refused = pool.resize('a', 15, 'require');
    expect(!refused.ok && refused.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { requestedVcpus: 1, mode: 'exclusive', currentVcpus: 14 },
    });
    // Preferred locality falls back to the other node.
    const spread = unwrap(pool.resize('a', 15, 'prefer'));
    expect(spread.numaNodes).toEqual([0, 1]);
    expect(spread.numaFallback).toBe(true);
  });

  it('refuses a shared growth past the shared capacity and changes nothing', () => {
    const pool = poolOf('round-robin', { overcommitRatio: 1 });
    grant(pool, shared(20), 'a');
    grant(pool, shared(8), 'b');
    const before = pool.usage();
    const refused = pool.resize('b', 12, 'any');
    expect(!refused.ok && refused.error).toMatchObject({ code: 'insufficient_capacity', details: { requestedVcpus: 4, freeVcpus: 2 } });
    expect(pool.usage()).toEqual(before);
  });
});

type Step =
  | { kind: 'take'; vcpus: number; exclusive: boolean; numa: 'any' | 'prefer' | 'require' }
  | { kind: 'resize'; pick: number; vcpus: number; numa: 'any' | 'prefer' | 'require' }
  | { kind: 'free'; pick: number };

const numa = fc.constantFrom('any' as const, 'prefer' as const, 'require' as const);
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('take' as const), vcpus: fc.integer({ min: 1, max: 10 }), exclusive: fc.boolean(), numa }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('resize' as const), pick: fc.nat(), vcpus: fc.integer({ min: 1, max: 16 }), numa }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
);

describe('CpuPool.resize, under any sequence of takes, resizes and frees', () => {
  it('keeps every grant valid and the figures equal to a pool rebuilt from the grants', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<CpuPolicy>(...CPU_POLICIES),
        fc.constantFrom(1, 1.5, 2),
        fc.array(step, { maxLength: 40 }),
        (policy, ratio, steps) => {
          const pool = poolOf(policy, { overcommitRatio: ratio });
          const live = new Map<string, CpuGrant>();
          let n = 0;
          for (const s of steps) {
            const ids = [...live.keys()];
            if (s.kind === 'take') {
              const id = `vm-${(n += 1)}`;
              const taken = pool.take(id, { vcpus: s.vcpus, exclusive: s.exclusive, numa: s.numa });
              if (taken.ok) live.set(id, taken.value);
            } else if (ids.length > 0) {
              const id = ids[s.pick % ids.length] as string;
              if (s.kind === 'free') {
                pool.free(id);
                live.delete(id);
              } else {
                const before = pool.usage();
                const old = live.get(id) as CpuGrant;
                const resized = pool.resize(id, s.vcpus, s.numa);
                if (resized.ok) {
                  live.set(id, resized.value);
                  if (s.vcpus <= old.vcpus) expect(resized.value.cpuset).toEqual(old.cpuset.slice(0, s.vcpus));
                  else expect(resized.value.cpuset).toEqual(expect.arrayContaining(old.cpuset));
                  if (s.numa === 'require' && old.numaNodes.length === 1) expect(resized.value.numaNodes).toEqual(old.numaNodes);
                } else {
                  expect(pool.usage()).toEqual(before);
                }
              }
            }
            const usage = pool.usage();
            expect(usage.committed).toBeLessThanOrEqual(usage.effectiveCapacity);
            const exclusiveCores = new Set<number>();
            for (const g of live.values()) {
              expect(new Set(g.cpuset).size).toBe(g.vcpus);
              expect([...g.cpuset].sort((a, b) => a - b)).toEqual(g.cpuset);
              if (g.mode === 'exclusive') for (const c of g.cpuset) exclusiveCores.add(c);
            }
            for (const g of live.values()) if (g.mode === 'shared') for (const c of g.cpuset) expect(exclusiveCores.has(c)).toBe(false);
            // The same grants restored into a fresh pool give the same figures and per-core state.
            const rebuilt = new CpuPool({ topology: twoSocketHost, reservedCores: [], systemReserve: 2, overcommitRatio: ratio, policy });
            for (const [id, g] of live) unwrap(rebuilt.restore(id, g));
            expect(rebuilt.usage()).toEqual(usage);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
