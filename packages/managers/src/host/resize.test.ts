import { unwrap, type AllocationRequestInput, type CpuPolicy, type CpuUsage, type NumaPolicy } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { HeldJournal } from '../testing/held-journal.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal } from './records.ts';

// Two NUMA nodes of four cores: 0-3 on node 0, 4-7 on node 1.
const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });

function host(
  options: { journal?: MemoryJournal | HeldJournal; memoryMiB?: number; ratio?: number; policy?: CpuPolicy } = {},
): HostManager {
  const clock = new FakeClock();
  const journal = options.journal ?? new MemoryJournal();
  return unwrap(
    new ManagerFactory({ topology, clock })
      .host('n1')
      .memory({ capacity: options.memoryMiB ?? 16384 })
      .cpu({ overcommitRatio: options.ratio ?? 1 }, { policy: options.policy ?? 'first-fit' })
      .journal(journal)
      .build(),
  );
}

const vm = (
  requestId: string,
  memoryMiB: number,
  vcpus: number,
  cpu?: { exclusive: boolean; numa?: NumaPolicy },
  extra: Partial<AllocationRequestInput> = {},
): AllocationRequestInput => ({
  requestId,
  tenantId: 't1',
  resources: { memoryMiB, vcpus },
  ...(cpu === undefined ? {} : { cpu: { exclusive: cpu.exclusive, numa: cpu.numa ?? 'any' } }),
  ...extra,
});

const resize = (requestId: string, allocationId: string, memoryMiB: number, vcpus: number) => ({
  requestId,
  allocationId,
  resources: { memoryMiB, vcpus },
});

async function figures(h: HostManager) {
  const usage = unwrap(await h.getUsage());
  const cpu = usage.find((u) => u.resourceType === 'cpu') as CpuUsage | undefined;
  return {
    memory: usage.find((u) => u.resourceType === 'memory')?.committed,
    cpu: cpu?.committed,
    exclusiveCores: cpu === undefined ? [] : cpu.cores.filter((c) => c.role === 'exclusive').map((c) => c.id),
  };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('resize', () => {
  it('grows memory and vCPUs in place: the old cores stay, new ones are added, one resized record', async () => {
    const journal = new MemoryJournal();
    const h = host({ journal });
    const a = unwrap(await h.allocate(vm('r1', 2048, 2)));
    expect(a.cpu?.cpuset).toEqual([0, 1]);
    const grown = unwrap(await h.resize(resize('z1', a.id, 4096, 4)));
    expect(grown.id).toBe(a.id);
    expect(grown.granted).toMatchObject({ memoryMiB: 4096, vcpus: 4 });
    expect(grown.cpu?.cpuset).toEqual([0, 1, 2, 3]);
    expect(grown.request).toEqual(a.request); // the placement's request is what allocate retries compare with
    expect(await figures(h)).toMatchObject({ memory: 4096, cpu: 4 });
    expect(journal.records.map((r) => r.kind)).toEqual(['allocated', 'resized']);
    const tenants = unwrap(await h.getHostView()).tenants;
    expect(tenants.t1).toEqual({ vms: 1, memoryMiB: 4096, vcpus: 4 });
  });

  it('shrinks an exclusive allocation by returning its highest cores to the pool', async () => {
    const h = host();
    const a = unwrap(await h.allocate(vm('r1', 2048, 4, { exclusive: true })));
    expect(a.cpu?.cpuset).toEqual([0, 1, 2, 3]);
    const shrunk = unwrap(await h.resize(resize('z1', a.id, 1024, 2)));
    expect(shrunk.cpu).toMatchObject({ mode: 'exclusive', vcpus: 2, cpuset: [0, 1] });
    expect(await figures(h)).toMatchObject({ memory: 1024, exclusiveCores: [0, 1] });
    // The returned cores are idle pool cores again: another exclusive allocation can have them.
    const b = unwrap(await h.allocate(vm('r2', 1024, 2, { exclusive: true })));
    expect(b.cpu?.cpuset).toEqual([2, 3]);
  });

  it('grows an exclusive allocation that requires NUMA locality inside its own node, by the host policy', async () => {
    const h = host();
    unwrap(await h.allocate(vm('filler', 1024, 1, { exclusive: true }))); // core 0
    const a = unwrap(await h.allocate(vm('r1', 1024, 1, { exclusive: true, numa: 'require' }))); // core 1, node 0
    const grown = unwrap(await h.resize(resize('z1', a.id, 1024, 3)));
    expect(grown.cpu?.cpuset).toEqual([1, 2, 3]);
    expect(grown.cpu?.numaNodes).toEqual([0]);
    const refused = await h.resize(resize('z2', a.id, 1024, 4));
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    expect(unwrap(await h.getAllocations())[1]?.cpu?.cpuset).toEqual([1, 2, 3]);
  });

  it('refuses a growth that does not fit with the figures, and leaves memory as it was when only CPU lacks room', async () => {
    const journal = new MemoryJournal();
    const h = host({ journal, memoryMiB: 8192 });
    const a = unwrap(await h.allocate(vm('r1', 2048, 2)));
    unwrap(await h.allocate(vm('r2', 1024, 5)));
    const before = await figures(h);
    const cpuShort = await h.resize(resize('z1', a.id, 4096, 4));
    expect(!cpuShort.ok && cpuShort.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { resourceType: 'cpu', requested: 2, free: 1, from: 2, to: 4, allocationId: a.id, nodeId: 'n1' },
    });
    const memoryShort = await h.resize(resize('z2', a.id, 8192, 2));
    expect(!memoryShort.ok && memoryShort.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { resourceType: 'memory', requested: 6144, free: 5120, from: 2048, to: 8192 },
    });
    expect(await figures(h)).toEqual(before);
    expect(unwrap(await h.getAllocations()).find((x) => x.id === a.id)?.granted).toMatchObject({ memoryMiB: 2048, vcpus: 2 });
    expect(journal.records.map((r) => r.kind)).toEqual(['allocated', 'allocated']);
    // Refusals are not remembered: the same resize id is taken once there is room.
    unwrap(await h.release({ requestId: 'rel', allocationRequestId: 'r2' }));
    expect(unwrap(await h.resize(resize('z1', a.id, 4096, 4))).granted.vcpus).toBe(4);
  });

  it('answers a retried resize with what it did, once, and a different resize under the same id with conflict', async () => {
    const journal = new MemoryJournal();
    const h = host({ journal });
    const a = unwrap(await h.allocate(vm('r1', 2048, 2)));
    const first = unwrap(await h.resize(resize('z1', a.id, 4096, 3)));
    unwrap(await h.resize(resize('z2', a.id, 1024, 1)));
    const again = unwrap(await h.resize(resize('z1', a.id, 4096, 3)));
    expect(again).toEqual(first);
    expect(journal.records.filter((r) => r.kind === 'resized')).toHaveLength(2);
    expect(await figures(h)).toMatchObject({ memory: 1024, cpu: 1 });
    const other = await h.resize(resize('z1', a.id, 2048, 2));
    expect(!other.ok && other.error.code).toBe('conflict');
  });

  it('answers a retried resize only once the original record is durable', async () => {
    const journal = new HeldJournal();
    const h = host({ journal });
    const allocating = h.allocate(vm('r1', 2048, 2));
    journal.flush();
    const a = unwrap(await allocating);
    let firstDone = false;
    let retryDone = false;
    const first = h.resize(resize('z1', a.id, 4096, 3)).then((r) => ((firstDone = true), r));
    const retry = h.resize(resize('z1', a.id, 4096, 3)).then((r) => ((retryDone = true), r));
    await settle();
    expect(firstDone).toBe(false);
    expect(retryDone).toBe(false);
    journal.flush();
    expect(unwrap(await first).granted.memoryMiB).toBe(4096);
    expect(unwrap(await retry).granted.memoryMiB).toBe(4096);
  });

  it('refuses to resize a reservation or a released allocation, with a typed error', async () => {
    const h = host();
    const held = unwrap(await h.reserve(vm('res', 1024, 1, undefined, { reservation: { ttlMs: 60_000 } })));
    const reserved = await h.resize(resize('z1', held.id, 2048, 1));
    expect(!reserved.ok && reserved.error).toMatchObject({ code: 'conflict', details: { reason: 'not_active', status: 'reserved' } });
    const a = unwrap(await h.allocate(vm('r1', 1024, 1)));
    unwrap(await h.release({ requestId: 'rel', allocationId: a.id }));
    const released = await h.resize(resize('z2', a.id, 2048, 1));
    expect(!released.ok && released.error).toMatchObject({ code: 'conflict', details: { reason: 'not_active', status: 'released' } });
    const unknown = await h.resize(resize('z3', 'n1:99', 2048, 1));
    expect(!unknown.ok && unknown.error.code).toBe('not_found');
  });

  it('refuses a resize that would drop or add a resource type', async () => {
    const h = host();
    const a = unwrap(await h.allocate(vm('r1', 1024, 2)));
    const dropsCpu = await h.resize(resize('z1', a.id, 1024, 0));
    expect(!dropsCpu.ok && dropsCpu.error).toMatchObject({ code: 'invalid_request', details: { field: 'vcpus' } });
  });

  it('restores every resize after a restart, from the records alone and from a snapshot', async () => {
    const journal = new MemoryJournal();
    const h = host({ journal, policy: 'round-robin' });
    const a = unwrap(await h.allocate(vm('r1', 2048, 2)));
    const b = unwrap(await h.allocate(vm('r2', 1024, 2, { exclusive: true })));
    unwrap(await h.resize(resize('z1', a.id, 3072, 4)));
    unwrap(await h.resize(resize('z2', b.id, 1024, 3)));
    unwrap(await h.resize(resize('z3', a.id, 1024, 1)));
    const state = unwrap(await h.exportState());
    const live = await figures(h);

    const replayed = host({ policy: 'round-robin' });
    unwrap(await replayed.restore(undefined, journal.records));
    expect(unwrap(await replayed.exportState())).toEqual(state);
    expect(await figures(replayed)).toEqual(live);
    // The resize ids survive: a retry answers what was done instead of resizing again.
    expect(unwrap(await replayed.resize(resize('z1', a.id, 3072, 4))).granted.vcpus).toBe(4);
    expect(await figures(replayed)).toEqual(live);

    const fromSnapshot = host({ policy: 'round-robin' });
    unwrap(await fromSnapshot.restore(state, []));
    expect(unwrap(await fromSnapshot.exportState())).toEqual(state);
    expect(await figures(fromSnapshot)).toEqual(live);
    const other = await fromSnapshot.resize(resize('z2', b.id, 1024, 1));
    expect(!other.ok && other.error.code).toBe('conflict');
  });

  it('replays a resize of an allocation that holds a core a forced reconfigure reserved since', async () => {
    const journal = new MemoryJournal();
    const h = host({ journal });
    const a = unwrap(await h.allocate(vm('r1', 1024, 2)));
    expect(a.cpu?.cpuset).toEqual([0, 1]);
    unwrap(await h.updateLimits({ cpu: { systemReserve: 1 } }, { force: true })); // core 0 is the host's now, still held by a
    const grown = unwrap(await h.resize(resize('z1', a.id, 1024, 3)));
    expect(grown.cpu?.cpuset).toEqual([0, 1, 2]);
    const state = unwrap(await h.exportState());
    const live = await figures(h);
    const replayed = host();
    const restored = await replayed.restore(undefined, journal.records);
    expect(restored.ok ? 'restored' : restored.error.message).toBe('restored');
    expect(unwrap(await replayed.exportState())).toEqual(state);
    expect(await figures(replayed)).toEqual(live);
  });

  it('does not grow into the room a preemption holds during its grace period', async () => {
    const h = host({ memoryMiB: 4096 });
    const low = unwrap(await h.allocate(vm('low', 2048, 1)));
    const mine = unwrap(await h.allocate(vm('mine', 1024, 1)));
    unwrap(await h.preempt(vm('high', 3072, 1, undefined, { priority: 50 }), [low.id], { graceMs: 30_000 }));
    const grow = await h.resize(resize('z1', mine.id, 2048, 1));
    expect(!grow.ok && grow.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { reason: 'held_for_preemption', preemptedBy: 'high', allocationId: mine.id },
    });
    expect(unwrap(await h.getAllocations()).find((a) => a.id === mine.id)?.granted.memoryMiB).toBe(1024);
    expect(unwrap(await h.resize(resize('z2', mine.id, 512, 1))).granted.memoryMiB).toBe(512);
  });

  it('lets a cordoned host shrink an allocation but not grow one', async () => {
    const h = host();
    const a = unwrap(await h.allocate(vm('r1', 2048, 2)));
    unwrap(await h.setCordon(true, 'maintenance'));
    const grow = await h.resize(resize('z1', a.id, 4096, 2));
    expect(!grow.ok && grow.error.code).toBe('unavailable');
    expect(unwrap(await h.resize(resize('z2', a.id, 1024, 1))).granted.memoryMiB).toBe(1024);
  });
});
