import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentRequest,
  cleanupAll,
  readEvents,
  startLocalCluster,
  waitFor,
  type LocalCluster,
  type ProcessHandle,
} from '../harness/index.ts';

/*
 * Node states and decommission with real processes: a nats-server 2.12+, three agents on simulated hosts (durable
 * ledgers, fencing) and two coordinators sharing the decommission records through KV. Liveness is quick (heartbeat
 * 500 ms, suspect after 1.5 s, lost after 4 s), the sweep runs every second with a 2 s grace.
 */
let cluster: LocalCluster;
let late: ProcessHandle | undefined;
const LOST_AFTER_MS = 4_000;

beforeAll(async () => {
  cluster = await startLocalCluster({
    agents: [{ nodeId: 'n1' }, { nodeId: 'n2' }, { nodeId: 'n3' }],
    coordinators: 2,
    coordinatorConfig: {
      liveness: { suspectAfterMs: 1_500, lostAfterMs: LOST_AFTER_MS },
      place: { agentTimeoutMs: 800, timeoutRetries: 0 },
      sweep: { everyMs: 1_000, graceMs: 2_000 },
      // The reconciler does not settle these intents first: decommission is what must.
      reconcile: { everyMs: 600_000, pendingOlderThanMs: 600_000 },
    },
  });
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

const CLI = fileURLToPath(new URL('../../apps/cli/src/main.ts', import.meta.url));

/** The real `allot` CLI against the cluster's server. */
function allot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '-s', cluster.server.url], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

const placeOn = (requestId: string, nodeId: string, tenantId = 'acme') =>
  cluster.sched(
    'place',
    { request: { requestId, tenantId, resources: { memoryMiB: 1024, vcpus: 1 } }, placement: { strategy: 'manual', nodeId } },
    10_000,
  );

async function usageVms(tenantId: string): Promise<number> {
  const q = await cluster.sched('quota.get', { tenantId });
  if (!q.ok) throw new Error(q.error.message);
  return q.value.usage.vms;
}

async function nodeIds(): Promise<string[]> {
  const n = await cluster.sched('nodes', {});
  if (!n.ok) throw new Error(n.error.message);
  return n.value.nodes.map((v) => v.nodeId);
}

describe('node decommission against real agents and coordinators', () => {
  it('shows every node ready, a cordoned one draining, and counts them', async () => {
    const c = await cluster.sched('cordon', { requestId: 'cordon-n3', nodeId: 'n3' });
    expect(c.ok).toBe(true);
    // The coordinator that served the cordon shows it at once; the other learns it from n3's next usage report (the
    // views are derived: they converge within the staleness bound), and either may answer the next read.
    let draining: string[] = [];
    await waitFor(
      async () => {
        const r = await cluster.sched('nodes', { state: 'draining' });
        draining = r.ok ? r.value.nodes.map((n) => n.nodeId) : [];
        return draining.length > 0;
      },
      { timeoutMs: 5_000, message: 'a draining node in the view' },
    );
    expect(draining).toEqual(['n3']);
    let counts: unknown;
    await waitFor(
      async () => {
        const usage = await cluster.sched('usage', {});
        counts = usage.ok ? usage.value.nodes : undefined;
        return usage.ok && usage.value.nodes.draining === 1;
      },
      { timeoutMs: 5_000, message: 'the usage counts to show one node draining' },
    );
    expect(counts).toMatchObject({ total: 3, ready: 3, draining: 1, decommissioned: 0 });
    expect((await cluster.sched('uncordon', { requestId: 'uncordon-n3', nodeId: 'n3' })).ok).toBe(true);
  });

  it('fails a placement left pending on a killed node, gives its placements up, frees the quota, and drops the node from every count', async () => {
    const quota = await cluster.sched('quota.set', { requestId: 'q-acme', quota: { tenantId: 'acme', maxVms: 3 } });
    expect(quota.ok).toBe(true);
    // One VM placed on n1 before it dies: its allocation is on n1's disk.
    const placed = await placeOn('before-1', 'n1');
    if (!placed.ok) throw new Error(placed.error.message);
    // n1 freezes mid-placement: the allocate waits in its socket, the place answers timeout and stays pending on n1.
    const agent = cluster.agents.get('n1');
    if (agent === undefined) throw new Error('no agent n1');
    const stoppedAt = Date.now();
    process.kill(agent.pid, 'SIGSTOP');
    const pending = await placeOn('pending-1', 'n1');
    expect(!pending.ok && pending.error.code).toBe('timeout');
    expect(await usageVms('acme')).toBe(2);
    // Silent past lostAfterMs, but its lease (renewed every 5 s, 15 s TTL) cannot have expired yet: suspect, not lost.
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + LOST_AFTER_MS + 1_500 - Date.now())));
    const early = await cluster.sched('node', { nodeId: 'n1' });
    expect(early.ok && early.value.state).toBe('suspect');
    // ... and it never comes back: lost once its lease is gone.
    await agent.kill();
    await cluster.waitForNodes(['n1'], 'lost', 30_000);
    // Today's behaviour before the decommission: the retry still times out (or is refused) and the quota stays held.
    const retry = await placeOn('pending-1', 'n1');
    expect(retry.ok).toBe(false);
    expect(await usageVms('acme')).toBe(2);

    const d = await cluster.sched('node.decommission', { requestId: 'decom-n1', nodeId: 'n1', reason: 'motherboard' }, 30_000);
    if (!d.ok) throw new Error(d.error.message);
    expect(d.value).toMatchObject({
      nodeId: 'n1',
      answered: false,
      liveness: 'lost',
      failed: ['pending-1'],
      gone: ['before-1'],
      unsettled: [],
      remainingCount: 0,
      removed: true,
    });
    expect(await usageVms('acme')).toBe(0);
    // Out of the view and of every count, on both coordinators (the queue group picks one per request).
    for (let i = 0; i < 6; i++) {
      expect(await nodeIds()).toEqual(['n2', 'n3']);
      const usage = await cluster.sched('usage', {});
      expect(usage.ok && usage.value.nodes).toMatchObject({ total: 2, ready: 2, lost: 0, decommissioned: 0 });
      const check = await cluster.sched('check', {
        request: { requestId: `check-${i}`, tenantId: 'acme', resources: { memoryMiB: 1_000_000, vcpus: 1 } },
      });
      expect(check.ok && check.value.message).toMatch(/^0\/2 nodes/);
    }
    // A retry of the failed placement (manual, on n1) is refused now, as is a new manual placement on n1. (The same
    // request id placed anywhere is another request: a conflict.)
    const again = await placeOn('pending-1', 'n1');
    expect(again.ok).toBe(false);
    expect((await placeOn('after-1', 'n1')).ok).toBe(false);
    const asked = await cluster.sched('node', { nodeId: 'n1' });
    expect(!asked.ok && asked.error).toMatchObject({ code: 'not_found', message: expect.stringContaining('n1 was decommissioned') });
    // Decommissioning again changes nothing and answers what the first did (an operator whose reply was lost learns it).
    const twice = await cluster.sched('node.decommission', { requestId: 'decom-n1-again', nodeId: 'n1' }, 30_000);
    expect(twice.ok && twice.value).toMatchObject({
      decommissionedAt: d.value.decommissionedAt,
      failed: ['pending-1'],
      gone: ['before-1'],
      remainingCount: 0,
      removed: true,
    });
    expect(await usageVms('acme')).toBe(0);
    // A coordinator started after the decommission reads it from KV before it rebuilds its view.
    late = await cluster.addCoordinator();
    const events = await readEvents(cluster.nc, 'allot.events.cluster.node_decommissioned');
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'node_decommissioned', nodeId: 'n1' })]));
  }, 90_000);

  it('refuses the decommissioned node when its agent comes back: dropped from the view, the agent told why, its stray released by the sweep', async () => {
    const agent = await cluster.restartAgent('n1');
    // Every coordinator refuses it, the one started after the decommission too.
    await late?.waitForLine(
      (l) => typeof l === 'object' && l['node'] === 'n1' && String(l['msg']).startsWith('decommissioned node reported again: refused'),
      20_000,
    );
    // The agent journals and logs the refusal it gets (a cordon naming the decommission).
    await agent.waitForLine(
      (l) =>
        typeof l === 'object' && String(l['msg']).includes('cordoned') && String(l['reason']).startsWith('decommissioned: motherboard'),
      20_000,
    );
    // The allocation it still held for before-1 (given up with the node) is released by the sweep.
    await waitFor(
      async () => {
        const r = await agentRequest(cluster.nc, 'n1', 'allocations', { status: 'live', requestId: 'before-1' });
        return r.ok && r.value.allocations.length === 0;
      },
      { timeoutMs: 30_000, message: 'the sweep to release the stray on n1' },
    );
    expect(await nodeIds()).toEqual(['n2', 'n3']);
    const refused = await readEvents(cluster.nc, 'allot.events.cluster.node_refused');
    expect(refused.some((e) => e.nodeId === 'n1')).toBe(true);
    // Recommission: the node is taken back, cordoned until the operator uncordons it.
    const r = await cluster.sched('node.recommission', { requestId: 'recom-n1', nodeId: 'n1' });
    expect(r.ok && r.value).toEqual({ nodeId: 'n1', wasDecommissioned: true });
    await waitFor(async () => (await nodeIds()).includes('n1'), { timeoutMs: 20_000, message: 'n1 back in the view' });
    const back = await cluster.sched('node', { nodeId: 'n1' });
    expect(back.ok && back.value).toMatchObject({ state: 'draining', snapshot: { cordoned: true } });
  }, 90_000);

  it('keeps a decommissioned node that still answers and holds a VM, listed, until that VM is released', async () => {
    const placed = await placeOn('live-1', 'n2', 'beta');
    if (!placed.ok) throw new Error(placed.error.message);
    // Through the operator's CLI, as a person would.
    const cli = await allot('node', 'decommission', 'n2', '--reason', 'end of lease', '--request-id', 'decom-n2');
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('n2 decommissioned (its agent answered and is cordoned)');
    expect(cli.stdout).toContain('1 allocation still on it: move or release them');
    const d = await cluster.sched('node.decommission', { requestId: 'decom-n2', nodeId: 'n2' }, 30_000);
    if (!d.ok) throw new Error(d.error.message);
    expect(d.value).toMatchObject({ answered: true, failed: [], gone: [], remainingCount: 1, removed: false });
    expect(d.value.remaining.map((a) => a.requestId)).toEqual(['live-1']);
    const listed = await allot('nodes', '--state', 'decommissioned');
    expect(listed.stdout).toMatch(/NODE +STATE[\s\S]*\nn2 +decommissioned /);
    const n2 = await cluster.sched('node', { nodeId: 'n2' });
    expect(n2.ok && n2.value.state).toBe('decommissioned');
    const usage = await cluster.sched('usage', {});
    expect(usage.ok && usage.value.nodes).toMatchObject({ decommissioned: 1 });
    // Nothing new goes there.
    expect((await placeOn('live-2', 'n2', 'beta')).ok).toBe(false);
    // The VM stays counted until released; then nothing of n2 remains and it leaves the view.
    expect(await usageVms('beta')).toBe(1);
    const released = await cluster.sched('release', { requestId: 'rel-live-1', placementRequestId: 'live-1', tenantId: 'beta' });
    expect(released.ok).toBe(true);
    await waitFor(async () => !(await nodeIds()).includes('n2'), { timeoutMs: 20_000, message: 'n2 removed once empty' });
    const after = await cluster.sched('usage', {});
    expect(after.ok && after.value.nodes.decommissioned).toBe(0);
  }, 90_000);
});
