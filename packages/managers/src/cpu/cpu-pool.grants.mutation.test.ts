import { describe, expect, it } from 'vitest';
import { unwrap } from '@allot/core';
import type { CpuGrant, HostTopology } from '@allot/core';
import { CpuPool } from './cpu-pool.ts';
import { exclusive, grant, poolOf, shared } from './test-support.ts';
import { topologyFixture } from './topology-fixture.ts';

/*
 * CpuPool: ledgered grants it refuses to restore or reshape (by field), NUMA bounds on a one-node host, a growth's
 * home node and the NUMA nodes and fallback flag of the grown grant, and a shrink giving its cores back. Written
 * against the survivors of the mutation run of 2026-11-30 (docs/benchmarks.md, Mutation testing).
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

/** Two NUMA nodes of one physical core with two threads each: node 0 = cores 0 and 2, node 1 = cores 1 and 3. */
const tiny = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 1, threadsPerCore: 2 });
const tinyPool = (ratio = 1) =>
  new CpuPool({ topology: tiny, reservedCores: [], systemReserve: 0, overcommitRatio: ratio, policy: 'first-fit' });

describe('a ledgered grant restore refuses', () => {
  it('idle siblings on a shared grant (an empty list is no siblings)', () => {
    const pool = poolOf('first-fit');
    expect(pool.restore('a', g('shared', [3], { idleSiblings: [19] }))).toEqual({
      ok: false,
      error: {
        code: 'invalid_request',
        message: 'grant.idleSiblings: only an exclusive grant holds idle siblings',
        details: { field: 'grant.idleSiblings' },
      },
    });
    expect(pool.usage().sharedVcpusCommitted).toBe(0);
    unwrap(pool.restore('b', g('shared', [3], { idleSiblings: [] })));
    expect(pool.usage().sharedVcpusCommitted).toBe(1);
  });

  it('an unknown thread policy, or idle siblings that are not a list', () => {
    const pool = poolOf('first-fit');
    const refusal = {
      ok: false,
      error: {
        code: 'invalid_request',
        message: 'grant.threadPolicy and idleSiblings must be as take() wrote them',
        details: { field: 'grant' },
      },
    };
    expect(pool.restore('a', g('exclusive', [3], { threadPolicy: 'bogus' as never }))).toEqual(refusal);
    expect(pool.restore('a', g('exclusive', [3], { idleSiblings: '19' as unknown as number[] }))).toEqual(refusal);
    expect(pool.usage().exclusiveCores).toBe(0);
  });

  it('a cpuset that is not a list, even one as long as the vCPUs', () => {
    const pool = poolOf('first-fit');
    expect(pool.restore('a', g('shared', [], { cpuset: '123' as unknown as number[], vcpus: 3 }))).toEqual({
      ok: false,
      error: { code: 'invalid_request', message: 'grant.cpuset must list one core per vCPU', details: { field: 'grant.cpuset', vcpus: 3 } },
    });
  });
});

describe('a journaled resize reshape refuses', () => {
  it('a grant naming a core the host does not have', () => {
    const pool = poolOf('first-fit');
    unwrap(pool.restore('a', g('shared', [1, 2])));
    expect(pool.reshape('a', g('shared', [1, 99]))).toEqual({
      ok: false,
      error: {
        code: 'invalid_request',
        message: 'grant.cpuset names core 99, which is not on this host',
        details: { field: 'grant.cpuset', core: 99 },
      },
    });
  });

  it('idle siblings added to an exclusive grant that had none', () => {
    const pool = poolOf('first-fit');
    expect(grant(pool, exclusive(2), 'x').cpuset).toEqual([1, 2]);
    expect(pool.reshape('x', g('exclusive', [1, 2, 3], { idleSiblings: [19] }))).toEqual({
      ok: false,
      error: {
        code: 'conflict',
        message: 'allocation x holds idle siblings; its cores are not resized in place',
        details: { allocationId: 'x' },
      },
    });
    expect(pool.usage().exclusiveCores).toBe(2);
  });
});

describe('the pool configuration', () => {
  it('names every problem of an invalid configuration when constructed', () => {
    expect(() => poolOf('first-fit', { systemReserve: 32, overcommitRatio: 0 })).toThrow(/^invalid CPU pool config: \S+: .+; \S+: .+/);
  });

  it('accepts another change after a forced reserve of a held core: the core is the host’s already', () => {
    const pool = poolOf('first-fit');
    expect(grant(pool, shared(1), 'a').cpuset).toEqual([1]);
    unwrap(pool.reconfigure({ reservedCores: [0, 1, 16] }, true));
    expect(pool.reconfigure({ overcommitRatio: 3 })).toMatchObject({ ok: true, value: { overcommitRatio: 3, systemReserve: 3 } });
  });
});

describe('NUMA nodes a request may use', () => {
  /** One NUMA node, numbered 3, of four cores. */
  const oneNode: HostTopology = { cores: [0, 1, 2, 3].map((id) => ({ id, core: id, numa: 3, socket: 0 })), source: 'config' };

  it('on a host of one node, refuses a required request whose nodes do not include it, and grants one whose nodes do', () => {
    const pool = new CpuPool({ topology: oneNode, reservedCores: [], systemReserve: 0, overcommitRatio: 1, policy: 'first-fit' });
    const r = pool.take('a', { ...shared(1, 'require'), numaNodes: [1, 2] });
    expect(r).toMatchObject({
      ok: false,
      error: {
        code: 'insufficient_capacity',
        message: 'its one NUMA node 3 is not among the nodes it may use (1, 2)',
        details: { numa: 'require', numaNodes: [1, 2], requestedVcpus: 1 },
      },
    });
    expect(unwrap(pool.take('b', { ...shared(1, 'require'), numaNodes: [3] }))).toMatchObject({ cpuset: [0], numaNodes: [3] });
  });

  it('bounds only a required request: a preferred one may use any node', () => {
    const pool = poolOf('first-fit');
    expect(unwrap(pool.take('p', { ...shared(1, 'prefer'), numaNodes: [1] })).cpuset).toEqual([1]);
    expect(unwrap(pool.take('r', { ...shared(1, 'require'), numaNodes: [1] })).cpuset).toEqual([8]);
  });

  it('does not bound a later growth by the nodes an earlier take was limited to', () => {
    const pool = poolOf('first-fit');
    expect(grant(pool, shared(1), 'a').cpuset).toEqual([1]);
    expect(unwrap(pool.take('b', { ...shared(1, 'require'), numaNodes: [1] })).cpuset).toEqual([8]);
    expect(unwrap(pool.resize('a', 2, 'any')).cpuset).toEqual([1, 2]);
  });

  it('lists only the nodes a grant spans, in order, whatever larger grant was chosen before', () => {
    const four = topologyFixture({ sockets: 2, numaPerSocket: 2, coresPerNuma: 2, threadsPerCore: 1 });
    const pool = new CpuPool({ topology: four, reservedCores: [], systemReserve: 0, overcommitRatio: 1, policy: 'first-fit' });
    expect(unwrap(pool.take('a', shared(3)))).toMatchObject({ cpuset: [0, 1, 2], numaNodes: [0, 1] });
    pool.free('a');
    expect(grant(pool, exclusive(1), 'x').cpuset).toEqual([0]);
    expect(unwrap(pool.take('big', shared(7)))).toMatchObject({ cpuset: [1, 2, 3, 4, 5, 6, 7], numaNodes: [0, 1, 2, 3] });
    pool.free('big');
    expect(unwrap(pool.take('b', shared(3)))).toMatchObject({ cpuset: [1, 2, 3], numaNodes: [0, 1] });
  });
});

describe('a growth', () => {
  it('stays on its node when it prefers locality, and takes the first cores anywhere when it asks none', () => {
    const pool = poolOf('first-fit');
    expect(unwrap(pool.take('a', { ...shared(1, 'require'), numaNodes: [1] })).cpuset).toEqual([8]);
    expect(unwrap(pool.resize('a', 2, 'prefer'))).toMatchObject({ cpuset: [8, 9], numaNodes: [1], numaFallback: false });
    expect(unwrap(pool.take('b', { ...shared(1, 'require'), numaNodes: [1] })).cpuset).toEqual([8]);
    expect(unwrap(pool.resize('b', 2, 'any'))).toMatchObject({ cpuset: [1, 8], numaNodes: [0, 1], numaFallback: true });
  });

  it('lists the nodes of a grant grown onto a lower node in order, and marks it as fallen back', () => {
    const pool = tinyPool();
    expect(unwrap(pool.take('a', { ...shared(1, 'require'), numaNodes: [1] })).cpuset).toEqual([1]);
    expect(grant(pool, exclusive(1), 'x').cpuset).toEqual([0]);
    expect(unwrap(pool.resize('a', 2, 'any'))).toStrictEqual({
      mode: 'shared',
      vcpus: 2,
      cpuset: [1, 2],
      numaNodes: [0, 1],
      numaFallback: true,
      policy: 'first-fit',
    });
  });

  it('of a grant that already spans nodes is not a fallback, and is refused when it requires one node', () => {
    const pool = tinyPool();
    expect(unwrap(pool.take('a', shared(2)))).toMatchObject({ cpuset: [0, 1], numaNodes: [0, 1], numaFallback: false });
    expect(pool.resize('a', 3, 'require')).toMatchObject({
      ok: false,
      error: { code: 'insufficient_capacity', message: 'node 0,1 has too few shared cores for 1 more (NUMA require)' },
    });
    expect(unwrap(pool.resize('a', 3, 'any'))).toMatchObject({ cpuset: [0, 1, 2], numaNodes: [0, 1], numaFallback: false });

    const other = tinyPool();
    expect(unwrap(other.take('x', exclusive(2)))).toMatchObject({ cpuset: [0, 1], numaNodes: [0, 1] });
    expect(other.resize('x', 3, 'require')).toMatchObject({
      ok: false,
      error: { code: 'insufficient_capacity', message: 'node 0,1 has too few idle cores for 1 more (NUMA require)' },
    });
  });

  it('keeps the thread policy of an exclusive grant, and gives none to a grant that had none', () => {
    const pool = poolOf('first-fit');
    expect(unwrap(pool.take('p', { ...exclusive(2), threadPolicy: 'prefer' })).threadPolicy).toBe('prefer');
    expect(unwrap(pool.resize('p', 3, 'any'))).toMatchObject({ vcpus: 3, threadPolicy: 'prefer' });
    expect(grant(pool, shared(1), 's').cpuset).toEqual([3]);
    expect(unwrap(pool.resize('s', 2, 'any'))).toStrictEqual({
      mode: 'shared',
      vcpus: 2,
      cpuset: [3, 4],
      numaNodes: [0],
      numaFallback: false,
      policy: 'first-fit',
    });
  });
});

describe('a shrink', () => {
  it('gives the dropped core back idle: an exclusive request can take it', () => {
    const pool = tinyPool();
    expect(grant(pool, shared(2), 'a').cpuset).toEqual([0, 1]);
    expect(unwrap(pool.resize('a', 1, 'any')).cpuset).toEqual([0]);
    expect(unwrap(pool.take('x', exclusive(3))).cpuset).toEqual([1, 2, 3]);
  });
});

describe('the per-node figures of usage', () => {
  it('count each node’s reserved, exclusive and shared cores, and as idle only shared cores with no vCPU on them', () => {
    const pool = poolOf('first-fit');
    expect(grant(pool, exclusive(2), 'x').cpuset).toEqual([1, 2]);
    expect(grant(pool, shared(2), 's').cpuset).toEqual([3, 4]);
    expect(unwrap(pool.take('r', { ...shared(1, 'require'), numaNodes: [1] })).cpuset).toEqual([8]);
    expect(pool.usage().numa).toEqual([
      // Whole idle physical cores: node 0's 5, 6 and 7 (0 reserved, 1 and 2 exclusive, 3 and 4 loaded); node 1 but 8.
      { node: 0, reservedCores: 2, exclusiveCores: 2, sharedCores: 12, idleCores: 10, wholeIdleCores: 3, threadsPerCore: 2 },
      { node: 1, reservedCores: 0, exclusiveCores: 0, sharedCores: 16, idleCores: 15, wholeIdleCores: 7, threadsPerCore: 2 },
    ]);
    pool.free('x');
    expect(pool.usage().numa?.[0]).toEqual({
      node: 0,
      reservedCores: 2,
      exclusiveCores: 0,
      sharedCores: 14,
      idleCores: 12,
      wholeIdleCores: 5,
      threadsPerCore: 2,
    });
  });
});

describe('an exclusive growth under a hard limit', () => {
  it('may shrink what the limit leaves the shared pool to exactly what shared grants hold, not below', () => {
    // 30 grantable cores at ratio 2 is 60 vCPUs, limited to 40: every exclusive core costs 2 of the 40.
    const pool = poolOf('first-fit', { hardLimit: 40 });
    grant(pool, shared(10), 's');
    grant(pool, exclusive(2), 'x');
    expect(unwrap(pool.resize('x', 15, 'any')).vcpus).toBe(15);
    expect(pool.usage()).toMatchObject({ sharedVcpusCommitted: 10, sharedVcpusCapacity: 10 });
    expect(pool.resize('x', 16, 'any')).toMatchObject({
      ok: false,
      error: {
        code: 'insufficient_capacity',
        message: 'taking 1 more exclusive cores would shrink the shared pool to 8 vCPUs, below the 10 committed',
      },
    });
  });
});

describe('a reserved exclusive grant shrunk off a core the host reserved since', () => {
  it('still counts as reserved what its remaining exclusive cores cost', () => {
    const pool = poolOf('first-fit');
    expect(unwrap(pool.take('r', exclusive(3), { reservation: true })).cpuset).toEqual([1, 2, 3]);
    unwrap(pool.reconfigure({ reservedCores: [0, 16, 3] }, true));
    expect(pool.usage()).toMatchObject({ exclusiveCores: 2, reserved: 4 });
    expect(unwrap(pool.resize('r', 2, 'any')).cpuset).toEqual([1, 2]);
    expect(pool.usage()).toMatchObject({ exclusiveCores: 2, reservedCores: 3, reserved: 4 });
  });
});

describe('reserved cores and a reserve that disagree', () => {
  it('are refused, naming the reserve', () => {
    const pool = poolOf('first-fit');
    const r = pool.reconfigure({ reservedCores: [0, 16], systemReserve: 3 });
    expect(r).toMatchObject({
      ok: false,
      error: { code: 'invalid_request', details: { field: 'systemReserve' } },
    });
    expect(!r.ok && r.error.message).toContain('systemReserve: says 3 cores but reservedCores lists 2');
  });
});

describe('a reserved exclusive grant some of whose cores the host reserved since', () => {
  it('counts as reserved only what its cores still exclusive cost, with shared grants beside it', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(10), 's');
    expect(unwrap(pool.take('r', exclusive(2), { reservation: true })).cpuset).toEqual([11, 12]);
    unwrap(pool.reconfigure({ reservedCores: [0, 16, 12] }, true));
    expect(pool.usage()).toMatchObject({ committed: 12, exclusiveCores: 1, reserved: 2 });
  });

  it('counts an isolated grant’s sibling the host reserved since as no longer its own', () => {
    const pool = poolOf('first-fit');
    grant(pool, shared(10), 's');
    expect(unwrap(pool.take('iso', { ...exclusive(1), threadPolicy: 'isolate' }, { reservation: true }))).toMatchObject({
      cpuset: [11],
      idleSiblings: [27],
    });
    unwrap(pool.reconfigure({ reservedCores: [0, 16, 27] }, true));
    expect(pool.usage()).toMatchObject({ committed: 12, exclusiveCores: 1, reserved: 2 });
  });
});

describe('the round-robin cursor after a growth', () => {
  it('moves past the first core too, when the growth ends on it', () => {
    const pool = new CpuPool({ topology: tiny, reservedCores: [], systemReserve: 0, overcommitRatio: 2, policy: 'round-robin' });
    expect(grant(pool, shared(1), 'x').cpuset).toEqual([0]);
    expect(grant(pool, shared(3), 'y').cpuset).toEqual([1, 2, 3]);
    pool.free('x');
    // The cursor wrapped to core 0: the growth takes it, and the next take starts after it.
    expect(unwrap(pool.resize('y', 4, 'any')).cpuset).toEqual([0, 1, 2, 3]);
    expect(grant(pool, shared(1), 'z').cpuset).toEqual([1]);
  });
});

describe('a restored isolated grant', () => {
  it('is the same grant again whatever order its idle siblings were ledgered in, and another with one sibling more', () => {
    const pool = poolOf('first-fit');
    const iso = g('exclusive', [1, 2], { threadPolicy: 'isolate', idleSiblings: [18, 17] });
    unwrap(pool.restore('iso', iso));
    expect(pool.restore('iso', iso)).toEqual({ ok: true, value: undefined });
    const one = g('exclusive', [3], { threadPolicy: 'isolate', idleSiblings: [19] });
    unwrap(pool.restore('one', one));
    expect(pool.restore('one', { ...one, idleSiblings: [19, 20] })).toMatchObject({ ok: false, error: { code: 'conflict' } });
  });
});

describe('threadPolicy require on a host whose cores differ in threads', () => {
  it('says the vCPUs are not a whole number of its cores when no set of whole cores adds up to them', () => {
    // Physical core 0 has two threads (0, 1), core 1 three (2, 3, 4).
    const mixed: HostTopology = {
      cores: [0, 0, 1, 1, 1].map((core, id) => ({ id, core, numa: 0, socket: 0 })),
      source: 'config',
    };
    const pool = new CpuPool({ topology: mixed, reservedCores: [], systemReserve: 0, overcommitRatio: 1, policy: 'first-fit' });
    expect(pool.take('a', { ...exclusive(4), threadPolicy: 'require' })).toMatchObject({
      ok: false,
      error: {
        code: 'insufficient_capacity',
        message: 'threadPolicy require takes whole physical cores: 4 vCPUs are not a whole number of its-thread cores',
        details: { threadPolicy: 'require', threadsPerCore: 0 },
      },
    });
    expect(unwrap(pool.take('b', { ...exclusive(5), threadPolicy: 'require' })).cpuset).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('the threads per core of a node in usage', () => {
  it('are the node’s thread count when all its cores agree, even with one core, and 0 when they differ', () => {
    expect(
      tinyPool()
        .usage()
        .numa?.map((n) => [n.node, n.threadsPerCore, n.wholeIdleCores]),
    ).toEqual([
      [0, 2, 1],
      [1, 2, 1],
    ]);
    // Physical cores 0 and 2 have two threads, core 1 one.
    const mixed: HostTopology = {
      cores: [0, 0, 1, 2, 2].map((core, id) => ({ id, core, numa: 0, socket: 0 })),
      source: 'config',
    };
    const pool = new CpuPool({ topology: mixed, reservedCores: [], systemReserve: 0, overcommitRatio: 1, policy: 'first-fit' });
    expect(pool.usage().numa?.map((n) => n.threadsPerCore)).toEqual([0]);
  });
});
