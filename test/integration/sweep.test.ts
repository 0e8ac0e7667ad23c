import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentRequest, cleanupAll, readEvents, startLocalCluster, waitFor, type LocalCluster } from '../harness/index.ts';

/*
 * The anti-entropy sweep and the quota-events consumer with real processes: a nats-server 2.12+, two agents on
 * simulated hosts (durable ledgers, fencing) and two coordinators, each sweeping every second with a 2 s grace.
 */
let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await startLocalCluster({
    agents: [{ nodeId: 'n1' }, { nodeId: 'n2' }],
    coordinators: 2,
    coordinatorConfig: { sweep: { everyMs: 1_000, graceMs: 2_000 } },
  });
});

afterAll(async () => {
  await cleanupAll();
});

describe('anti-entropy sweep against real agents and coordinators', () => {
  it('releases an allocation a coordinator made but no intent accounts for, after the grace period, and records it', async () => {
    // What a coordinator that died between its allocate and its intent write (or a lost undo) leaves behind.
    const orphan = await agentRequest(cluster.nc, 'n1', 'allocate', {
      requestId: 'lost-undo-1',
      tenantId: 'acme',
      resources: { memoryMiB: 1024, vcpus: 1 },
      fence: 3,
    });
    if (!orphan.ok) throw new Error(orphan.error.message);
    const audit = await cluster.sched('audit', {});
    expect(audit.ok && audit.value.discrepancies).toEqual([
      expect.objectContaining({ kind: 'orphan', nodeId: 'n1', requestId: 'lost-undo-1', reason: 'intent_missing', fence: 3 }),
    ]);
    // An allocation made without a fence (straight to the agent, not through a coordinator) is never touched.
    const direct = await agentRequest(cluster.nc, 'n2', 'allocate', {
      requestId: 'direct-1',
      tenantId: 'acme',
      resources: { memoryMiB: 512, vcpus: 1 },
    });
    expect(direct.ok).toBe(true);

    const released = await waitFor(
      async () => {
        const r = await agentRequest(cluster.nc, 'n1', 'allocations', { status: 'live', requestId: 'lost-undo-1' });
        return r.ok && r.value.allocations.length === 0;
      },
      { timeoutMs: 20_000, message: 'the sweep to release the orphan' },
    );
    expect(released).toBe(true);
    const events = await waitFor(
      async () => {
        const e = await readEvents(cluster.nc, 'allot.events.cluster.orphan_released');
        return e.length > 0 ? e : null;
      },
      { message: 'the orphan_released event' },
    );
    expect(events[0]).toMatchObject({ kind: 'orphan_released', nodeId: 'n1', requestId: 'lost-undo-1', reason: 'orphan: intent missing' });
    const still = await agentRequest(cluster.nc, 'n2', 'allocations', { status: 'live', requestId: 'direct-1' });
    expect(still.ok && still.value.allocations.length).toBe(1);
    const after = await cluster.sched('audit', {});
    expect(after.ok && after.value.total).toBe(0);
  });

  it("gives a tenant's quota back when a reservation placed through a coordinator expires on its agent", async () => {
    const quota = await cluster.sched('quota.set', { requestId: 'q-lease', quota: { tenantId: 'leasing', maxVms: 5 } });
    expect(quota.ok).toBe(true);
    const placed = await cluster.sched('place', {
      request: { requestId: 'lease-1', tenantId: 'leasing', resources: { memoryMiB: 1024, vcpus: 1 }, reservation: { ttlMs: 1_500 } },
    });
    if (!placed.ok) throw new Error(placed.error.message);
    const during = await cluster.sched('quota.get', { tenantId: 'leasing' });
    expect(during.ok && during.value.usage.vms).toBe(1);
    await waitFor(
      async () => {
        const q = await cluster.sched('quota.get', { tenantId: 'leasing' });
        return q.ok && q.value.usage.vms === 0;
      },
      { timeoutMs: 20_000, message: 'the expiry to give the quota back' },
    );
  });
});
