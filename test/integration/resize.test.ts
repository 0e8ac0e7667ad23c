import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Allocation } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentRequest, cleanupAll, readEvents, startLocalCluster, waitFor, type LocalCluster } from '../harness/index.ts';

/*
 * resize with real processes: a nats-server, one agent on a simulated host of 8 cores and 16 GiB (durable ledger, no
 * overcommit) and one coordinator. Through allot.sched.<tenant>.resize a VM grows and shrinks in place, the tenant's
 * quota follows, a growth past the quota is refused before the agent is asked, one the host cannot hold is refused
 * with the figures and changes nothing, and the agent's ledger keeps the new size across a kill -9.
 */
let cluster: LocalCluster;
const CLI = fileURLToPath(new URL('../../apps/cli/src/main.ts', import.meta.url));

beforeAll(async () => {
  cluster = await startLocalCluster({
    agents: [{ nodeId: 'r1', simulatedHost: { cores: 8, memoryMiB: 16_384 }, memoryOvercommit: 1, cpuOvercommit: 1 }],
    coordinatorConfig: { place: { agentTimeoutMs: 3_000 } },
  });
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

function value<T>(r: { ok: true; value: T } | { ok: false; error: { code: string; message: string } }): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}

async function usage(tenantId: string): Promise<{ memoryMiB: number; vcpus: number; vms: number }> {
  const { usage: u } = value(await cluster.sched('quota.get', { tenantId }));
  return { memoryMiB: u.memoryMiB, vcpus: u.vcpus, vms: u.vms };
}

async function onAgent(allocationId: string): Promise<Allocation | undefined> {
  const page = await agentRequest(cluster.nc, 'r1', 'allocations', { status: 'live' });
  return value(page).allocations.find((a) => a.id === allocationId);
}

const resize = (requestId: string, allocationId: string, memoryMiB: number, vcpus: number, tenantId = 'acme') =>
  cluster.sched('resize', { requestId, allocationId, tenantId, resources: { memoryMiB, vcpus } });

function allot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '-s', cluster.server.url], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

describe('resize through a coordinator, against a real agent', () => {
  let vm: Allocation;

  it('grows a VM in place: same allocation, its cores kept and more added, the quota usage follows', async () => {
    value(await cluster.sched('quota.set', { requestId: 'q-acme', quota: { tenantId: 'acme', maxMemoryMiB: 12_288, maxVcpus: 5 } }));
    vm = value(
      await cluster.sched('place', { request: { requestId: 'vm-1', tenantId: 'acme', resources: { memoryMiB: 2048, vcpus: 2 } } }),
    ).allocation;
    const grown = value(await resize('grow-1', vm.id, 4096, 4));
    expect(grown.id).toBe(vm.id);
    expect(grown.granted).toMatchObject({ memoryMiB: 4096, vcpus: 4 });
    expect(grown.cpu?.cpuset).toHaveLength(4);
    expect(grown.cpu?.cpuset).toEqual(expect.arrayContaining(vm.cpu?.cpuset ?? []));
    expect(await usage('acme')).toEqual({ memoryMiB: 4096, vcpus: 4, vms: 1 });
    expect((await onAgent(vm.id))?.granted).toMatchObject({ memoryMiB: 4096, vcpus: 4 });
    // The same resize again answers what it did, and counts nothing twice.
    expect(value(await resize('grow-1', vm.id, 4096, 4)).cpu?.cpuset).toEqual(grown.cpu?.cpuset);
    expect(await usage('acme')).toEqual({ memoryMiB: 4096, vcpus: 4, vms: 1 });
  });

  it('refuses a growth past the tenant quota with quota_exceeded, and nothing changes', async () => {
    const refused = await resize('grow-over-quota', vm.id, 4096, 6);
    expect(!refused.ok && refused.error).toMatchObject({
      code: 'quota_exceeded',
      details: { limit: 'maxVcpus', limitValue: 5, current: 4, requested: 2 },
    });
    expect(await usage('acme')).toEqual({ memoryMiB: 4096, vcpus: 4, vms: 1 });
    expect((await onAgent(vm.id))?.granted).toMatchObject({ memoryMiB: 4096, vcpus: 4 });
  });

  it('refuses a growth the host has no room for with the figures, and gives the held quota back', async () => {
    value(await cluster.sched('quota.set', { requestId: 'q-acme-2', quota: { tenantId: 'acme', maxMemoryMiB: 1_000_000, maxVcpus: 64 } }));
    const refused = await resize('grow-too-big', vm.id, 4096, 40);
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    const details = !refused.ok ? (refused.error.details ?? {}) : {};
    expect(details).toMatchObject({ resourceType: 'cpu', requested: 36, from: 4, to: 40, allocationId: vm.id, nodeId: 'r1' });
    expect(typeof details.free).toBe('number');
    // Memory fitted but CPU did not: all or nothing, so memory did not grow either.
    const memoryAndCpu = await resize('grow-both', vm.id, 8192, 40);
    expect(!memoryAndCpu.ok && memoryAndCpu.error.code).toBe('insufficient_capacity');
    expect((await onAgent(vm.id))?.granted).toMatchObject({ memoryMiB: 4096, vcpus: 4 });
    expect(await usage('acme')).toEqual({ memoryMiB: 4096, vcpus: 4, vms: 1 });
  });

  it("refuses another tenant's VM as not found, and a reservation with a typed error", async () => {
    const other = await resize('steal', vm.id, 1024, 1, 'other');
    expect(!other.ok && other.error.code).toBe('not_found');
    const held = value(
      await cluster.sched('place', {
        request: { requestId: 'res-1', tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 }, reservation: { ttlMs: 60_000 } },
      }),
    ).allocation;
    const reserved = await resize('grow-res', held.id, 2048, 1);
    expect(!reserved.ok && reserved.error).toMatchObject({ code: 'conflict', details: { reason: 'not_active' } });
    value(await cluster.sched('release', { requestId: 'res-1-rel', placementRequestId: 'res-1', tenantId: 'acme' }));
  });

  it('shrinks with the CLI: exit 0, the usage goes down, the agent publishes a resized event and the view follows', async () => {
    const r = await allot('resize', vm.id, '--tenant', 'acme', '--memory-mib', '1024', '--vcpus', '1', '--request-id', 'shrink-1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('resized');
    expect(await usage('acme')).toEqual({ memoryMiB: 1024, vcpus: 1, vms: 1 });
    const onNode = await onAgent(vm.id);
    expect(onNode?.granted).toMatchObject({ memoryMiB: 1024, vcpus: 1 });
    expect(onNode?.cpu?.cpuset).toEqual([Math.min(...(vm.cpu?.cpuset ?? [0]))]);
    const events = await readEvents(cluster.nc, 'allot.events.r1.resized');
    expect(events.map((e) => e.reason)).toEqual([
      expect.stringContaining('resize grow-1: 2048 MiB, 2 vCPUs -> 4096 MiB, 4 vCPUs'),
      expect.stringContaining('resize shrink-1'),
    ]);
    expect(events[1]).toMatchObject({ requestId: 'vm-1', allocationId: vm.id, tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 } });
    await waitFor(
      async () => {
        const node = await cluster.sched('node', { nodeId: 'r1' });
        return node.ok && node.value.snapshot.tenants.acme?.memoryMiB === 1024 && node.value.snapshot.tenants.acme.vcpus === 1;
      },
      { timeoutMs: 10_000 },
    );
    const refused = await allot('resize', vm.id, '--tenant', 'acme', '--memory-mib', '1024', '--vcpus', '40');
    expect(refused.code).toBe(1);
  });

  it("keeps the new size across the agent's kill -9: the ledger replays the resize", async () => {
    const agent = cluster.agents.get('r1');
    if (agent === undefined) throw new Error('no agent r1');
    await agent.kill(); // SIGKILL
    await cluster.restartAgent('r1');
    const onNode = await onAgent(vm.id);
    expect(onNode?.granted).toMatchObject({ memoryMiB: 1024, vcpus: 1 });
    // A retried resize id is still answered from the ledger, not applied again.
    const again = value(await resize('grow-1', vm.id, 4096, 4));
    expect(again.granted).toMatchObject({ memoryMiB: 4096, vcpus: 4 });
    expect((await onAgent(vm.id))?.granted).toMatchObject({ memoryMiB: 1024, vcpus: 1 });
    expect(await usage('acme')).toEqual({ memoryMiB: 1024, vcpus: 1, vms: 1 });
  });
});
