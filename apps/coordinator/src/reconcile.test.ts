import { encode, KV_PLACEMENTS, PlaceRequestSchema, schedSubject, TenantQuotaViewSchema } from '@allot/core';
import { requestTyped } from '@allot/nats';
import { Kvm } from '@nats-io/kv';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, waitFor, type NatsServerHandle } from '../../../test/harness/index.ts';
import type { Coordinator } from './coordinator.ts';
import { PlacementIntentSchema, requestHash } from './intents.ts';
import { KvStore } from './kv-store.ts';
import { jetstream, type NatsConnection } from './nats-deps.ts';
import { connectTo, ensureTestStreams, startFakeAgents, startTestCoordinator } from './testing/cluster.ts';
import type { FakeAgents } from './testing/fake-agents.ts';

let server: NatsServerHandle;
let client: NatsConnection;
let agents: FakeAgents;
let c1: Coordinator;
let intents: KvStore<typeof PlacementIntentSchema>;
const closers: (() => Promise<void>)[] = [];
const TENANT = 'acme';

beforeEach(async () => {
  server = await startNatsServer();
  client = await connectTo(server.url, 'test-client');
  await ensureTestStreams(client);
  agents = await startFakeAgents(client, { a: { memoryMiB: 65536, cores: 64 }, b: { memoryMiB: 65536, cores: 64 } }, { heartbeatMs: 100 });
  await agents.start();
  const c = await startTestCoordinator(server.url, { coordinatorId: 'c1', place: { agentTimeoutMs: 200, timeoutRetries: 0 } });
  closers.push(async () => {
    await c.coordinator.stop();
    await c.nc.close();
  });
  c1 = c.coordinator;
  intents = new KvStore(await new Kvm(jetstream(client)).open(KV_PLACEMENTS), PlacementIntentSchema, 'intent');
  const quota = await requestTyped(client, schedSubject('quota.set'), { requestId: 'q-acme', quota: { tenantId: TENANT, maxVms: 10 } }, TenantQuotaViewSchema, { timeoutMs: 5_000 });
  if (!quota.ok) throw new Error(quota.error.message);
  await waitFor(() => c1.quotas.quotaOf(TENANT), { message: 'the coordinator to see the quota' });
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  agents.stop();
  await client.close();
  await cleanupAll();
});

function req(requestId: string) {
  return PlaceRequestSchema.parse({ request: { requestId, tenantId: TENANT, resources: { memoryMiB: 256, vcpus: 1 } } });
}

/** What a coordinator that died mid-place leaves: the intent pending on `nodeId` (written `ageMs` ago), the quota reserved. */
async function abandoned(requestId: string, nodeId: string, ageMs = 10 * 60_000): Promise<void> {
  const r = req(requestId);
  const created = await intents.create(requestId, { requestId, tenantId: TENANT, hash: requestHash(r), state: 'pending', nodeId, attempt: 1, refusedBy: [], coordinatorId: 'dead', updatedAt: Date.now() - ageMs, memoryMiB: 256, vcpus: 1 });
  if (!created.ok) throw new Error(created.error.message);
  const reserved = await c1.quotas.reserve(TENANT, requestId, { nodeId, memoryMiB: 256, vcpus: 1 });
  if (!reserved.ok) throw new Error(reserved.error.message);
}

async function vmsCounted(): Promise<number> {
  const view = await c1.quotas.get(TENANT);
  if (!view.ok) throw new Error(view.error.message);
  return view.value.usage.vms;
}

describe('reconciler of pending placement intents', () => {
  it('settles a pending intent whose node holds the allocation as placed; a later retry gets it and the quota stays counted', async () => {
    await abandoned('r-1', 'a');
    // The dead coordinator's allocate reached node a, which committed.
    const committed = await client.request('allot.agent.a.allocate', encode(req('r-1').request), { timeout: 5_000 });
    expect(committed.data.byteLength).toBeGreaterThan(0);
    const allocation = agents.live('a').find((x) => x.requestId === 'r-1');

    const round = await c1.reconciler.reconcileOnce();
    expect(round.outcomes).toEqual({ 'r-1': 'placed' });
    const stored = await intents.get('r-1');
    expect(stored.ok && stored.value?.value.state).toBe('placed');
    expect(stored.ok && stored.value?.value.reply?.allocation.id).toBe(allocation?.id);
    expect(await vmsCounted()).toBe(1);

    const retry = await c1.manager.place(req('r-1'));
    if (!retry.ok) throw new Error(retry.error.message);
    expect(retry.value.nodeId).toBe('a');
    expect(retry.value.allocation.id).toBe(allocation?.id);
    expect(agents.nodes.get('a')?.commits).toBe(1);
    expect(agents.nodes.get('b')?.commits).toBe(0);
    // Settled intents are not looked at again.
    expect((await c1.reconciler.reconcileOnce()).stale).toBe(0);
  });

  it('settles a pending intent whose node holds nothing as failed and gives the quota back', async () => {
    await abandoned('r-2', 'b');
    expect(await vmsCounted()).toBe(1);
    const round = await c1.reconciler.reconcileOnce();
    expect(round.outcomes).toEqual({ 'r-2': 'failed' });
    const stored = await intents.get('r-2');
    expect(stored.ok && stored.value?.value.state).toBe('failed');
    expect(await vmsCounted()).toBe(0);
    expect(agents.nodes.get('b')?.commits).toBe(0);
    // A failed intent may be retried from the start.
    const retry = await c1.manager.place(req('r-2'));
    expect(retry.ok).toBe(true);
    expect(await vmsCounted()).toBe(1);
  });

  it('leaves a pending intent whose node does not answer, and one younger than the threshold', async () => {
    await abandoned('r-3', 'b');
    await abandoned('r-4', 'a', 0);
    agents.setDown('b', true);
    const round = await c1.reconciler.reconcileOnce();
    expect(round.outcomes).toEqual({ 'r-3': 'left' });
    for (const id of ['r-3', 'r-4']) {
      const stored = await intents.get(id);
      expect(stored.ok && stored.value?.value.state).toBe('pending');
    }
    expect(await vmsCounted()).toBe(2);
  });
});
