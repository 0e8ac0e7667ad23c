import { AGENT_ENDPOINTS } from '@allot/protocol';
import { unwrap, UsageSnapshotSchema, type Allocation, type Result } from '@allot/core';
import { MemoryJournal, type HostManager } from '@allot/managers';
import { FakeProbe } from '@allot/managers/testing';
import { SimulatedProbe } from '@allot/probe';
import { describe, expect, it } from 'vitest';
import { AgentConfigSchema, type AgentConfigInput } from './config/index.ts';
import { agentEndpoints } from './endpoints.ts';
import { createHostManager, sampleHost } from './host.ts';
import { buildUsageSnapshot } from './usage-snapshot.ts';

const config = (extra: Partial<AgentConfigInput> = {}) => AgentConfigSchema.parse({ nodeId: 'n1', stateDir: '/nonexistent', ...extra });
const simulated = () => unwrap(SimulatedProbe.create({ cores: 8, sockets: 1, numaNodes: 1, threadsPerCore: 1, memoryMiB: 16384 }));

async function snapshotOf(host: HostManager) {
  const view = unwrap(await host.getHostView());
  const snapshot = buildUsageSnapshot(
    view,
    unwrap(await host.healthCheck()),
    { nodeId: 'n1', bootId: 'b', labels: {}, heartbeatMs: 2000, overcommit: { memory: 1, cpu: 1 } },
    Date.now(),
  );
  return UsageSnapshotSchema.parse(snapshot);
}

describe("the agent's host", () => {
  it('counts a resource configured on the agent and shows it in the usage snapshot', async () => {
    const licenses = { resourceType: 'custom:licenses', limits: { capacity: 4 } } as const;
    const host = unwrap(await createHostManager(config({ resources: [licenses] }), simulated(), new MemoryJournal()));
    const vm = (requestId: string, n: number) => ({
      requestId,
      tenantId: 't',
      resources: { memoryMiB: 1024, vcpus: 1, extra: { 'custom:licenses': n } },
    });
    unwrap(await host.allocate(vm('r1', 3)));
    const refused = await host.allocate(vm('r2', 2));
    expect(!refused.ok && refused.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { resourceType: 'custom:licenses', requested: 2, free: 1 },
    });
    const snapshot = await snapshotOf(host);
    expect(snapshot.extra).toEqual([
      expect.objectContaining({ resourceType: 'custom:licenses', committed: 3, effectiveCapacity: 4, allocationCount: 1 }),
    ]);
    expect(snapshot.memory.committed).toBe(1024);
  });

  it('sends no extra figures when the host offers only memory and CPU', async () => {
    const host = unwrap(await createHostManager(config(), simulated(), new MemoryJournal()));
    expect((await snapshotOf(host)).extra).toBeUndefined();
  });

  it('refuses a configured resource with bad limits, memory or cpu among the counted ones, or one type twice, naming the key', () => {
    const problems = (resources: unknown) => {
      const parsed = AgentConfigSchema.safeParse({ nodeId: 'n1', stateDir: '/nonexistent', resources });
      return parsed.success ? [] : parsed.error.issues.map((i) => i.path.join('.'));
    };
    expect(problems([{ resourceType: 'disk', limits: { capacity: -1 } }])).toContain('resources.0.limits.capacity');
    expect(problems([{ resourceType: 'memory', limits: { capacity: 1 } }])).toEqual(['resources.0.resourceType']);
    expect(
      problems([
        { resourceType: 'disk', limits: { capacity: 1 } },
        { resourceType: 'disk', limits: { capacity: 2 } },
      ]),
    ).toEqual(['resources']);
  });

  it('tells a simulated probe what is committed before each sample, so its used memory follows the allocations', async () => {
    const probe = simulated();
    const host = unwrap(await createHostManager(config(), probe, new MemoryJournal()));
    await sampleHost(probe, host);
    const before = probe.latest()?.memory.usedMiB ?? 0;
    unwrap(await host.allocate({ requestId: 'r1', tenantId: 't', resources: { memoryMiB: 8192, vcpus: 2 } }));
    await sampleHost(probe, host);
    expect((probe.latest()?.memory.usedMiB ?? 0) - before).toBe(6144);
  });

  it('samples a probe that reads the host without telling it anything', async () => {
    const probe = new FakeProbe({ totalMemoryMiB: 16384 });
    const host = unwrap(await createHostManager(config(), probe, new MemoryJournal()));
    unwrap(await host.allocate({ requestId: 'r1', tenantId: 't', resources: { memoryMiB: 8192, vcpus: 2 } }));
    await sampleHost(probe, host);
    expect(probe.latest()?.memory.usedMiB).toBe(0);
  });
});

describe("the agent's allocate endpoint", () => {
  it('commits a fenced request once, keeping the fence on the allocation and out of the request', async () => {
    const host = unwrap(await createHostManager(config(), simulated(), new MemoryJournal()));
    const endpoints = agentEndpoints({
      nodeId: 'n1',
      host,
      usage: () => Promise.resolve(unwrap({ ok: true, value: {} }) as never),
      hostHealth: () => Promise.reject(new Error('unused')),
      refused: () => undefined,
    });
    const allocate = endpoints.find((e) => e.name === 'allocate');
    if (allocate?.parse === undefined) throw new Error('allocate has no parser');
    const parsed = allocate.parse({ requestId: 'r1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 }, fence: 3 });
    const reply = (await allocate.handler(unwrap(parsed), {} as never)) as Result<Allocation>;
    const allocation = unwrap(reply);
    expect(allocation.fence).toBe(3);
    expect(allocation.request).not.toHaveProperty('fence');
    expect(AGENT_ENDPOINTS.allocate.reply.safeParse(allocation).success).toBe(true);
  });
});

describe("the agent's host with NUMA nodes and hugepages", () => {
  const topology = {
    cores: [0, 1, 2, 3].map((id) => ({ id, core: id, numa: id < 2 ? 0 : 1, socket: 0 })),
    source: 'probe' as const,
  };
  const probe = () =>
    new FakeProbe({
      topology,
      totalMemoryMiB: 16_384,
      nodeMemory: [
        { node: 0, totalMiB: 8192, hugepages: [{ sizeKiB: 2048, total: 512, free: 512 }] },
        { node: 1, totalMiB: 8192, hugepages: [] },
      ],
    });

  it('leaves the hugepage pools out of the memory capacity and publishes per-node memory and hugepages', async () => {
    const host = unwrap(await createHostManager(config(), probe(), new MemoryJournal()));
    const snapshot = await snapshotOf(host);
    expect(snapshot.memory.capacity).toBe(16_384 - 1024);
    expect(snapshot.memory.numa).toEqual([
      { node: 0, capacityMiB: 7168, pinnedMiB: 0, freeMiB: 7168, hugepages: [{ pageSizeMiB: 2, total: 512, used: 0, free: 512 }] },
      { node: 1, capacityMiB: 8192, pinnedMiB: 0, freeMiB: 8192, hugepages: [] },
    ]);
  });

  it('refuses a configured memory capacity that would count the hugepages as memory', async () => {
    const refused = await createHostManager(config({ memory: { capacityMiB: 16_000 } }), probe(), new MemoryJournal());
    expect(refused.ok ? 'built' : refused.error.message).toContain("16000 MiB is more than the host's 15360 MiB");
  });
});
