import { unwrap, type AllocationRequestInput, type MemoryUsage, type NodeMemory } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal } from './records.ts';

/*
 * A preemptor bound to one NUMA node (cores required on one node, memory following them) that waits out a grace
 * period: when the wait ends, its memory is placed on its cores' node, journaled so, and replayed there. Written against
 * the survivors of the mutation run of 2026-11-30 (docs/benchmarks.md, Mutation testing).
 */

/** Two NUMA nodes of two cores (0-1 on node 0, 2-3 on node 1), 4 GiB each, no hugepages. */
const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 2, threadsPerCore: 1 });
const NODES: NodeMemory[] = [
  { node: 0, totalMiB: 4096, hugepages: [] },
  { node: 1, totalMiB: 4096, hugepages: [] },
];

function build(journal: MemoryJournal, clock: FakeClock): HostManager {
  return unwrap(
    new ManagerFactory({ topology, nodeMemory: NODES, clock })
      .host('n1')
      .memory({ capacity: 8192 })
      .cpu({ overcommitRatio: 1 })
      .journal(journal)
      .build(),
  );
}

const bound = (requestId: string, memoryMiB: number, priority: number): AllocationRequestInput => ({
  requestId,
  tenantId: 't',
  resources: { memoryMiB, vcpus: 2 },
  cpu: { exclusive: true, numa: 'require' },
  priority,
});

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const nodeUsed = async (h: HostManager) =>
  (unwrap(await h.getUsage()).find((u) => u.resourceType === 'memory') as MemoryUsage | undefined)?.numa?.map((n) => [n.node, n.pinnedMiB]);

describe('a preemptor bound to one NUMA node', () => {
  it('gets its memory on its cores’ node when the grace period ends, and keeps it there after a replay', async () => {
    const clock = new FakeClock();
    const journal = new MemoryJournal();
    const h = build(journal, clock);
    const low = unwrap(await h.allocate(bound('low', 3000, 0)));
    unwrap(await h.allocate(bound('other', 3000, 50)));
    expect([low.memory?.numaNode, low.cpu?.numaNodes]).toEqual([0, [0]]);
    unwrap(await h.preempt(bound('high', 3500, 50), [low.id], { graceMs: 1_000 }));
    clock.advance(1_000);
    await settle();
    const high = unwrap(await h.getAllocations()).find((a) => a.requestId === 'high');
    expect(high).toMatchObject({ status: 'active', memory: { numaNode: 0 }, cpu: { numaNodes: [0] } });
    const record = journal.records.find((r) => r.kind === 'preempted');
    expect(record?.kind === 'preempted' && record.allocation.memory).toEqual({ numaNode: 0 });

    const rebuilt = build(new MemoryJournal(), clock);
    unwrap(await rebuilt.restore(undefined, journal.records));
    expect(await nodeUsed(h)).toEqual([
      [0, 3500],
      [1, 3000],
    ]);
    expect(await nodeUsed(rebuilt)).toEqual(await nodeUsed(h));
  });
});

describe('a preempt bound to one NUMA node is refused', () => {
  it('when its memory fits on no node, whatever the victims free', async () => {
    const h = build(new MemoryJournal(), new FakeClock());
    const low = unwrap(await h.allocate(bound('low', 1000, 0)));
    const r = await h.preempt(bound('high', 5000, 50), [low.id]);
    expect(r).toMatchObject({ ok: false, error: { code: 'insufficient_capacity' } });
    expect(!r.ok && r.error.message).toMatch(/^releasing n1:1 does not make room for high: .*node/);
    expect(!r.ok && r.error.message).not.toContain('the NUMA node of its cores');
  });

  it('when its memory fits on one node and its cores on another, naming both', async () => {
    const h = build(new MemoryJournal(), new FakeClock());
    unwrap(await h.allocate({ requestId: 'fill', tenantId: 't', resources: { memoryMiB: 4000, vcpus: 0 }, memory: { numaNode: 0 } }));
    const held = unwrap(await h.allocate(bound('held', 100, 50)));
    expect(held.cpu?.numaNodes).toEqual([1]);
    const low = unwrap(
      await h.allocate({ requestId: 'low', tenantId: 't', resources: { memoryMiB: 1000, vcpus: 0 }, memory: { numaNode: 1 } }),
    );
    const r = await h.preempt(bound('high', 2000, 50), [low.id]);
    expect(!r.ok && r.error).toMatchObject({
      code: 'insufficient_capacity',
      message:
        'releasing n1:3 does not make room for high: no NUMA node has room for all of it: its memory fits on node 1, its 2 exclusive cores on node 0',
      details: { reason: 'numa_cell', memoryNodes: [1], coreNodes: [0] },
    });
  });
});
