import { describe, expect, it } from 'vitest';
import { unwrap } from '@allot/core';
import type { CpuGrant } from '@allot/core';
import { CpuPool } from './cpu-pool.ts';
import type { CpuRequest } from './pool-config.ts';
import { exclusive, grant, poolOf, shared, twoSocketHost } from './test-support.ts';
import { topologyFixture } from './topology-fixture.ts';

// twoSocketHost: node 0 = 0-7,16-23, node 1 = 8-15,24-31; id and id+16 are SMT siblings; 0 and 16 are reserved.
const sibling = (id: number): number => (id + 16) % 32;

function threads(vcpus: number, threadPolicy: CpuRequest['threadPolicy'], numa: CpuRequest['numa'] = 'any'): CpuRequest {
  return { ...exclusive(vcpus, numa), threadPolicy };
}

function heldBy(pool: CpuPool, allocationId: string): number[] {
  return pool
    .usage()
    .cores.filter((c) => c.allocationId === allocationId)
    .map((c) => c.id);
}

describe('thread policy isolate', () => {
  it('gives each vCPU its own physical core and holds the siblings idle for the grant', () => {
    const pool = poolOf('first-fit');
    const g = unwrap(pool.take('vm', threads(2, 'isolate')));
    expect(g.cpuset).toEqual([1, 2]);
    expect(g.idleSiblings).toEqual([17, 18]);
    expect(g.threadPolicy).toBe('isolate');
    expect(heldBy(pool, 'vm')).toEqual([1, 2, 17, 18]);
  });

  it('counts the held siblings as used: four cores leave the shared pool, as Nova counts them', () => {
    const pool = poolOf('first-fit'); // 30 grantable cores, ratio 2
    unwrap(pool.take('vm', threads(2, 'isolate')));
    const u = pool.usage();
    expect(u.exclusiveCores).toBe(4);
    expect(u.sharedCores).toBe(26);
    expect(u.committed).toBe(8);
    expect(u.sharedVcpusCapacity).toBe(52);
  });

  it('never lets anyone else have a held sibling, shared or exclusive', () => {
    const pool = poolOf('first-fit');
    unwrap(pool.take('iso', threads(14, 'isolate'))); // every grantable physical core, 1..15 but one
    const others: CpuGrant[] = [];
    for (let k = 0; k < 4; k += 1) {
      const r = pool.take(`x${k}`, exclusive(1));
      if (r.ok) others.push(r.value);
    }
    const s = pool.take('s', shared(2));
    if (s.ok) others.push(s.value);
    const held = new Set(heldBy(pool, 'iso'));
    for (const g of others) for (const core of g.cpuset) expect(held.has(core)).toBe(false);
  });

  it('refuses when too few physical cores are wholly idle, with the figures', () => {
    const pool = poolOf('first-fit', { overcommitRatio: 1 });
    // One shared vCPU on each of cores 1..15 leaves their siblings idle but no physical core wholly idle.
    for (let k = 0; k < 15; k += 1) unwrap(pool.take(`s${k}`, shared(1)));
    expect(unwrap(pool.check(exclusive(1))).cpuset).toEqual([17]); // an exclusive core without a policy still fits
    const r = pool.take('iso', threads(1, 'isolate'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('insufficient_capacity');
    expect(r.error.details).toMatchObject({
      threadPolicy: 'isolate',
      wholeIdleCores: 0,
      largestNodeWholeIdleCores: 0,
      requestedVcpus: 1,
      mode: 'exclusive',
    });
  });

  it('with numa require stays on one node, and refuses when no node has enough whole cores', () => {
    const pool = poolOf('first-fit');
    const g = unwrap(pool.take('a', threads(8, 'isolate', 'require')));
    expect(g.numaNodes).toEqual([1]); // node 0 has 7 free physical cores (core 0 is reserved)
    const r = pool.take('b', threads(8, 'isolate', 'require'));
    expect(r.ok ? 'granted' : r.error.details).toMatchObject({ numa: 'require', largestNodeWholeIdleCores: 7 });
  });

  it('gives the siblings back when freed', () => {
    const pool = poolOf('first-fit');
    const before = pool.usage();
    unwrap(pool.take('vm', threads(3, 'isolate')));
    expect(pool.free('vm')).toBe(true);
    expect(pool.usage()).toEqual(before);
  });

  it('restores a grant with its siblings, and refuses one whose sibling is held by another', () => {
    const pool = poolOf('best-fit');
    const g = unwrap(pool.take('vm', threads(2, 'isolate')));
    const fresh = poolOf('best-fit');
    unwrap(fresh.restore('vm', g));
    expect(fresh.usage()).toEqual(pool.usage());
    expect(unwrap(fresh.check(exclusive(1))).cpuset.some((c) => g.idleSiblings?.includes(c))).toBe(false);

    const taken = poolOf('first-fit');
    unwrap(
      taken.restore('other', {
        mode: 'exclusive',
        vcpus: 1,
        cpuset: [g.idleSiblings?.[0] ?? -1],
        numaNodes: [0],
        numaFallback: false,
        policy: 'first-fit',
      }),
    );
    const r = taken.restore('vm', g);
    expect(r.ok ? 'restored' : r.error.code).toBe('conflict');
  });

  it('refuses to resize in place rather than split a core', () => {
    const pool = poolOf('first-fit');
    unwrap(pool.take('vm', threads(2, 'isolate')));
    const r = pool.resize('vm', 3, 'any');
    expect(r.ok ? 'resized' : r.error.code).toBe('invalid_request');
  });
});

describe('thread policy require', () => {
  it('takes SMT siblings together, where first-fit without it splits them', () => {
    expect(grant(poolOf('first-fit'), exclusive(2)).cpuset).toEqual([1, 2]);
    const g = unwrap(poolOf('first-fit').take('vm', threads(4, 'require')));
    expect(g.cpuset).toEqual([1, 2, 17, 18]);
    expect(g.idleSiblings).toBeUndefined();
  });

  it('round-robin keeps siblings together too', () => {
    const pool = poolOf('round-robin');
    for (let k = 0; k < 5; k += 1) {
      const g = unwrap(pool.take(`vm${k}`, threads(2, 'require')));
      expect(g.cpuset[1]).toBe(sibling(g.cpuset[0] ?? 0));
    }
  });

  it('refuses an odd vCPU count on a two-thread host, and any request on a host without SMT', () => {
    const odd = poolOf('first-fit').take('vm', threads(3, 'require'));
    expect(odd.ok ? 'granted' : odd.error.details).toMatchObject({ threadPolicy: 'require', threadsPerCore: 2 });
    if (!odd.ok) expect(odd.error.message).toMatch(/whole number of 2-thread cores/);
    const noSmt = new CpuPool({
      topology: topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 8, threadsPerCore: 1 }),
      reservedCores: [],
      systemReserve: 1,
      overcommitRatio: 1,
      policy: 'first-fit',
    });
    const r = noSmt.take('vm', threads(2, 'require'));
    expect(r.ok ? 'granted' : r.error.message).toMatch(/needs SMT siblings/);
  });

  it('skips physical cores with a thread in use', () => {
    const pool = poolOf('first-fit');
    unwrap(pool.take('one', exclusive(1))); // core 1, its sibling 17 stays in the pool
    const g = unwrap(pool.take('vm', threads(2, 'require')));
    expect(g.cpuset).toEqual([2, 18]);
  });
});

describe('thread policy prefer', () => {
  it('takes whole cores first but never refuses for the shape', () => {
    const pool = poolOf('first-fit');
    expect(unwrap(pool.take('a', threads(3, 'prefer'))).cpuset).toEqual([1, 2, 17]);
    // Only split cores left after shared load on every first thread: prefer still gets cores.
    const busy = poolOf('first-fit', { overcommitRatio: 1 });
    for (let k = 0; k < 15; k += 1) unwrap(busy.take(`s${k}`, shared(1)));
    expect(unwrap(busy.take('b', threads(2, 'prefer'))).cpuset).toHaveLength(2);
  });

  it('is refused with shared vCPUs: a thread policy is about dedicated cores', () => {
    const r = poolOf('first-fit').take('vm', { ...shared(2), threadPolicy: 'prefer' });
    expect(r.ok ? 'granted' : r.error.details).toMatchObject({ field: 'threadPolicy' });
  });
});

describe('per-request core policy', () => {
  it('overrides the host policy for that grant only', () => {
    const pool = poolOf('first-fit');
    unwrap(pool.take('a', exclusive(2)));
    // best-fit exclusive finishes the half-used physical cores first (17, 18), first-fit would take 3, 4.
    const g = unwrap(pool.take('b', { ...exclusive(2), policy: 'best-fit' }));
    expect(g.cpuset).toEqual([17, 18]);
    expect(g.policy).toBe('best-fit');
    expect(grant(pool, exclusive(1)).policy).toBe('first-fit');
  });

  it('refuses a policy it does not know', () => {
    const r = poolOf('first-fit').take('a', { ...exclusive(1), policy: 'fastest' as never });
    expect(r.ok ? 'granted' : r.error.details).toMatchObject({ field: 'policy' });
  });

  it('combines with a thread policy', () => {
    const pool = poolOf('first-fit');
    const g = unwrap(pool.take('a', { ...threads(2, 'isolate'), policy: 'round-robin' }));
    expect(g.policy).toBe('round-robin');
    expect(g.idleSiblings).toEqual(g.cpuset.map(sibling));
  });
});

describe('twoSocketHost fixture', () => {
  it('has two threads per physical core', () => {
    expect(new Set(twoSocketHost.cores.map((c) => c.core)).size).toBe(16);
  });
});
