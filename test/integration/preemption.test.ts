import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostRecordSchema, type HostRecord } from '../../packages/managers/src/index.ts';
import { openLedger } from '../../packages/ledger/src/index.ts';
import { agentRequest, cleanupAll, readEvents, startLocalCluster, waitFor, type LocalCluster } from '../harness/index.ts';

/*
 * Atomic preemption with real processes: a nats-server, one agent on a simulated host (durable ledger) and a
 * coordinator. Tenant bronze (priority 0) fills the host; tenant gold (priority 50, may preempt) needs room.
 */
let cluster: LocalCluster;
/** The host's effective memory, read from the agent. */
let effective = 0;

async function usageOf(tenantId: string): Promise<{ vms: number; memoryMiB: number }> {
  const q = await cluster.sched('quota.get', { tenantId });
  if (!q.ok) throw new Error(q.error.message);
  return { vms: q.value.usage.vms, memoryMiB: q.value.usage.memoryMiB };
}

async function seqOf(nodeId: string): Promise<number> {
  const u = await agentRequest(cluster.nc, nodeId, 'usage', {});
  if (!u.ok) throw new Error(u.error.message);
  return u.value.seq;
}

/** The id of the live allocation of `requestId` on the node, from its agent (a preemptor is not told other tenants'). */
async function allocationIdOf(nodeId: string, requestId: string): Promise<string | undefined> {
  const r = await agentRequest(cluster.nc, nodeId, 'allocations', { status: 'live', requestId });
  if (!r.ok) throw new Error(r.error.message);
  return r.value.allocations[0]?.id;
}

async function liveRequestIds(nodeId: string): Promise<string[]> {
  const r = await agentRequest(cluster.nc, nodeId, 'allocations', { status: 'live' });
  if (!r.ok) throw new Error(r.error.message);
  return r.value.allocations.map((a) => a.requestId).sort();
}

beforeAll(async () => {
  cluster = await startLocalCluster({ agents: [{ nodeId: 'n1', simulatedHost: { cores: 8, memoryMiB: 8192 } }] });
  for (const [tenantId, priority, allowPreemption] of [
    ['bronze', 0, false],
    ['gold', 50, true],
  ] as const) {
    const set = await cluster.sched('quota.set', {
      requestId: `q-${tenantId}`,
      quota: { tenantId, maxVms: 10, priority, allowPreemption },
    });
    if (!set.ok) throw new Error(set.error.message);
  }
  const usage = await agentRequest(cluster.nc, 'n1', 'usage', {});
  if (!usage.ok) throw new Error(usage.error.message);
  effective = usage.value.memory.effectiveCapacity;
  const half = Math.floor(effective / 2);
  for (const [requestId, memoryMiB] of [
    ['low-a', half],
    ['low-b', effective - half],
  ] as const) {
    const placed = await cluster.sched('place', { request: { requestId, tenantId: 'bronze', resources: { memoryMiB, vcpus: 1 } } });
    if (!placed.ok) throw new Error(placed.error.message);
  }
  await waitFor(
    async () => {
      const n = await cluster.sched('node', { nodeId: 'n1' });
      return n.ok && n.value.snapshot.memory.committed === effective;
    },
    { message: 'the view to see the host full' },
  );
});

afterAll(async () => {
  await cleanupAll();
});

describe('atomic preemption against a real agent and coordinator', () => {
  it('a preempt whose victims do not make room changes nothing on the agent: no record, no event, the victims keep running', async () => {
    const lowA = await agentRequest(cluster.nc, 'n1', 'allocations', { status: 'live', requestId: 'low-a' });
    const victim = lowA.ok ? lowA.value.allocations[0] : undefined;
    if (victim === undefined) throw new Error('low-a is not live');
    const before = await seqOf('n1');
    const refused = await agentRequest(cluster.nc, 'n1', 'preempt', {
      request: { requestId: 'too-big', tenantId: 'gold', resources: { memoryMiB: effective, vcpus: 1 }, priority: 50 },
      victims: [victim.id],
    });
    expect(!refused.ok && refused.error).toMatchObject({ code: 'insufficient_capacity', details: { victims: [victim.id] } });
    expect(await liveRequestIds('n1')).toEqual(['low-a', 'low-b']);
    expect(await seqOf('n1')).toBe(before);
    const tooClose = await agentRequest(cluster.nc, 'n1', 'preempt', {
      request: { requestId: 'too-close', tenantId: 'gold', resources: { memoryMiB: 512, vcpus: 1 }, priority: 5 },
      victims: [victim.id],
    });
    expect(!tooClose.ok && tooClose.error).toMatchObject({ code: 'conflict', details: { reason: 'victim_priority' } });
    expect(await liveRequestIds('n1')).toEqual(['low-a', 'low-b']);
    expect(await readEvents(cluster.nc, 'allot.events.n1.preempted')).toEqual([]);
    expect(await usageOf('bronze')).toEqual({ vms: 2, memoryMiB: effective });
  });

  it('a place that preempts: one ledger record, a preempted event naming the preemptor, both tenants counted right', async () => {
    const half = Math.floor(effective / 2);
    // check first: it names the node and the victim the place will preempt (the nominated node), and evicts nothing.
    const seqBefore = await seqOf('n1');
    const checked = await cluster.sched('check', {
      request: { requestId: 'gold-1', tenantId: 'gold', resources: { memoryMiB: half, vcpus: 1 } },
      placement: { allowPreemption: true },
    });
    if (!checked.ok) throw new Error(checked.error.message);
    expect(checked.value).toMatchObject({
      fits: false,
      // bronze's VM is counted in the message, not named to gold.
      preemption: { nodeId: 'n1', victims: [] },
    });
    expect(checked.value.message).toContain('It would fit on n1 by preempting 1 allocation of priority 0 or lower.');
    expect(await liveRequestIds('n1')).toEqual(['low-a', 'low-b']);
    expect(await seqOf('n1')).toBe(seqBefore);
    const victimId = await allocationIdOf('n1', 'low-a');
    const placed = await cluster.sched('place', {
      request: { requestId: 'gold-1', tenantId: 'gold', resources: { memoryMiB: half, vcpus: 1 } },
      placement: { allowPreemption: true },
    });
    if (!placed.ok) throw new Error(placed.error.message);
    expect(placed.value.nodeId).toBe('n1');
    // bronze's VM is counted, not named to gold (bronze is told by its preempted event).
    expect(placed.value.preempted).toEqual([]);
    expect(placed.value.othersPreempted).toBe(1);
    expect(JSON.stringify(placed.value)).not.toContain('low-a');
    expect(await liveRequestIds('n1')).toEqual(['gold-1', 'low-b']);

    const events = await waitFor(
      async () => {
        const e = await readEvents(cluster.nc, 'allot.events.n1.preempted');
        return e.length > 0 ? e : null;
      },
      { message: 'the preempted event' },
    );
    expect(events).toEqual([
      expect.objectContaining({
        kind: 'preempted',
        nodeId: 'n1',
        allocationId: victimId,
        requestId: 'low-a',
        preemptedBy: { allocationId: placed.value.allocation.id, requestId: 'gold-1' },
      }),
    ]);
    // The victim's tenant gave its quota back, the preemptor's took it: each counts what lives on the host.
    await waitFor(async () => (await usageOf('bronze')).vms === 1, { message: 'bronze usage down' });
    expect(await usageOf('bronze')).toEqual({ vms: 1, memoryMiB: effective - half });
    expect(await usageOf('gold')).toEqual({ vms: 1, memoryMiB: half });
    // A retry of the place answers the same placement, nothing more is preempted.
    const again = await cluster.sched('place', {
      request: { requestId: 'gold-1', tenantId: 'gold', resources: { memoryMiB: half, vcpus: 1 } },
      placement: { allowPreemption: true },
    });
    expect(again.ok && again.value.allocation.id).toBe(placed.value.allocation.id);
    const audit = await cluster.sched('audit', {});
    expect(audit.ok && audit.value.total).toBe(0);

    // The agent's ledger holds the preemption as ONE record (the victim released and the preemptor allocated), and a
    // restart replays it to the same allocations.
    const agent = cluster.agents.get('n1');
    if (agent === undefined) throw new Error('no agent n1');
    expect(await agent.stop('SIGTERM')).toBe(0);
    const opened = await openLedger<unknown, unknown>(join(agent.stateDir, 'ledger'));
    const records: HostRecord[] = opened.records.map((r) => HostRecordSchema.parse(r.record));
    await opened.ledger.close();
    const preempted = records.filter((r) => r.kind === 'preempted');
    expect(preempted).toEqual([
      expect.objectContaining({
        allocation: expect.objectContaining({ id: placed.value.allocation.id, requestId: 'gold-1' }),
        victims: [expect.objectContaining({ allocationId: victimId, allocationRequestId: 'low-a' })],
      }),
    ]);
    expect(records.filter((r) => (r.kind === 'released' || r.kind === 'expired') && r.allocationId === victimId)).toEqual([]);
    expect(records.filter((r) => (r.kind === 'allocated' || r.kind === 'reserved') && r.allocation.requestId === 'gold-1')).toEqual([]);
    await cluster.restartAgent('n1');
    expect(await liveRequestIds('n1')).toEqual(['gold-1', 'low-b']);
  });

  it('with a grace period: the victim runs and counts until the deadline, then it is released and the preemptor active in one step', async () => {
    await cluster.waitForNodes(['n1']);
    const memoryMiB = effective - Math.floor(effective / 2);
    const graceMs = 2_000;
    const victimId = await allocationIdOf('n1', 'low-b');
    const placed = await cluster.sched('place', {
      request: { requestId: 'gold-2', tenantId: 'gold', resources: { memoryMiB, vcpus: 1 } },
      placement: { allowPreemption: true, preemptionGraceMs: graceMs },
    });
    if (!placed.ok) throw new Error(placed.error.message);
    expect(placed.value.allocation).toMatchObject({ requestId: 'gold-2', status: 'reserved' });
    expect(placed.value).toMatchObject({ preempted: [], othersPreempted: 1 });
    // During the grace period the victim still runs, both tenants count their VM, and the victim cannot be taken by a release.
    const listed = await agentRequest(cluster.nc, 'n1', 'allocations', { status: 'live', requestId: 'low-b' });
    expect(listed.ok && listed.value.allocations.map((a) => a.status)).toEqual(['releasing']);
    expect(await usageOf('bronze')).toEqual({ vms: 1, memoryMiB });
    expect(await usageOf('gold')).toEqual({ vms: 2, memoryMiB: effective });
    const early = await cluster.sched('release', { requestId: 'rel-low-b', placementRequestId: 'low-b', tenantId: 'bronze' });
    expect(!early.ok && early.error).toMatchObject({ code: 'conflict', details: { reason: 'preempting', preemptedBy: 'gold-2' } });

    await waitFor(async () => (await liveRequestIds('n1')).join() === 'gold-1,gold-2', {
      timeoutMs: 15_000,
      message: 'the grace period to end',
    });
    const held = await agentRequest(cluster.nc, 'n1', 'allocations', { status: 'live', requestId: 'gold-2' });
    expect(held.ok && held.value.allocations.map((a) => a.status)).toEqual(['active']);
    const events = await waitFor(
      async () => {
        const e = (await readEvents(cluster.nc, 'allot.events.n1.preempted')).filter((x) => x.requestId === 'low-b');
        return e.length > 0 ? e : null;
      },
      { message: 'the preempted event of low-b' },
    );
    expect(events).toEqual([
      expect.objectContaining({
        allocationId: victimId,
        preemptedBy: { allocationId: placed.value.allocation.id, requestId: 'gold-2' },
      }),
    ]);
    await waitFor(async () => (await usageOf('bronze')).vms === 0, { timeoutMs: 15_000, message: 'bronze usage down after the deadline' });
    expect(await usageOf('bronze')).toEqual({ vms: 0, memoryMiB: 0 });
    expect(await usageOf('gold')).toEqual({ vms: 2, memoryMiB: effective });
  });
});
