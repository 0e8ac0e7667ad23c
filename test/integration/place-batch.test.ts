import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AllocationRequestInput } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentRequest, cleanupAll, readEvents, startLocalCluster, waitFor, type LocalCluster } from '../harness/index.ts';

/*
 * place.batch with real processes: a nats-server, three agents on simulated hosts (durable ledgers, one thread per
 * core) and one coordinator. A batch lands all or nothing; an agent's refusal of one member rolls the others back on
 * their agents; a retried batch answers the same placements.
 */
let cluster: LocalCluster;
const NODES = ['g1', 'g2', 'g3'];
const CLI = fileURLToPath(new URL('../../apps/cli/src/main.ts', import.meta.url));

function allot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '-s', cluster.server.url], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  cluster = await startLocalCluster({
    agents: NODES.map((nodeId) => ({
      nodeId,
      simulatedHost: { cores: 8, memoryMiB: 16_384 },
      memoryOvercommit: 1,
      cpuOvercommit: 1,
      ...(nodeId === 'g3' ? { env: { ALLOT_HEARTBEAT_MS: '8000', ALLOT_USAGE_PUBLISH_MIN_INTERVAL_MS: '8000' } } : {}),
    })),
    // A reconciler that settles an abandoned intent after 1 s (the coordinator killed mid-batch).
    // g3 publishes its usage at most every 8 s (the last test changes it behind the views' back), so no node turns
    // suspect before 30 s of silence.
    coordinatorConfig: {
      place: { agentTimeoutMs: 3_000 },
      reconcile: { everyMs: 200, pendingOlderThanMs: 1_000 },
      liveness: { suspectAfterMs: 30_000, lostAfterMs: 60_000, checkEveryMs: 100 },
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

/** The live allocations of every node, as their agents hold them (request ids). */
async function live(nodes: readonly string[] = NODES): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const nodeId of nodes) {
    const page = value(await agentRequest(cluster.nc, nodeId, 'allocations', { status: 'live' }));
    out[nodeId] = page.allocations.map((a) => a.requestId).sort();
  }
  return out;
}

async function vms(): Promise<number> {
  return value(await cluster.sched('quota.get', { tenantId: 'acme' })).usage.vms;
}

function member(requestId: string, more: Partial<AllocationRequestInput> = {}): AllocationRequestInput {
  return { requestId, tenantId: 'acme', resources: { memoryMiB: 2048, vcpus: 2 }, ...more };
}

const gang = (batchId: string, members: AllocationRequestInput[]) => ({ batchId, tenantId: 'acme', members, maxPerNode: 1 });

describe('place.batch through real agents', () => {
  it('places a gang of three, one per node, and a retry answers the same placements', async () => {
    const batch = gang('gang-1', [member('g1-a'), member('g1-b'), member('g1-c')]);
    const placed = value(await cluster.sched('place.batch', batch));
    expect(placed.placements.map((p) => p.allocation.requestId)).toEqual(['g1-a', 'g1-b', 'g1-c']);
    expect(new Set(placed.placements.map((p) => p.nodeId)).size).toBe(3);
    expect(Object.values(await live()).map((ids) => ids.length)).toEqual([1, 1, 1]);
    expect(await vms()).toBe(3);
    const again = value(await cluster.sched('place.batch', batch));
    expect(again.placements.map((p) => p.allocation.id)).toEqual(placed.placements.map((p) => p.allocation.id));
    expect(Object.values(await live()).map((ids) => ids.length)).toEqual([1, 1, 1]);
    expect(await vms()).toBe(3);
  });

  it('refuses a gang the nodes cannot hold all of, placing none of it', async () => {
    const refused = await cluster.sched(
      'place.batch',
      gang(
        'gang-2',
        ['a', 'b', 'c', 'd'].map((m) => member(`g2-${m}`)),
      ),
    );
    expect(!refused.ok && refused.error).toMatchObject({ code: 'insufficient_capacity', details: { memberIndex: 3, requestId: 'g2-d' } });
    expect(
      Object.values(await live())
        .flat()
        .sort(),
    ).toEqual(['g1-a', 'g1-b', 'g1-c']);
    expect(await vms()).toBe(3);
    // Schedulers read the refusal in the event feed, once per batch and reason, as a place's.
    const refusals = await waitFor(
      async () => {
        const found = (await readEvents(cluster.nc, 'allot.events.cluster.refused')).filter((e) => e.requestId === 'gang-2');
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 5_000, message: "gang-2's refused event" },
    );
    expect(refusals.map((e) => [e.tenantId, e.resources, e.error?.code])).toEqual([
      ['acme', { memoryMiB: 8192, vcpus: 8 }, 'insufficient_capacity'],
    ]);
  });

  it('allot place-batch places a gang from the command line, and the same --batch-id again answers it again', async () => {
    const args = [
      'place-batch',
      '--tenant',
      'acme',
      '--count',
      '3',
      '--memory',
      '1G',
      '--vcpus',
      '1',
      '--max-per-node',
      '1',
      '--batch-id',
      'cli',
    ];
    const first = await allot(...args);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
    expect(first.stdout).toContain('batch cli: 3 placed on 3 nodes');
    const again = await allot(...args);
    expect(again.stdout).toBe(first.stdout);
    expect(
      Object.values(await live())
        .flat()
        .filter((id) => id.startsWith('cli-'))
        .sort(),
    ).toEqual(['cli-0', 'cli-1', 'cli-2']);
    const tooMany = await allot('place-batch', '--tenant', 'acme', '--count', '4', '--memory', '1G', '--max-per-node', '1');
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toContain('member 3');
  });

  it('a coordinator killed mid-batch: the quota equals what is live under its successor, and a retry answers the whole batch once', async () => {
    const frozen = cluster.agents.get('g3');
    const victim = cluster.coordinators[0];
    if (frozen === undefined || victim === undefined) throw new Error('no agent g3 or coordinator');
    const batch = {
      batchId: 'crash',
      tenantId: 'crash',
      members: ['a', 'b', 'c'].map((m) => ({ requestId: `crash-${m}`, tenantId: 'crash', resources: { memoryMiB: 1024, vcpus: 1 } })),
      maxPerNode: 1,
    };
    const members = batch.members.map((m) => m.requestId);
    const liveMembers = async (nodes: readonly string[] = NODES) =>
      Object.values(await live(nodes))
        .flat()
        .filter((id) => members.includes(id));
    // g3 frozen: its member's allocate waits in its socket while the other two commit; then the coordinator dies.
    process.kill(frozen.pid, 'SIGSTOP');
    let inFlight: Promise<unknown> | undefined;
    try {
      inFlight = cluster.sched('place.batch', batch, 20_000);
      await waitFor(async () => (await liveMembers(['g1', 'g2'])).length === 2, {
        timeoutMs: 10_000,
        intervalMs: 20,
        message: 'two members committed',
      });
      await victim.kill();
    } finally {
      process.kill(frozen.pid, 'SIGCONT');
    }
    await inFlight;
    await cluster.addCoordinator();
    await cluster.waitForNodes();
    // Whatever each member came to (held: placed by the reconciler; nothing: failed, quota back), the quota counts exactly
    // what is live. (Member by member, the reconciler's outcomes are checked in place-batch.test.ts over fake agents.)
    let settled = 0;
    await waitFor(
      async () => {
        const u = await cluster.sched('quota.get', { tenantId: 'crash' });
        const same = u.ok && u.value.usage.vms === (await liveMembers()).length;
        settled = same ? settled + 1 : 0;
        return settled >= 15; // steady over 3 s: past the reconciler's 1 s threshold and its rounds
      },
      { timeoutMs: 30_000, intervalMs: 200, message: 'quota equal to the live members' },
    );
    const retried = value(await cluster.sched('place.batch', batch, 20_000));
    expect(retried.placements.map((p) => p.allocation.requestId)).toEqual(members);
    expect(new Set(retried.placements.map((p) => p.nodeId)).size).toBe(3);
    expect((await liveMembers()).sort()).toEqual(members);
    expect(value(await cluster.sched('quota.get', { tenantId: 'crash' })).usage.vms).toBe(3);
  });

  it("a coordinator killed mid-batch while one member's allocate never reached its agent: the successor's reconciler rolls the batch back", async () => {
    const lost = cluster.agents.get('g3');
    const victim = cluster.coordinators.at(-1);
    if (lost === undefined || victim === undefined) throw new Error('no agent g3 or coordinator');
    const batch = {
      batchId: 'lost',
      tenantId: 'lost',
      members: ['a', 'b', 'c'].map((m) => ({ requestId: `lost-${m}`, tenantId: 'lost', resources: { memoryMiB: 1024, vcpus: 1 } })),
      maxPerNode: 1,
    };
    const members = batch.members.map((m) => m.requestId);
    const liveMembers = async (nodes: readonly string[] = NODES) =>
      Object.values(await live(nodes))
        .flat()
        .filter((id) => members.includes(id));
    // g3 frozen, then killed: its member's allocate dies in its socket, after the other two committed and the coordinator died.
    process.kill(lost.pid, 'SIGSTOP');
    const inFlight = cluster.sched('place.batch', batch, 20_000);
    try {
      await waitFor(async () => (await liveMembers(['g1', 'g2'])).length === 2, {
        timeoutMs: 10_000,
        intervalMs: 20,
        message: 'two members committed',
      });
      await victim.kill();
    } finally {
      await lost.kill();
    }
    await inFlight;
    await cluster.restartAgent('g3');
    await cluster.addCoordinator();
    await cluster.waitForNodes();
    await waitFor(async () => (await liveMembers()).length === 0, { timeoutMs: 30_000, intervalMs: 200, message: 'the batch rolled back' });
    await waitFor(async () => value(await cluster.sched('quota.get', { tenantId: 'lost' })).usage.vms === 0, {
      timeoutMs: 10_000,
      intervalMs: 200,
      message: 'quota back',
    });
    const retried = await cluster.sched('place.batch', batch, 20_000);
    expect(!retried.ok && retried.error).toMatchObject({ code: 'conflict', details: { batchId: 'lost', nodeId: 'g3' } });
    expect(await liveMembers()).toEqual([]);
  });

  it('rolls the others back when one agent refuses its member, and a retry answers the same refusal', async () => {
    // g3 cordoned behind the views' back: a change right after its last publish reaches them only 8 s later, so the
    // decision offers g3 and its agent refuses (the fence journaled first).
    const tick = { requestId: 'g3-tick', tenantId: 'other', resources: { memoryMiB: 16, vcpus: 1 } };
    value(await agentRequest(cluster.nc, 'g3', 'allocate', tick));
    await waitFor(
      async () => {
        const n = await cluster.sched('node', { nodeId: 'g3' });
        return n.ok && n.value.snapshot.tenants['other']?.vms === 1;
      },
      { timeoutMs: 20_000, intervalMs: 20, message: "g3's snapshot with the tick" },
    );
    value(await agentRequest(cluster.nc, 'g3', 'release', { requestId: 'g3-tick-rel', allocationRequestId: 'g3-tick' }));
    value(await agentRequest(cluster.nc, 'g3', 'cordon', { requestId: 'g3-cordon', reason: 'behind the views' }));
    const batch = {
      batchId: 'gang-3',
      tenantId: 'refuse',
      members: ['a', 'b', 'c'].map((m) => ({ ...member(`g3-${m}`), tenantId: 'refuse' })),
      maxPerNode: 1,
    };
    const refusedMembers = async () =>
      Object.values(await live())
        .flat()
        .filter((id) => id.startsWith('g3-'));
    try {
      const failed = await cluster.sched('place.batch', batch);
      expect(!failed.ok && failed.error).toMatchObject({
        code: 'insufficient_capacity',
        details: { batchId: 'gang-3', nodeId: 'g3', cordoned: true, nodeCode: 'unavailable' },
      });
      expect(!failed.ok && failed.error.message).toContain('the batch placed nothing');
      expect(await refusedMembers()).toEqual([]);
      expect(value(await cluster.sched('quota.get', { tenantId: 'refuse' })).usage.vms).toBe(0);
      const retried = await cluster.sched('place.batch', batch);
      expect(!retried.ok && retried.error.details).toMatchObject({
        memberIndex: !failed.ok ? failed.error.details?.['memberIndex'] : -1,
        nodeId: 'g3',
      });
      expect(await refusedMembers()).toEqual([]);
    } finally {
      await agentRequest(cluster.nc, 'g3', 'uncordon', { requestId: 'g3-uncordon' });
    }
  });
});
