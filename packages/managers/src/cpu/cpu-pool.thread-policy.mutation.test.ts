import { describe, expect, it } from 'vitest';
import { unwrap } from '@allot/core';
import { CpuPool } from './cpu-pool.ts';
import type { CpuRequest } from './pool-config.ts';
import { exclusive, poolOf, shared } from './test-support.ts';
import { topologyFixture } from './topology-fixture.ts';

/*
 * Thread policies at their edges: each refusal's words and figures as an operator reads them, the shared pool's
 * bound with the idle siblings counted, and what a whole-core grant records. Written against the survivors of a
 * mutation run (docs/benchmarks.md). twoSocketHost: node 0 = 0-7,16-23, node 1 = 8-15,24-31; id and id+16 are SMT
 * siblings; 0 and 16 are reserved.
 */

function threads(vcpus: number, threadPolicy: CpuRequest['threadPolicy'], numa: CpuRequest['numa'] = 'any'): CpuRequest {
  return { ...exclusive(vcpus, numa), threadPolicy };
}

describe('whole-core refusals as an operator reads them', () => {
  it('too few wholly idle physical cores: how many the host has', () => {
    const pool = poolOf('first-fit', { overcommitRatio: 1 });
    for (let k = 0; k < 13; k += 1) unwrap(pool.take(`s${k}`, shared(1))); // cores 1..13: physical cores 14 and 15 stay whole
    const isolate = pool.take('iso', threads(3, 'isolate'));
    expect(!isolate.ok && isolate.error).toEqual({
      code: 'insufficient_capacity',
      message: 'threadPolicy isolate: 3 vCPUs need 3 wholly idle physical cores, the host has 2',
      details: expect.objectContaining({ threadPolicy: 'isolate', wholeIdleCores: 2, largestNodeWholeIdleCores: 2, threadsPerCore: 2 }),
    });
    const require = pool.take('req', threads(6, 'require'));
    expect(!require.ok && require.error.message).toBe(
      'threadPolicy require: 6 vCPUs need 6 threads of wholly idle physical cores, the host has 2',
    );
    // Exactly what is whole fits.
    expect(unwrap(pool.take('fit', threads(4, 'require'))).cpuset).toEqual([14, 15, 30, 31]);
  });

  it('fills each node with isolate require, node 1 first when only it has room, then refuses on the idle count', () => {
    const pool = poolOf('first-fit');
    expect(unwrap(pool.take('a', threads(8, 'isolate', 'require'))).numaNodes).toEqual([1]);
    expect(unwrap(pool.take('b', threads(7, 'isolate', 'require'))).numaNodes).toEqual([0]);
    // Every core taken, siblings included: the whole-host check refuses first.
    const refused = pool.take('c', threads(1, 'isolate', 'require'));
    expect(!refused.ok && refused.error.message).toBe('1 exclusive cores requested, 0 idle cores in the shared pool');
  });

  it('a node short of whole cores while the host has enough: the NUMA message and locality', () => {
    // Cores 0 and 8 (and their siblings) reserved: 7 whole physical cores on each node, 14 on the host.
    const pool = poolOf('first-fit', { reservedCores: [0, 16, 8, 24], systemReserve: 4 });
    const r = pool.take('b', threads(8, 'isolate', 'require'));
    expect(!r.ok && r.error).toEqual({
      code: 'insufficient_capacity',
      message: 'threadPolicy isolate: no NUMA node has enough wholly idle physical cores for 8 vCPUs (the largest has 7)',
      details: expect.objectContaining({ numa: 'require', wholeIdleCores: 14, largestNodeWholeIdleCores: 7 }),
    });
  });

  it('an odd count for require on a two-thread host, and any require without SMT', () => {
    const odd = poolOf('first-fit').take('vm', threads(3, 'require'));
    expect(!odd.ok && odd.error.message).toBe(
      'threadPolicy require takes whole physical cores: 3 vCPUs are not a whole number of 2-thread cores',
    );
    const noSmt = new CpuPool({
      topology: topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 8, threadsPerCore: 1 }),
      reservedCores: [],
      systemReserve: 1,
      overcommitRatio: 1,
      policy: 'first-fit',
    });
    const r = noSmt.take('vm', threads(2, 'require'));
    expect(!r.ok && r.error).toEqual({
      code: 'insufficient_capacity',
      message: 'threadPolicy require needs SMT siblings; this host has one thread per core',
      details: expect.objectContaining({ threadPolicy: 'require', threadsPerCore: 1 }),
    });
  });
});

describe('the shared pool with idle siblings counted', () => {
  // Hard limit 30 at ratio 2: each exclusive core costs 2 vCPUs of the limit, so isolate's idle siblings count twice over.
  function loaded(committed: number): CpuPool {
    const pool = poolOf('first-fit', { hardLimit: 30 });
    for (let k = 0; k < committed; k += 1) unwrap(pool.take(`s${k}`, shared(1))); // packed two to a core: cores 1..committed/2
    return pool;
  }

  it('takes isolate cores while the shared pool still covers what is committed, exactly', () => {
    const pool = loaded(18);
    const g = unwrap(pool.take('iso', threads(3, 'isolate')));
    expect(g.idleSiblings).toHaveLength(3);
    expect(pool.usage()).toMatchObject({ sharedVcpusCapacity: 18, sharedVcpusCommitted: 18, exclusiveCores: 6 });
  });

  it('refuses one more, naming the cores it would take and the idle ones among them', () => {
    const pool = loaded(18);
    const r = pool.take('iso', threads(4, 'isolate'));
    expect(!r.ok && r.error).toEqual({
      code: 'insufficient_capacity',
      message: 'threadPolicy isolate: taking 8 cores (4 held idle) would shrink the shared pool to 14 vCPUs, below the 18 committed',
      details: expect.objectContaining({ threadPolicy: 'isolate', coresTaken: 8, sharedVcpusCapacityAfter: 14, requestedVcpus: 4 }),
    });
    expect(pool.usage()).toMatchObject({ exclusiveCores: 0, sharedVcpusCommitted: 18 });
  });

  it('require takes no idle siblings: the same room holds twice the vCPUs', () => {
    const pool = loaded(18);
    const g = unwrap(pool.take('req', threads(6, 'require')));
    expect(g.idleSiblings).toBeUndefined();
    expect(g.threadPolicy).toBe('require');
  });
});

describe('what a whole-core grant records', () => {
  it('names its thread policy and the policy that chose, and round-robin moves on past it and its siblings', () => {
    const pool = poolOf('round-robin');
    const a = unwrap(pool.take('a', threads(2, 'isolate')));
    expect({ cpuset: a.cpuset, idleSiblings: a.idleSiblings, policy: a.policy, threadPolicy: a.threadPolicy }).toEqual({
      cpuset: [1, 2],
      idleSiblings: [17, 18],
      policy: 'round-robin',
      threadPolicy: 'isolate',
    });
    // The cursor moves past the last core taken, the held siblings included.
    expect(unwrap(pool.take('b', shared(1))).cpuset).toEqual([19]);
  });

  it('a grant without a thread policy records none', () => {
    const g = unwrap(poolOf('first-fit').take('x', exclusive(2)));
    expect('threadPolicy' in g || 'idleSiblings' in g).toBe(false);
  });
});
