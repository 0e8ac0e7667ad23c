import { unwrap, type Allocation, type AllocationRequestInput, type MemoryUsage, type NodeMemory } from '@allot/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import type { HostManager } from '../host/host-manager.ts';
import { MemoryJournal } from '../host/records.ts';
import { FakeClock } from '../testing/fake-clock.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 2, threadsPerCore: 1 });

/** Two nodes of 4 GiB; node 0 has 64 2-MiB pages (128 MiB), node 1 has 32 2-MiB pages and one 1-GiB page. */
const NODES: NodeMemory[] = [
  { node: 0, totalMiB: 4096, hugepages: [{ sizeKiB: 2048, total: 64, free: 64 }] },
  {
    node: 1,
    totalMiB: 4096,
    hugepages: [
      { sizeKiB: 2048, total: 32, free: 32 },
      { sizeKiB: 1048576, total: 1, free: 1 },
    ],
  },
];
/** Regular memory per node: 4096 - 128 on node 0, 4096 - 64 - 1024 on node 1. */
const NODE0_MIB = 3968;
const NODE1_MIB = 3008;

function build(journal = new MemoryJournal(), clock = new FakeClock(), capacity = NODE0_MIB + NODE1_MIB): HostManager {
  const factory = new ManagerFactory({ topology, nodeMemory: NODES, clock });
  return unwrap(factory.host('n1').memory({ capacity }).cpu({ overcommitRatio: 4 }).journal(journal).build());
}

function request(id: string, memoryMiB: number, memory?: AllocationRequestInput['memory']): AllocationRequestInput {
  return { requestId: id, tenantId: 't', resources: { memoryMiB, vcpus: 1 }, ...(memory === undefined ? {} : { memory }) };
}

async function numaOf(h: HostManager): Promise<NonNullable<MemoryUsage['numa']>> {
  const memory = unwrap(await h.getUsage()).find((u) => u.resourceType === 'memory') as MemoryUsage;
  return memory.numa ?? [];
}

describe('memory pinned to a NUMA node', () => {
  it('is refused when its node lacks the memory, even though the host as a whole has it, naming the node and its figures', async () => {
    const h = build();
    unwrap(await h.allocate(request('a', 3000, { numaNode: 1 })));
    const refused = await h.allocate(request('b', 1000, { numaNode: 1 }));
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.error.code).toBe('insufficient_capacity');
    expect(refused.error.message).toContain('NUMA node 1 has 8 MiB free of 3008 MiB, requested 1000 MiB');
    expect(refused.error.details).toMatchObject({ numaNode: 1, requested: 1000, free: 8, effectiveCapacity: 3008 });
    // The same memory fits on node 0, and unpinned.
    expect((await h.allocate(request('c', 1000, { numaNode: 0 }))).ok).toBe(true);
    expect((await h.allocate(request('d', 1000))).ok).toBe(true);
  });

  it('records its node on the allocation, and a node the host does not have is refused by name', async () => {
    const h = build();
    const a = unwrap(await h.allocate(request('a', 512, { numaNode: 0 })));
    expect(a.memory).toEqual({ numaNode: 0 });
    const unpinned = unwrap(await h.allocate(request('b', 512)));
    expect(unpinned.memory).toBeUndefined();
    const refused = await h.allocate(request('c', 512, { numaNode: 7 }));
    expect(refused.ok ? 'allocated' : refused.error.message).toContain('NUMA node 7 does not exist on this host (its nodes: 0, 1)');
  });

  it('also needs room host-wide: floating memory leaves a node less than its own room', async () => {
    const h = build();
    unwrap(await h.allocate(request('float', 6000)));
    // Node 0 has 3968 MiB of its own, but only 976 MiB are free on the host.
    expect((await numaOf(h)).map((n) => n.freeMiB)).toEqual([976, 976]);
    const refused = await h.allocate(request('p', 1000, { numaNode: 0 }));
    expect(refused.ok ? 'allocated' : refused.error.details).toMatchObject({ numaNode: 0, free: 976 });
  });

  it('grows in place only while its node has room; a refused growth changes nothing', async () => {
    const h = build();
    const a = unwrap(await h.allocate(request('a', 2000, { numaNode: 1 })));
    const refused = await h.resize({ requestId: 'z1', allocationId: a.id, resources: { memoryMiB: 3500, vcpus: 1 } });
    expect(refused.ok ? 'resized' : refused.error.message).toContain('NUMA node 1 has 1008 MiB free of 3008 MiB, a growth of 1500 MiB');
    expect((await numaOf(h))[1]?.pinnedMiB).toBe(2000);
    const grown = unwrap(await h.resize({ requestId: 'z2', allocationId: a.id, resources: { memoryMiB: 3000, vcpus: 1 } }));
    expect(grown.memory).toEqual({ numaNode: 1 });
    expect((await numaOf(h))[1]?.pinnedMiB).toBe(3000);
  });
});

describe('memory bound to the NUMA node of its cores', () => {
  it('follows cores that must be on one node, and is refused when no node has the memory', async () => {
    const h = build();
    const first = unwrap(
      await h.allocate({
        ...request('a', 3000, { hugepages: { pageSizeMiB: 2, count: 4 } }),
        resources: { memoryMiB: 3000, vcpus: 2 },
        cpu: { exclusive: true, numa: 'require' },
      }),
    );
    const node = first.cpu?.numaNodes[0];
    expect(first.cpu?.numaNodes).toHaveLength(1);
    expect(first.memory).toEqual({ numaNode: node, hugepages: { pageSizeMiB: 2, count: 4, numaNode: node } });
    const cpuBefore = unwrap(await h.getUsage()).find((u) => u.resourceType === 'cpu')?.committed;
    // The other node's cores are free, but it has 3008 MiB (and this one 968): refused, and nothing of the take is
    // left behind.
    const refused = await h.allocate({
      ...request('b', 3500),
      resources: { memoryMiB: 3500, vcpus: 2 },
      cpu: { exclusive: true, numa: 'require' },
    });
    expect(refused.ok ? 'allocated' : refused.error.message).toBe(
      'memory: no NUMA node has 3500 MiB free for a request bound to one NUMA node (the most on one node: 3008 MiB)',
    );
    expect(unwrap(await h.getUsage()).find((u) => u.resourceType === 'cpu')?.committed).toBe(cpuBefore);
    expect((await numaOf(h)).map((n) => n.pinnedMiB).sort()).toEqual([0, 3000]);
    // Cores that may span nodes leave the memory floating.
    expect(unwrap(await h.allocate({ ...request('c', 100), cpu: { exclusive: false, numa: 'prefer' } })).memory).toBeUndefined();
  });
});

describe('hugepages', () => {
  it('are taken from the named node, given back on release, and refused per page size with the kube name', async () => {
    const h = build();
    const a = unwrap(await h.allocate(request('a', 256, { numaNode: 1, hugepages: { pageSizeMiB: 1024, count: 1 } })));
    expect(a.memory).toEqual({ numaNode: 1, hugepages: { pageSizeMiB: 1024, count: 1, numaNode: 1 } });
    expect((await numaOf(h))[1]?.hugepages).toEqual([
      { pageSizeMiB: 2, total: 32, used: 0, free: 32 },
      { pageSizeMiB: 1024, total: 1, used: 1, free: 0 },
    ]);
    const refused = await h.allocate(request('b', 0, { hugepages: { pageSizeMiB: 1024, count: 1 } }));
    expect(refused.ok ? 'allocated' : refused.error.message).toBe('hugepages-1Gi: no NUMA node has 1 free pages (the most on one node: 0)');
    unwrap(await h.release({ requestId: 'rel-a', allocationId: a.id }));
    expect((await numaOf(h))[1]?.hugepages[1]).toEqual({ pageSizeMiB: 1024, total: 1, used: 0, free: 1 });
    expect((await h.allocate(request('b', 0, { hugepages: { pageSizeMiB: 1024, count: 1 } }))).ok).toBe(true);
  });

  it('of an unpinned request come from the lowest node that has enough, recorded on the allocation', async () => {
    const h = build();
    const a = unwrap(await h.allocate(request('a', 100, { hugepages: { pageSizeMiB: 2, count: 40 } })));
    expect(a.memory).toEqual({ hugepages: { pageSizeMiB: 2, count: 40, numaNode: 0 } });
    const b = unwrap(await h.allocate(request('b', 100, { hugepages: { pageSizeMiB: 2, count: 30 } })));
    expect(b.memory?.hugepages?.numaNode).toBe(1); // node 0 has 24 left
    const pinned = await h.allocate(request('c', 100, { numaNode: 1, hugepages: { pageSizeMiB: 2, count: 3 } }));
    expect(pinned.ok ? 'allocated' : pinned.error.message).toBe('hugepages-2Mi: NUMA node 1 has 2 free of 32 pages, requested 3');
    // Hugepages are not regular memory: the MiB figures did not move.
    expect((await numaOf(h)).map((n) => n.pinnedMiB)).toEqual([0, 0]);
  });

  it('are restored exactly after a restart, from a snapshot and from the records alone', async () => {
    const journal = new MemoryJournal();
    const clock = new FakeClock();
    const h = build(journal, clock);
    unwrap(await h.allocate(request('a', 100, { hugepages: { pageSizeMiB: 2, count: 40 } })));
    const b = unwrap(await h.allocate(request('b', 700, { numaNode: 1, hugepages: { pageSizeMiB: 2, count: 30 } })));
    unwrap(await h.reserve({ ...request('c', 300, { numaNode: 0 }), reservation: { ttlMs: 60_000 } }));
    unwrap(await h.resize({ requestId: 'z', allocationId: b.id, resources: { memoryMiB: 900, vcpus: 1 } }));
    const before = await numaOf(h);
    const state = unwrap(await h.exportState());

    const fromSnapshot = build(new MemoryJournal(), clock);
    unwrap(await fromSnapshot.restore(state, []));
    expect(await numaOf(fromSnapshot)).toEqual(before);
    const fromRecords = build(new MemoryJournal(), clock);
    unwrap(await fromRecords.restore(undefined, journal.records));
    expect(await numaOf(fromRecords)).toEqual(before);
    expect(before.map((n) => [n.pinnedMiB, n.hugepages[0]?.used])).toEqual([
      [300, 40],
      [900, 30],
    ]);
  });
});

describe('preemption with NUMA memory', () => {
  it('frees a pinned victim on its node for a pinned preemptor, or changes nothing when that is not enough', async () => {
    const h = build();
    const victim = unwrap(
      await h.allocate({ ...request('v', 3000, { numaNode: 1, hugepages: { pageSizeMiB: 2, count: 32 } }), priority: 0 }),
    );
    const other = unwrap(await h.allocate({ ...request('o', 3000, { numaNode: 0 }), priority: 0 }));
    const before = await numaOf(h);
    // Releasing the node-0 allocation does not make room on node 1: refused, both grants intact.
    const failed = await h.preempt({ ...request('p', 2000, { numaNode: 1 }), priority: 50 }, [other.id]);
    expect(failed.ok ? 'preempted' : failed.error.message).toContain('NUMA node 1');
    expect(await numaOf(h)).toEqual(before);
    const done = unwrap(
      await h.preempt({ ...request('p2', 2000, { numaNode: 1, hugepages: { pageSizeMiB: 2, count: 32 } }), priority: 50 }, [victim.id]),
    );
    expect(done.allocation.memory).toEqual({ numaNode: 1, hugepages: { pageSizeMiB: 2, count: 32, numaNode: 1 } });
    expect((await numaOf(h))[1]).toMatchObject({
      pinnedMiB: 2000,
      hugepages: [
        { pageSizeMiB: 2, used: 32 },
        { pageSizeMiB: 1024, used: 0 },
      ],
    });
  });
});

const opArb = fc.oneof(
  fc.record({
    kind: fc.constant('allocate' as const),
    id: fc.integer({ min: 0, max: 15 }),
    mem: fc.integer({ min: 0, max: 2500 }),
    node: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
    huge: fc.option(fc.record({ pageSizeMiB: fc.constantFrom(2 as const, 1024 as const), count: fc.integer({ min: 1, max: 40 }) }), {
      nil: undefined,
    }),
    reserve: fc.boolean(),
    bind: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('resize' as const), pick: fc.nat(), mem: fc.integer({ min: 1, max: 3000 }), id: fc.nat(5) }),
  fc.record({
    kind: fc.constant('preempt' as const),
    id: fc.integer({ min: 0, max: 15 }),
    mem: fc.integer({ min: 1, max: 3000 }),
    node: fc.integer({ min: 0, max: 1 }),
    pick: fc.nat(),
  }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 90_000 }) }),
  fc.record({ kind: fc.constant('activate' as const), pick: fc.nat() }),
);

describe('per-node books, whatever happens', () => {
  it('never go negative or past a node, add up to the host, and replay (records or snapshot) to the same figures', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
        const clock = new FakeClock();
        const journal = new MemoryJournal();
        const h = build(journal, clock);
        const known: Allocation[] = [];
        let n = 0;
        for (const o of ops) {
          n += 1;
          if (o.kind === 'allocate') {
            if (o.mem === 0 && o.huge === undefined) continue;
            const memory = {
              ...(o.node === undefined ? {} : { numaNode: o.node }),
              ...(o.huge === undefined ? {} : { hugepages: o.huge }),
            };
            const r = {
              ...request(`r${o.id}`, o.mem, Object.keys(memory).length === 0 ? undefined : memory),
              ...(o.bind ? { cpu: { exclusive: o.id % 2 === 0, numa: 'require' as const } } : {}),
            };
            const a = o.reserve ? await h.reserve({ ...r, reservation: { ttlMs: 30_000 } }) : await h.allocate(r);
            if (a.ok) known.push(a.value);
          } else if (o.kind === 'release' && known.length > 0) {
            await h.release({ requestId: `rel${n}`, allocationId: (known[o.pick % known.length] as Allocation).id });
          } else if (o.kind === 'resize' && known.length > 0) {
            const target = known[o.pick % known.length] as Allocation;
            await h.resize({
              requestId: `z${o.id}-${n}`,
              allocationId: target.id,
              resources: { memoryMiB: target.granted.memoryMiB > 0 ? o.mem : 0, vcpus: 1 },
            });
          } else if (o.kind === 'preempt' && known.length > 0) {
            const victim = known[o.pick % known.length] as Allocation;
            const p = await h.preempt({ ...request(`p${o.id}`, o.mem, { numaNode: o.node }), priority: 50 }, [victim.id]);
            if (p.ok) known.push(p.value.allocation);
          } else if (o.kind === 'activate' && known.length > 0) {
            await h.activateReservation((known[o.pick % known.length] as Allocation).id, `act${n}`);
          } else if (o.kind === 'advance') {
            clock.advance(o.ms);
            await h.getUsage(); // a turn, so due reservations expire
          }
          const usage = unwrap(await h.getUsage());
          const memory = usage.find((u) => u.resourceType === 'memory') as MemoryUsage;
          const numa = memory.numa ?? [];
          const live = unwrap(await h.getAllocations({}));
          for (const node of numa) {
            expect(node.freeMiB).toBeGreaterThanOrEqual(0);
            expect(node.pinnedMiB).toBeLessThanOrEqual(node.capacityMiB);
            for (const pool of node.hugepages) {
              expect(pool.used).toBeLessThanOrEqual(pool.total);
              expect(pool.free).toBe(pool.total - pool.used);
            }
          }
          const holding = live.filter((a) => a.status !== 'released');
          // Per node, pinned MiB and used pages are exactly what the live allocations' grants say.
          for (const node of numa) {
            const pinned = holding.filter((a) => a.memory?.numaNode === node.node).reduce((s, a) => s + a.granted.memoryMiB, 0);
            expect(node.pinnedMiB).toBe(pinned);
            for (const pool of node.hugepages) {
              const pages = holding
                .filter((a) => a.memory?.hugepages?.numaNode === node.node && a.memory.hugepages.pageSizeMiB === pool.pageSizeMiB)
                .reduce((s, a) => s + (a.memory?.hugepages?.count ?? 0), 0);
              expect(pool.used).toBe(pages);
            }
          }
          // Pinned plus floating is the host's committed memory, never above its capacity.
          const floating = holding.filter((a) => a.memory?.numaNode === undefined).reduce((s, a) => s + a.granted.memoryMiB, 0);
          expect(numa.reduce((s, x) => s + x.pinnedMiB, 0) + floating).toBe(memory.committed);
          expect(memory.committed).toBeLessThanOrEqual(memory.effectiveCapacity);

          const replayed = build(new MemoryJournal(), clock);
          unwrap(await replayed.restore(undefined, journal.records));
          expect(await numaOf(replayed)).toEqual(numa);
          await replayed.stop();
          const fromSnapshot = build(new MemoryJournal(), clock);
          unwrap(await fromSnapshot.restore(unwrap(await h.exportState()), []));
          expect(await numaOf(fromSnapshot)).toEqual(numa);
          await fromSnapshot.stop();
        }
        await h.stop();
      }),
      { numRuns: 60 },
    );
  });
});
