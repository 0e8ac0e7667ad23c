import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Allocation } from '@allot/core';
import type { EvacuateReply } from '@allot/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentRequest, cleanupAll, readEvents, startLocalCluster, type LocalCluster } from '../harness/index.ts';

/*
 * move and evacuate with real processes: a nats-server, three agents on simulated hosts (durable ledgers) and one
 * coordinator. Tenant acme may run 3 VMs and runs exactly 3, so a move whose destination counted against the quota
 * would be refused: the usage shows each VM counted once before, during and after every move.
 */
let cluster: LocalCluster;
const CLI = fileURLToPath(new URL('../../apps/cli/src/main.ts', import.meta.url));
const NODES = ['m1', 'm2', 'm3'];

beforeAll(async () => {
  cluster = await startLocalCluster({
    agents: NODES.map((nodeId) => ({ nodeId, simulatedHost: { cores: 8, memoryMiB: 16_384 }, memoryOvercommit: 1, cpuOvercommit: 1 })),
    // A short sweep (the stray of a lost source is its to release) and liveness (a killed agent is lost in seconds).
    coordinatorConfig: {
      place: { agentTimeoutMs: 3_000 },
      sweep: { everyMs: 500, graceMs: 500 },
      liveness: { lostAfterMs: 3_000, leaseExpiry: false, checkEveryMs: 100 },
    },
  });
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

function value<T>(r: { ok: true; value: T } | { ok: false; error: { code: string; message: string } }): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}

async function usage(): Promise<{ vms: number; memoryMiB: number }> {
  const { usage: u } = value(await cluster.sched('quota.get', { tenantId: 'acme' }));
  return { vms: u.vms, memoryMiB: u.memoryMiB };
}

/** The live allocations of a node, as its agent holds them: `requestId:status`. */
async function liveOn(nodeId: string): Promise<string[]> {
  const page = value(await agentRequest(cluster.nc, nodeId, 'allocations', { status: 'live' }));
  return page.allocations.map((a) => `${a.requestId}:${a.status}`);
}

function allot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '-s', cluster.server.url], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

const place = async (requestId: string, nodeId: string): Promise<Allocation> =>
  value(
    await cluster.sched('place', {
      request: { requestId, tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 } },
      placement: { strategy: 'manual', nodeId },
    }),
  ).allocation;

describe('moves and evacuation through a coordinator, against real agents', () => {
  const vms: Allocation[] = [];

  it('moves a VM with confirm: held on the destination while the source runs, then the source released, the VM counted once', async () => {
    value(await cluster.sched('quota.set', { requestId: 'q-acme', quota: { tenantId: 'acme', maxVms: 3 } }));
    vms.push(await place('vm-1', 'm1'), await place('vm-2', 'm1'), await place('vm-3', 'm2'));
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072 });

    const held = value(await cluster.sched('move', { requestId: 'mv-1', allocationId: vms[2]?.id, tenantId: 'acme' }));
    expect(held).toMatchObject({
      state: 'held',
      source: { allocationId: vms[2]?.id, nodeId: 'm2' },
      destination: { allocation: { status: 'reserved' } },
    });
    const dest = held.destination.nodeId;
    expect(dest).not.toBe('m2');
    expect(await liveOn('m2')).toEqual(['vm-3:active']);
    expect(await liveOn(dest)).toContain(`${held.destination.requestId}:reserved`);
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072 });
    // The same move again answers the same destination.
    expect(value(await cluster.sched('move', { requestId: 'mv-1', allocationId: vms[2]?.id, tenantId: 'acme' }))).toEqual(held);

    const confirmed = value(await cluster.sched('move.confirm', { requestId: 'mv-1', allocationId: vms[2]?.id, tenantId: 'acme' }));
    expect(confirmed).toMatchObject({
      state: 'confirmed',
      sourceReleased: true,
      destination: { nodeId: dest, allocation: { status: 'active' } },
    });
    expect(await liveOn('m2')).toEqual([]);
    expect(await liveOn(dest)).toContain(`${held.destination.requestId}:active`);
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072 });

    // Both halves are in the events stream: the coordinator's move events, the agents' reserved/activated/released.
    const cluster_ = await readEvents(cluster.nc, 'allot.events.cluster.>');
    const moves = cluster_.filter((e) => e.kind.startsWith('move_') && e.requestId === held.destination.requestId);
    expect(moves.map((e) => e.kind)).toEqual(['move_started', 'move_confirmed']);
    const released = await readEvents(cluster.nc, 'allot.events.m2.released');
    expect(released.find((e) => e.requestId === 'vm-3')?.reason).toContain('move mv-1');
  });

  it('moves a VM with abort through the CLI: the destination released, the VM stays where it was', async () => {
    const vm = vms[0] as Allocation;
    const before = await liveOn('m1');
    const started = await allot('move', vm.id, '--tenant', 'acme', '--to', 'm3', '--request-id', 'mv-2');
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    expect(started.stdout).toContain(`held      ${vm.id} on m1 -> m3`);
    expect((await liveOn('m3')).some((a) => a.endsWith(':reserved'))).toBe(true);
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072 });
    const aborted = await allot('move', 'abort', vm.id, '--tenant', 'acme', '--request-id', 'mv-2');
    expect(aborted.code).toBe(0);
    expect(aborted.stdout).toContain('aborted');
    expect((await liveOn('m3')).some((a) => a.endsWith(':reserved'))).toBe(false);
    expect(await liveOn('m1')).toEqual(before);
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072 });
    const late = await allot('move', 'confirm', vm.id, '--tenant', 'acme', '--request-id', 'mv-2');
    expect(late.code).toBe(1);
  });

  it('evacuates a drained node: every VM gets a reservation elsewhere, each confirm releases its source, the quota counts each VM once', async () => {
    // vm-1, vm-2 and, when placement picked m1 for it, vm-3 moved there by the first test.
    const onM1 = await liveOn('m1');
    expect(onM1.length).toBeGreaterThanOrEqual(2);
    const drained = await allot('drain', 'm1', '--evacuate', '--request-id', 'ev-1');
    expect(drained.stderr).toBe('');
    expect(drained.code).toBe(0);
    expect(drained.stdout).toContain('m1 cordoned');
    expect(drained.stdout).toContain(`${onM1.length} moves, 0 not placed`);
    const plan = JSON.parse((await allot('evacuate', 'm1', '--request-id', 'ev-1', '--json')).stdout) as EvacuateReply;
    expect(plan.moves.map((m) => `${m.source.requestId}:${m.state}`).sort()).toEqual(onM1.map((a) => a.replace(':active', ':held')).sort());
    expect(plan.moves.every((m) => m.destination.nodeId !== 'm1' && m.destination.allocation?.status === 'reserved')).toBe(true);
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072 });

    for (const m of plan.moves)
      value(await cluster.sched('move.confirm', { requestId: m.moveRequestId, allocationId: m.source.allocationId, tenantId: 'acme' }));
    expect(await liveOn('m1')).toEqual([]);
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072 });
    const live = (await Promise.all(NODES.map(liveOn))).flat();
    expect(live).toHaveLength(3);
    expect(live.every((a) => a.endsWith(':active'))).toBe(true);
    // Resumed with the same id: the same plan, confirmed.
    const again = value(await cluster.sched('evacuate', { requestId: 'ev-1', nodeId: 'm1' }));
    expect(again.moves.map((m) => [m.destination.requestId, m.state])).toEqual(
      plan.moves.map((m) => [m.destination.requestId, 'confirmed']),
    );
  });

  it('evacuates a lost node: the plan comes from the intents; a confirm keeps the source counted until its node releases it (retried once the node returns)', async () => {
    value(await cluster.sched('uncordon', { requestId: 'un-m1', nodeId: 'm1' }));
    value(await cluster.sched('quota.set', { requestId: 'q-acme-2', quota: { tenantId: 'acme', maxVms: 4 } }));
    await place('vm-4', 'm3');
    const before = await usage();
    const onM3 = await liveOn('m3');
    await cluster.agents.get('m3')?.kill(); // SIGKILL: the host is gone
    await cluster.waitForNodes(['m3'], 'lost', 20_000);

    const plan = value(await cluster.sched('evacuate', { requestId: 'ev-lost', nodeId: 'm3' }));
    expect(plan.unplacedCount).toBe(0);
    expect(plan.moves.map((m) => m.source.requestId).sort()).toEqual(onM3.map((a) => a.split(':')[0]).sort());
    expect(await usage()).toEqual(before);
    const confirm = (m: (typeof plan.moves)[number]) =>
      cluster.sched('move.confirm', { requestId: m.moveRequestId, allocationId: m.source.allocationId, tenantId: 'acme' });
    // Its copy may still run on m3 (lost is not gone): the move stays "releasing source", the VM counted on m3.
    for (const m of plan.moves) expect(await confirm(m)).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(await usage()).toEqual(before);

    // The host comes back with its ledger: the confirm retried releases each source there, then moves its count.
    await cluster.restartAgent('m3');
    await cluster.waitForNodes(['m3'], 'ready', 20_000);
    for (const m of plan.moves) expect(value(await confirm(m))).toMatchObject({ state: 'confirmed', sourceReleased: true });
    expect(await liveOn('m3')).toEqual([]);
    expect(await usage()).toEqual(before);
    const live = (await Promise.all(['m1', 'm2'].map(liveOn))).flat();
    expect(live).toHaveLength(before.vms);
  }, 90_000);
});
