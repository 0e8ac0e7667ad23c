import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Allocation, AllocationRequestInput, Result } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentRequest,
  cleanupAll,
  isLogMsg,
  startAgent,
  startLocalCluster,
  waitFor,
  startNatsServer,
  tempDir,
  type AgentHandle,
  type NatsServerHandle,
} from '../harness/index.ts';

/*
 * NUMA-local memory and hugepages through a real agent process: a simulated host of 16 GiB over 2 NUMA nodes, each
 * with 256 2-MiB pages (512 MiB) and one 1-GiB page, so each node has 8192 - 512 - 1024 = 6656 MiB of regular memory
 * and the host 13312 MiB.
 */
const HOST = { cores: 8, memoryMiB: 16_384, numaNodes: 2, hugepages2MiPerNode: 256, hugepages1GiPerNode: 1 };

let server: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
});

afterAll(async () => {
  await nc?.close();
  await cleanupAll();
});

function start(node: { nodeId: string; stateDir: string }): Promise<AgentHandle> {
  return startAgent({ natsUrl: server.url, ...node, host: HOST, memoryOvercommit: 1, cpuOvercommit: 4 });
}

function request(requestId: string, memoryMiB: number, memory: AllocationRequestInput['memory']): AllocationRequestInput {
  return { requestId, tenantId: 'tenant-a', resources: { memoryMiB, vcpus: 1 }, memory };
}

function okValue<T>(result: Result<T>, what: string): T {
  if (!result.ok) throw new Error(`${what}: ${result.error.code}: ${result.error.message}`);
  return result.value;
}

async function live(nodeId: string): Promise<Allocation[]> {
  const page = okValue(await agentRequest(nc, nodeId, 'allocations', { status: 'live', limit: 1_000 }), 'allocations');
  return page.allocations.sort((a, b) => a.id.localeCompare(b.id));
}

async function numa(nodeId: string) {
  return okValue(await agentRequest(nc, nodeId, 'usage', {}), 'usage').memory.numa;
}

describe('NUMA-local memory and hugepages on a real agent', () => {
  it('refuses a pinned request its node cannot hold though the host could, takes and gives back hugepages, and restores both after kill -9', async () => {
    const node = { nodeId: 'numa-node', stateDir: await tempDir('agent-state') };
    const agent = await start(node);

    const usage = okValue(await agentRequest(nc, node.nodeId, 'usage', {}), 'usage');
    expect(usage.memory.capacity).toBe(13_312);
    expect(usage.memory.numa?.map((n) => [n.node, n.capacityMiB, n.hugepages.map((p) => [p.pageSizeMiB, p.total])])).toEqual([
      [
        0,
        6656,
        [
          [2, 256],
          [1024, 1],
        ],
      ],
      [
        1,
        6656,
        [
          [2, 256],
          [1024, 1],
        ],
      ],
    ]);

    const big = okValue(await agentRequest(nc, node.nodeId, 'allocate', request('big', 6000, { numaNode: 1 })), 'big');
    expect(big.memory).toEqual({ numaNode: 1 });
    // 7312 MiB are free on the host, only 656 on node 1.
    const refused = await agentRequest(nc, node.nodeId, 'allocate', request('more', 1000, { numaNode: 1 }));
    expect(refused.ok ? 'granted' : refused.error).toMatchObject({
      code: 'insufficient_capacity',
      message: expect.stringContaining('NUMA node 1 has 656 MiB free of 6656 MiB, requested 1000 MiB'),
      details: { resourceType: 'memory', numaNode: 1, requested: 1000, free: 656, effectiveCapacity: 6656 },
    });
    okValue(await agentRequest(nc, node.nodeId, 'allocate', request('more-on-0', 1000, { numaNode: 0 })), 'node 0');

    const huge = okValue(
      await agentRequest(nc, node.nodeId, 'allocate', request('huge', 0, { numaNode: 1, hugepages: { pageSizeMiB: 1024, count: 1 } })),
      'huge',
    );
    expect(huge.memory).toEqual({ numaNode: 1, hugepages: { pageSizeMiB: 1024, count: 1, numaNode: 1 } });
    const floating = okValue(
      await agentRequest(nc, node.nodeId, 'allocate', request('pages', 512, { hugepages: { pageSizeMiB: 2, count: 200 } })),
      'pages',
    );
    expect(floating.memory).toEqual({ hugepages: { pageSizeMiB: 2, count: 200, numaNode: 0 } });
    const before = await numa(node.nodeId);
    expect(before?.map((n) => [n.pinnedMiB, n.hugepages.map((p) => p.used)])).toEqual([
      [1000, [200, 0]],
      [6000, [0, 1]],
    ]);

    const lives = await live(node.nodeId);
    await agent.kill();
    const restarted = await start(node);
    await restarted.waitForLine(isLogMsg('ledger recovered'));
    expect(await live(node.nodeId)).toEqual(lives);
    expect(await numa(node.nodeId)).toEqual(before);

    // The 1-GiB page of node 1 is taken: an unpinned request gets node 0's, then there is none left.
    const gib = okValue(
      await agentRequest(nc, node.nodeId, 'allocate', request('gib', 0, { hugepages: { pageSizeMiB: 1024, count: 1 } })),
      'gib',
    );
    expect(gib.memory?.hugepages?.numaNode).toBe(0);
    const none = await agentRequest(nc, node.nodeId, 'allocate', request('gib-2', 0, { hugepages: { pageSizeMiB: 1024, count: 1 } }));
    expect(none.ok ? 'granted' : none.error.message).toBe('hugepages-1Gi: no NUMA node has 1 free pages (the most on one node: 0)');
    okValue(await agentRequest(nc, node.nodeId, 'release', { requestId: 'rel-huge', allocationId: huge.id }), 'release');
    expect((await numa(node.nodeId))?.[1]?.hugepages[1]).toEqual({ pageSizeMiB: 1024, total: 1, used: 0, free: 1 });
    okValue(await agentRequest(nc, node.nodeId, 'allocate', request('gib-3', 0, { hugepages: { pageSizeMiB: 1024, count: 1 } })), 'gib-3');
    await restarted.stop();
  });
});

describe('single-NUMA-node fitting on a real agent', () => {
  it('puts a request bound to one node on the node where its cores and memory both fit, check says so first, and kill -9 restores it', async () => {
    const node = { nodeId: 'numa-cell', stateDir: await tempDir('agent-state') };
    const agent = await start(node);
    // Node 0 keeps 656 MiB of its 6656; its cores stay free (no vCPUs).
    okValue(
      await agentRequest(nc, node.nodeId, 'allocate', {
        requestId: 'fill-0',
        tenantId: 'tenant-a',
        resources: { memoryMiB: 6000, vcpus: 0 },
        memory: { numaNode: 0 },
      }),
      'fill-0',
    );
    const bound = (requestId: string, memoryMiB: number): AllocationRequestInput => ({
      requestId,
      tenantId: 'tenant-a',
      resources: { memoryMiB, vcpus: 4 },
      cpu: { exclusive: true, numa: 'require' },
      memory: { hugepages: { pageSizeMiB: 2, count: 16 } },
    });
    // first-fit alone would take node 0's four idle cores, where the memory is not.
    expect(okValue(await agentRequest(nc, node.nodeId, 'check', bound('vm-1', 2000)), 'check').fits).toBe(true);
    const vm = okValue(await agentRequest(nc, node.nodeId, 'allocate', bound('vm-1', 2000)), 'vm-1');
    expect([vm.cpu?.numaNodes, vm.memory]).toEqual([[1], { numaNode: 1, hugepages: { pageSizeMiB: 2, count: 16, numaNode: 1 } }]);

    // Now node 1 has the memory but no idle core, node 0 the cores but not the memory: check and allocate agree.
    const message = 'no NUMA node has room for all of it: its memory and hugepages fit on node 1, its 4 exclusive cores on node 0';
    const check = okValue(await agentRequest(nc, node.nodeId, 'check', bound('vm-2', 2000)), 'check');
    expect([check.fits, check.reason?.message]).toEqual([false, message]);
    const refused = await agentRequest(nc, node.nodeId, 'allocate', bound('vm-2', 2000));
    expect(refused.ok ? 'granted' : refused.error).toMatchObject({
      code: 'insufficient_capacity',
      message,
      details: { reason: 'numa_cell' },
    });

    const before = await numa(node.nodeId);
    const lives = await live(node.nodeId);
    await agent.kill();
    const restarted = await start(node);
    await restarted.waitForLine(isLogMsg('ledger recovered'));
    expect(await live(node.nodeId)).toEqual(lives);
    expect(await numa(node.nodeId)).toEqual(before);
    // What fits on node 0 alone goes there.
    const small = okValue(await agentRequest(nc, node.nodeId, 'allocate', bound('vm-3', 500)), 'vm-3');
    expect(small.memory?.numaNode).toBe(0);
    await restarted.stop();
  });
});

describe('placement through a coordinator with NUMA memory and hugepages', () => {
  it('sends hugepages and NUMA-pinned memory only where they are free, and counts the refusals kube-style', async () => {
    const cluster = await startLocalCluster({
      agents: [
        { nodeId: 'plain', simulatedHost: { cores: 8, memoryMiB: 16_384, numaNodes: 2 } },
        { nodeId: 'huge', simulatedHost: { cores: 8, memoryMiB: 16_384, numaNodes: 2, hugepages1GiPerNode: 1 } },
      ],
    });
    const place = (requestId: string, memoryMiB: number, memory: AllocationRequestInput['memory']) =>
      cluster.sched('place', { request: { requestId, tenantId: 'vm', resources: { memoryMiB, vcpus: 1 }, memory } });
    const freePagesSeen = (free: number) =>
      waitFor(
        async () => {
          const nodes = await cluster.sched('nodes', {});
          const huge = nodes.ok ? nodes.value.nodes.find((n) => n.nodeId === 'huge') : undefined;
          return huge?.snapshot.memory.numa?.reduce((sum, n) => sum + (n.hugepages[0]?.free ?? 0), 0) === free;
        },
        { timeoutMs: 15_000 },
      );

    await freePagesSeen(2);
    for (const id of ['gib-1', 'gib-2']) {
      const placed = okValue(await place(id, 256, { hugepages: { pageSizeMiB: 1024, count: 1 } }), id);
      expect(placed.nodeId).toBe('huge');
    }
    await freePagesSeen(0);
    const none = await place('gib-3', 256, { hugepages: { pageSizeMiB: 1024, count: 1 } });
    expect(none.ok ? 'placed' : none.error.message).toContain('0/2 nodes are available: 2 Insufficient hugepages-1Gi');

    // Node 1 has 8192 MiB on plain and 7168 on huge (its 1-GiB page is out): 8000 MiB fit once, on plain.
    const pinned = okValue(await place('pinned-1', 8000, { numaNode: 1 }), 'pinned-1');
    expect([pinned.nodeId, pinned.allocation.memory]).toEqual(['plain', { numaNode: 1 }]);
    await waitFor(
      async () => {
        const nodes = await cluster.sched('nodes', {});
        return nodes.ok && (nodes.value.nodes.find((n) => n.nodeId === 'plain')?.snapshot.memory.numa?.[1]?.freeMiB ?? -1) < 8000;
      },
      { timeoutMs: 15_000 },
    );
    const full = await place('pinned-2', 8000, { numaNode: 1 });
    expect(full.ok ? 'placed' : full.error.message).toContain('0/2 nodes are available: 2 Insufficient memory on NUMA node 1');
    await cluster.stop();
  }, 120_000);
});

describe('one NUMA node for cores and memory, and hugepages in the quota, through a coordinator', () => {
  it('places a request bound to one node where its cores and memory fit together, and counts hugepages against the tenant quota', async () => {
    const cluster = await startLocalCluster({
      agents: [{ nodeId: 'cells', simulatedHost: { cores: 8, memoryMiB: 16_384, numaNodes: 2, hugepages2MiPerNode: 64 } }],
    });
    const place = (requestId: string, body: Partial<AllocationRequestInput>) =>
      cluster.sched('place', { request: { requestId, tenantId: 'vm', resources: { memoryMiB: 256, vcpus: 1 }, ...body } });
    // Node 0 keeps 1064 of its 8064 MiB, its four cores free.
    okValue(await place('fill', { resources: { memoryMiB: 7000, vcpus: 0 }, memory: { numaNode: 0 } }), 'fill');
    const vm = okValue(await place('vm', { resources: { memoryMiB: 2000, vcpus: 4 }, cpu: { exclusive: true, numa: 'require' } }), 'vm');
    expect([vm.allocation.cpu?.numaNodes, vm.allocation.memory]).toEqual([[1], { numaNode: 1 }]);

    okValue(await cluster.sched('quota.set', { requestId: 'q-huge', quota: { tenantId: 'vm', maxHugepagesMiB: { '2Mi': 128 } } }), 'quota');
    okValue(await place('h1', { memory: { hugepages: { pageSizeMiB: 2, count: 64 } } }), 'h1');
    const over = await place('h2', { memory: { hugepages: { pageSizeMiB: 2, count: 1 } } });
    expect(over.ok ? 'placed' : [over.error.code, over.error.message]).toEqual([
      'quota_exceeded',
      'tenant vm: hugepages-2Mi 128 MiB + 2 MiB would exceed the limit of 128 MiB',
    ]);
    const quota = okValue(await cluster.sched('quota.get', { tenantId: 'vm' }), 'quota.get');
    expect(quota.usage.hugepagesMiB).toEqual({ '2Mi': 128 });
    okValue(await cluster.sched('release', { requestId: 'rel-h1', placementRequestId: 'h1', tenantId: 'vm' }), 'release');
    okValue(await place('h2', { memory: { hugepages: { pageSizeMiB: 2, count: 1 } } }), 'h2 after the release');
    await cluster.stop();
  }, 120_000);
});
