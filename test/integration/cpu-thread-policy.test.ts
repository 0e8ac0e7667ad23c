import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Allocation, AllocationRequestInput, Result } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentRequest,
  cleanupAll,
  isLogMsg,
  startAgent,
  startNatsServer,
  tempDir,
  type AgentHandle,
  type NatsServerHandle,
} from '../harness/index.ts';

/*
 * Thread policies through a real agent process: a simulated host of 16 logical cores, 2 threads per physical core
 * (id and id + 8 are SMT siblings), 2 NUMA nodes, cores 0 and 8 reserved, CPU overcommit 1, first-fit.
 */
const HOST = { cores: 16, memoryMiB: 65_536, threadsPerCore: 2, numaNodes: 2 };

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
  return startAgent({
    natsUrl: server.url,
    ...node,
    host: HOST,
    cpuOvercommit: 1,
    env: { ALLOT_CPU_SYSTEM_RESERVE_CORES: '2', ALLOT_CPU_POLICY: 'first-fit' },
  });
}

function request(requestId: string, vcpus: number, cpu: AllocationRequestInput['cpu']): AllocationRequestInput {
  return { requestId, tenantId: 'tenant-a', resources: { memoryMiB: 1024, vcpus }, cpu };
}

function okValue<T>(result: Result<T>, what: string): T {
  if (!result.ok) throw new Error(`${what}: ${result.error.code}: ${result.error.message}`);
  return result.value;
}

async function live(nodeId: string): Promise<Allocation[]> {
  const page = okValue(await agentRequest(nc, nodeId, 'allocations', { status: 'live', limit: 1_000 }), 'allocations');
  return page.allocations.sort((a, b) => a.id.localeCompare(b.id));
}

describe('CPU thread policies on a real agent', () => {
  it('isolates, keeps siblings together, refuses with the figures, and restores the same grants after kill -9', async () => {
    const node = { nodeId: 'smt-node', stateDir: await tempDir('agent-state') };
    const agent = await start(node);

    const isolated = okValue(
      await agentRequest(nc, node.nodeId, 'allocate', request('iso', 2, { exclusive: true, threadPolicy: 'isolate' })),
      'isolate',
    );
    expect(isolated.cpu).toMatchObject({ mode: 'exclusive', cpuset: [1, 2], idleSiblings: [9, 10], threadPolicy: 'isolate' });

    const paired = okValue(
      await agentRequest(nc, node.nodeId, 'allocate', request('pair', 2, { exclusive: true, threadPolicy: 'require', policy: 'best-fit' })),
      'require',
    );
    expect(paired.cpu?.policy).toBe('best-fit');
    const [first, second] = paired.cpu?.cpuset ?? [];
    expect(second).toBe((first ?? -1) + 8);

    const odd = await agentRequest(nc, node.nodeId, 'allocate', request('odd', 3, { exclusive: true, threadPolicy: 'require' }));
    expect(odd.ok ? 'granted' : odd.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { threadPolicy: 'require', threadsPerCore: 2, resourceType: 'cpu' },
    });

    const usage = okValue(await agentRequest(nc, node.nodeId, 'usage', {}), 'usage');
    const heldByIso = usage.cpu.cores.filter((c) => c.allocationId === isolated.id).map((c) => c.id);
    expect(heldByIso).toEqual([1, 2, 9, 10]);
    // 4 cores for the isolated VM (2 of them held idle) and 2 for the pair leave the shared pool: 14 - 6 = 8.
    expect(usage.cpu).toMatchObject({ exclusiveCores: 6, sharedCores: 8, committed: 6 });

    const before = await live(node.nodeId);
    await agent.kill();
    const restarted = await start(node);
    await restarted.waitForLine(isLogMsg('ledger recovered'));
    expect(await live(node.nodeId)).toEqual(before);
    const after = okValue(await agentRequest(nc, node.nodeId, 'usage', {}), 'usage');
    expect(after.cpu.cores.map((c) => [c.id, c.role, c.allocationId])).toEqual(usage.cpu.cores.map((c) => [c.id, c.role, c.allocationId]));

    // The held siblings stay out of everyone's reach after the restart too.
    const other = okValue(await agentRequest(nc, node.nodeId, 'allocate', request('other', 1, { exclusive: true })), 'other');
    expect([9, 10]).not.toContain(other.cpu?.cpuset[0]);
    await restarted.stop();
  });
});
