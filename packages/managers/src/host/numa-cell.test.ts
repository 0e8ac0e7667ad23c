import {
  unwrap,
  type Allocation,
  type AllocationRequestInput,
  type CpuPolicy,
  type CpuUsage,
  type MemoryUsage,
  type NodeMemory,
} from '@allot/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal } from './records.ts';
import { FakeClock } from '../testing/fake-clock.ts';

/** Two NUMA nodes of two cores (cores 0-1 on node 0, 2-3 on node 1), one thread each. */
const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 2, threadsPerCore: 1 });

/** Node 0: 4 GiB with 64 2-MiB pages; node 1: 4 GiB with 32 2-MiB pages and one 1-GiB page. */
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

function build(journal = new MemoryJournal(), clock = new FakeClock(), policy: CpuPolicy = 'first-fit'): HostManager {
  const factory = new ManagerFactory({ topology, nodeMemory: NODES, clock });
  return unwrap(
    factory
      .host('n1')
      .memory({ capacity: NODE0_MIB + NODE1_MIB })
      .cpu({ overcommitRatio: 4 }, { policy })
      .journal(journal)
      .build(),
  );
}

/** Memory pinned to a node, no cores: fills a node's memory without touching its cores. */
function filler(id: string, memoryMiB: number, node: number): AllocationRequestInput {
  return { requestId: id, tenantId: 't', resources: { memoryMiB, vcpus: 0 }, memory: { numaNode: node } };
}

/** A VM whose cores must be on one NUMA node and that names none for its memory. */
function bound(id: string, memoryMiB: number, vcpus: number, memory?: AllocationRequestInput['memory']): AllocationRequestInput {
  return {
    requestId: id,
    tenantId: 't',
    resources: { memoryMiB, vcpus },
    cpu: { exclusive: true, numa: 'require' },
    ...(memory === undefined ? {} : { memory }),
  };
}

async function usageOf(h: HostManager): Promise<{ memory: MemoryUsage; cpu: CpuUsage }> {
  const usage = unwrap(await h.getUsage());
  return {
    memory: usage.find((u) => u.resourceType === 'memory') as MemoryUsage,
    cpu: usage.find((u) => u.resourceType === 'cpu') as CpuUsage,
  };
}

/** The refusal's message, or 'allocated'. */
async function outcome(h: HostManager, r: AllocationRequestInput): Promise<string> {
  const a = await h.allocate(r);
  return a.ok ? 'allocated' : a.error.message;
}

describe('a request bound to one NUMA node gets its cores, memory and hugepages from one node where all fit', () => {
  it("takes node 1 when node 0's cores are free but its memory is not", async () => {
    const h = build();
    unwrap(await h.allocate(filler('fill', 3500, 0)));
    // first-fit alone would put both cores on node 0, where 468 MiB are left.
    const vm = unwrap(await h.allocate(bound('vm', 1000, 2)));
    expect(vm.cpu?.cpuset).toEqual([2, 3]);
    expect(vm.cpu?.numaNodes).toEqual([1]);
    expect(vm.memory).toEqual({ numaNode: 1 });
    expect((await usageOf(h)).memory.numa?.map((n) => n.pinnedMiB)).toEqual([3500, 1000]);
  });

  it('takes the node that has its hugepages, with its cores and memory', async () => {
    const h = build();
    // Only node 1 has a 1-GiB page.
    const vm = unwrap(await h.allocate(bound('vm', 512, 1, { hugepages: { pageSizeMiB: 1024, count: 1 } })));
    expect(vm.cpu?.numaNodes).toEqual([1]);
    expect(vm.memory).toEqual({ numaNode: 1, hugepages: { pageSizeMiB: 1024, count: 1, numaNode: 1 } });
  });

  it("keeps the core policy's own node when the memory fits there (first-fit: the lowest; best-fit: the tightest)", async () => {
    const first = build();
    expect(unwrap(await first.allocate(bound('vm', 1000, 1))).memory).toEqual({ numaNode: 0 });
    const best = build(new MemoryJournal(), new FakeClock(), 'best-fit');
    unwrap(await best.allocate(bound('one', 100, 1)));
    unwrap(await best.allocate(filler('fill', 3000, 1)));
    // Node 0 has one idle core left, the tightest; node 1 has two. The memory fits on both.
    const vm = unwrap(await best.allocate(bound('vm', 100, 1)));
    expect([vm.cpu?.numaNodes, vm.memory]).toEqual([[0], { numaNode: 0 }]);
  });

  it('is refused naming where each part fits when the memory fits on one node and the cores on the other; nothing stays taken', async () => {
    const h = build();
    unwrap(await h.allocate(filler('fill', 3500, 0)));
    unwrap(await h.allocate(bound('vm1', 1000, 2))); // node 1's cores, as above
    const before = await usageOf(h);
    // Node 0: 2 idle cores, 468 MiB; node 1: no idle core, 2008 MiB.
    const r = bound('vm2', 1000, 2);
    const message = 'no NUMA node has room for all of it: its memory fits on node 1, its 2 exclusive cores on node 0';
    const check = unwrap(await h.checkAvailability(r));
    expect([check.fits, check.reason?.message]).toEqual([false, message]);
    const refused = await h.allocate(r);
    expect(refused.ok ? 'allocated' : [refused.error.code, refused.error.message, refused.error.details]).toEqual([
      'insufficient_capacity',
      message,
      expect.objectContaining({ reason: 'numa_cell', memoryNodes: [1], coreNodes: [0], boundToCores: true }),
    ]);
    expect(await usageOf(h)).toEqual(before);
    // What fits on node 0 alone is granted there.
    expect(unwrap(await h.allocate(bound('vm3', 400, 2))).memory).toEqual({ numaNode: 0 });
  });

  it('is refused with the memory figures when no node has the memory, and with the CPU figures when no node has the cores', async () => {
    const h = build();
    unwrap(await h.allocate(filler('fill', 3500, 0)));
    const noMemory = bound('big', 3100, 1);
    const message = 'memory: no NUMA node has 3100 MiB free for a request bound to one NUMA node (the most on one node: 3008 MiB)';
    expect(unwrap(await h.checkAvailability(noMemory)).reason?.message).toBe(message);
    expect(await outcome(h, noMemory)).toBe(message);
    unwrap(await h.allocate(bound('a', 100, 2)));
    unwrap(await h.allocate(bound('b', 100, 2)));
    const noCores = bound('c', 10, 1);
    expect(await outcome(h, noCores)).toBe('1 exclusive cores requested, 0 idle cores in the shared pool');
    expect(unwrap(await h.checkAvailability(noCores)).reason?.message).toBe('1 exclusive cores requested, 0 idle cores in the shared pool');
  });

  it('is refused naming the nodes when the memory is free on one node and the hugepages on the other', async () => {
    const h = build();
    unwrap(await h.allocate(filler('fill', 3500, 0)));
    // 1000 MiB only on node 1; 40 2-MiB pages only on node 0 (it has 64, node 1 has 32).
    const r = bound('vm', 1000, 1, { hugepages: { pageSizeMiB: 2, count: 40 } });
    const message = 'no NUMA node has both 1000 MiB and 40 hugepages-2Mi free (the memory is free on node 1, the pages on node 0)';
    expect(unwrap(await h.checkAvailability(r)).reason?.message).toBe(message);
    expect(await outcome(h, r)).toBe(message);
  });

  it('is restored exactly after a restart, from the records and from a snapshot', async () => {
    const journal = new MemoryJournal();
    const clock = new FakeClock();
    const h = build(journal, clock);
    unwrap(await h.allocate(filler('fill', 3500, 0)));
    unwrap(await h.allocate(bound('vm', 1000, 2, { hugepages: { pageSizeMiB: 2, count: 8 } })));
    unwrap(await h.reserve({ ...bound('held', 200, 1), reservation: { ttlMs: 60_000 } }));
    const allocations = unwrap(await h.getAllocations({}));
    const usage = await usageOf(h);
    expect(allocations.map((a) => [a.requestId, a.cpu?.numaNodes, a.memory])).toEqual([
      ['fill', undefined, { numaNode: 0 }],
      ['vm', [1], { numaNode: 1, hugepages: { pageSizeMiB: 2, count: 8, numaNode: 1 } }],
      ['held', [0], { numaNode: 0 }],
    ]);
    const fromRecords = build(new MemoryJournal(), clock);
    unwrap(await fromRecords.restore(undefined, journal.records));
    expect(unwrap(await fromRecords.getAllocations({}))).toEqual(allocations);
    expect(await usageOf(fromRecords)).toEqual(usage);
    const fromSnapshot = build(new MemoryJournal(), clock);
    unwrap(await fromSnapshot.restore(unwrap(await h.exportState()), []));
    expect(unwrap(await fromSnapshot.getAllocations({}))).toEqual(allocations);
    expect(await usageOf(fromSnapshot)).toEqual(usage);
  });
});

/** Per node, whether a bound request fits there now, from the usage alone (every CPU request here is exclusive). */
function nodesThatFit(usage: { memory: MemoryUsage; cpu: CpuUsage }, r: AllocationRequestInput): number[] {
  const huge = r.memory?.hugepages;
  return (usage.memory.numa ?? [])
    .filter((n) => {
      const idle = usage.cpu.cores.filter((c) => c.numa === n.node && c.role === 'shared').length;
      const pages = huge === undefined ? 0 : (n.hugepages.find((p) => p.pageSizeMiB === huge.pageSizeMiB)?.free ?? 0);
      return idle >= r.resources.vcpus && n.freeMiB >= r.resources.memoryMiB && (huge === undefined || pages >= huge.count);
    })
    .map((n) => n.node);
}

const hugeArb = fc.option(fc.record({ pageSizeMiB: fc.constantFrom(2 as const, 1024 as const), count: fc.integer({ min: 1, max: 40 }) }), {
  nil: undefined,
});
const opArb = fc.oneof(
  fc.record({
    kind: fc.constant('fill' as const),
    node: fc.integer({ min: 0, max: 1 }),
    mem: fc.integer({ min: 1, max: 3000 }),
    huge: hugeArb,
  }),
  fc.record({ kind: fc.constant('float' as const), mem: fc.integer({ min: 1, max: 3000 }) }),
  fc.record({
    kind: fc.constant('bound' as const),
    mem: fc.integer({ min: 1, max: 3500 }),
    vcpus: fc.integer({ min: 1, max: 2 }),
    huge: hugeArb,
    reserve: fc.boolean(),
    isolate: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
);

describe('single-node fitting, whatever came before', () => {
  it('refuses a bound request only when no single node fits its cores, memory and hugepages; check says the same; replay restores it', async () => {
    for (const policy of ['first-fit', 'best-fit', 'round-robin'] as const) {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
          const clock = new FakeClock();
          const journal = new MemoryJournal();
          const h = build(journal, clock, policy);
          const live: Allocation[] = [];
          let n = 0;
          for (const o of ops) {
            n += 1;
            if (o.kind === 'release') {
              const victim = live.splice(o.pick % Math.max(1, live.length), 1)[0];
              if (victim !== undefined) unwrap(await h.release({ requestId: `rel${n}`, allocationId: victim.id }));
              continue;
            }
            if (o.kind !== 'bound') {
              const r: AllocationRequestInput =
                o.kind === 'fill'
                  ? {
                      ...filler(`f${n}`, o.mem, o.node),
                      memory: { numaNode: o.node, ...(o.huge === undefined ? {} : { hugepages: o.huge }) },
                    }
                  : { requestId: `f${n}`, tenantId: 't', resources: { memoryMiB: o.mem, vcpus: 0 } };
              const a = await h.allocate(r);
              if (a.ok) live.push(a.value);
              continue;
            }
            const plain = bound(`b${n}`, o.mem, o.vcpus, o.huge === undefined ? undefined : { hugepages: o.huge });
            // isolate (whole physical cores; one thread each here) goes through the whole-core selector.
            const r = o.isolate
              ? { ...plain, cpu: { exclusive: true, numa: 'require' as const, threadPolicy: 'isolate' as const } }
              : plain;
            const before = await usageOf(h);
            const fit = nodesThatFit(before, r);
            const check = unwrap(await h.checkAvailability(r));
            const a = o.reserve ? await h.reserve({ ...r, reservation: { ttlMs: 600_000 } }) : await h.allocate(r);
            expect(a.ok).toBe(fit.length > 0);
            expect(check.fits).toBe(a.ok);
            if (!a.ok) {
              expect(check.reason?.message).toBe(a.error.message);
              expect(await usageOf(h)).toEqual(before);
              continue;
            }
            live.push(a.value);
            const node = a.value.cpu?.numaNodes[0] ?? -1;
            expect(a.value.cpu?.numaNodes).toEqual([node]);
            expect(fit).toContain(node);
            expect(a.value.memory?.numaNode).toBe(node);
            if (o.huge !== undefined) expect(a.value.memory?.hugepages?.numaNode).toBe(node);
          }
          const allocations = unwrap(await h.getAllocations({}));
          const usage = await usageOf(h);
          const replayed = build(new MemoryJournal(), clock, policy);
          unwrap(await replayed.restore(undefined, journal.records));
          expect(unwrap(await replayed.getAllocations({}))).toEqual(allocations);
          expect(await usageOf(replayed)).toEqual(usage);
          const fromSnapshot = build(new MemoryJournal(), clock, policy);
          unwrap(await fromSnapshot.restore(unwrap(await h.exportState()), []));
          expect(await usageOf(fromSnapshot)).toEqual(usage);
          await Promise.all([h.stop(), replayed.stop(), fromSnapshot.stop()]);
        }),
        { numRuns: 40 },
      );
    }
  });
});
