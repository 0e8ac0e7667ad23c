import {
  PlaceReplySchema,
  PlaceRequestSchema,
  schedSubject,
  TenantQuotaViewSchema,
  type PlaceRequest,
  type PlaceRequestInput,
} from '@allot/protocol';
import { requestTyped } from '@allot/nats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, waitFor, type NatsServerHandle } from '../../../test/harness/index.ts';
import type { Coordinator } from './coordinator.ts';
import type { NatsConnection } from './nats-deps.ts';
import { connectTo, ensureTestStreams, startFakeAgents, startTestCoordinator } from './testing/cluster.ts';
import type { FakeAgents } from './testing/fake-agents.ts';
import type { CoordinatorConfigInput } from './config.ts';

let server: NatsServerHandle;
let client: NatsConnection;
let agents: FakeAgents;
const closers: (() => Promise<void>)[] = [];

async function coordinator(config: CoordinatorConfigInput): Promise<Coordinator> {
  const c = await startTestCoordinator(server.url, config);
  closers.push(async () => {
    await c.coordinator.stop();
    await c.nc.close();
  });
  return c.coordinator;
}

/** A place as the place verb asks it of the coordinator's ClusterManager. */
function placeOn(c: Coordinator, r: PlaceRequest) {
  return c.manager.allocate(r.request, r.placement);
}

function req(requestId: string, tenantId: string, extra: Partial<PlaceRequestInput['request']> = {}) {
  return PlaceRequestSchema.parse({ request: { requestId, tenantId, resources: { memoryMiB: 128, vcpus: 1 }, ...extra } });
}

async function setQuota(quota: Record<string, unknown>) {
  const r = await requestTyped(
    client,
    schedSubject('quota.set'),
    { requestId: `q-${String(quota['tenantId'])}`, quota },
    TenantQuotaViewSchema,
    { timeoutMs: 5_000 },
  );
  if (!r.ok) throw new Error(r.error.message);
}

beforeEach(async () => {
  server = await startNatsServer();
  client = await connectTo(server.url, 'test-client');
  await ensureTestStreams(client);
  agents = await startFakeAgents(client, { a: { memoryMiB: 65536, cores: 64 }, b: { memoryMiB: 65536, cores: 64 } }, { heartbeatMs: 100 });
  await agents.start();
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  agents.stop();
  await client.close();
  await cleanupAll();
});

describe('tenant quotas', () => {
  it('never admits more than the quota, with concurrent places spread over two coordinators', async () => {
    const c1 = await coordinator({ coordinatorId: 'c1' });
    const c2 = await coordinator({ coordinatorId: 'c2' });
    await setQuota({ tenantId: 'acme', maxVms: 5 });
    await waitFor(() => c1.quotas.quotaOf('acme') && c2.quotas.quotaOf('acme'), { message: 'both coordinators to see the quota' });
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => placeOn(i % 2 === 0 ? c1 : c2, req(`acme-${i}`, 'acme'))));
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    for (const r of results) if (!r.ok) expect(r.error.code).toBe('quota_exceeded');
    expect(agents.live('a').length + agents.live('b').length).toBe(5);
    const view = await c1.quotas.get('acme');
    expect(view.ok && view.value.usage.vms).toBe(5);
  });

  it('refuses over a limit with the limit named and the figures', async () => {
    await coordinator({ coordinatorId: 'c1' });
    await setQuota({ tenantId: 'small', maxVcpus: 3 });
    const place = (id: string, vcpus: number) =>
      requestTyped(
        client,
        schedSubject('place', 'small'),
        { request: { requestId: id, tenantId: 'small', resources: { memoryMiB: 64, vcpus } } },
        PlaceReplySchema,
        { timeoutMs: 5_000 },
      );
    await waitFor(async () => (await place('s-1', 2)).ok, { message: 'the quota to be in force' });
    const r = await place('s-2', 2);
    if (r.ok) throw new Error('expected quota_exceeded');
    expect(r.error.code).toBe('quota_exceeded');
    expect(r.error.details).toMatchObject({ tenantId: 'small', limit: 'maxVcpus', limitValue: 3, current: 2, requested: 2 });
  });

  it('counts a retried place once', async () => {
    const c1 = await coordinator({ coordinatorId: 'c1' });
    await setQuota({ tenantId: 'once', maxVms: 1 });
    await waitFor(() => c1.quotas.quotaOf('once'));
    expect((await placeOn(c1, req('o-1', 'once'))).ok).toBe(true);
    expect((await placeOn(c1, req('o-1', 'once'))).ok).toBe(true);
    const over = await placeOn(c1, req('o-2', 'once'));
    expect(over.ok ? 'ok' : over.error.code).toBe('quota_exceeded');
    const view = await c1.quotas.get('once');
    expect(view.ok && view.value.usage.vms).toBe(1);
  });

  it('gives the quota back when the chosen node refused and nothing was placed', async () => {
    const c1 = await coordinator({ coordinatorId: 'c1' });
    await setQuota({ tenantId: 'back', maxVms: 1 });
    await waitFor(() => c1.quotas.quotaOf('back'));
    // Node a is full behind the view's back: the quota is reserved for a, a refuses, the quota must come back.
    const a = agents.nodes.get('a');
    if (!a) throw new Error('no node a');
    a.memoryCommitted = a.spec.memoryMiB;
    const refused = await placeOn(
      c1,
      PlaceRequestSchema.parse({
        request: { requestId: 'k-1', tenantId: 'back', resources: { memoryMiB: 128, vcpus: 1 } },
        placement: { strategy: 'manual', nodeId: 'a' },
      }),
    );
    expect(refused.ok ? 'ok' : refused.error.code).toBe('insufficient_capacity');
    a.memoryCommitted = 0;
    const after = await c1.quotas.get('back');
    expect(after.ok && after.value.usage.vms).toBe(0);
    expect((await placeOn(c1, req('k-2', 'back'))).ok).toBe(true);
  });
});

describe('rate limits', () => {
  it('refuses the place past the tenant rate with rate_limited, the rate and the wait', async () => {
    const c1 = await coordinator({ coordinatorId: 'c1' });
    await setQuota({ tenantId: 'busy', placeRates: [{ count: 2, per: 'minute' }] });
    await waitFor(() => c1.quotas.quotaOf('busy'));
    expect((await placeOn(c1, req('b-1', 'busy'))).ok).toBe(true);
    expect((await placeOn(c1, req('b-2', 'busy'))).ok).toBe(true);
    const r = await placeOn(c1, req('b-3', 'busy'));
    if (r.ok) throw new Error('expected rate_limited');
    expect(r.error.code).toBe('rate_limited');
    expect(r.error.details).toMatchObject({ tenantId: 'busy', operation: 'place', rate: { count: 2, per: 'minute' } });
    const wait = r.error.details?.['retryAfterMs'] as number;
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(30_000);
    // A retry of an admitted request is not a new request: it is answered, not rate limited.
    expect((await placeOn(c1, req('b-1', 'busy'))).ok).toBe(true);
  });
});

describe('node liveness', () => {
  it('turns a silent node suspect then lost, places nothing there, and brings it back when it reports', async () => {
    const events: string[] = [];
    const sub = client.subscribe('allot.events.cluster.>', { callback: (_e, m) => void events.push(m.subject) });
    const c1 = await coordinator({ coordinatorId: 'c1', liveness: { suspectAfterMs: 400, lostAfterMs: 1_200, checkEveryMs: 50 } });
    expect(c1.view.get('b')?.liveness).toBe('ready');
    agents.setDown('b', true);
    await waitFor(() => c1.view.get('b')?.liveness === 'suspect', { message: 'b suspect' });
    for (let i = 0; i < 4; i++) {
      const r = await placeOn(c1, req(`l-${i}`, 't'));
      expect(r.ok && r.value.nodeId).toBe('a');
    }
    await waitFor(() => c1.view.get('b')?.liveness === 'lost', { message: 'b lost' });
    agents.setDown('b', false);
    await waitFor(() => c1.view.get('b')?.liveness === 'ready', { message: 'b ready again' });
    await waitFor(() => events.includes('allot.events.cluster.node_returned'), { message: 'the node_returned event' });
    expect(events.slice(0, 3)).toEqual([
      'allot.events.cluster.node_suspect',
      'allot.events.cluster.node_lost',
      'allot.events.cluster.node_returned',
    ]);
    sub.unsubscribe();
  });

  it('counts a suspect node as not ready in the refusal', async () => {
    const c1 = await coordinator({ coordinatorId: 'c1', liveness: { suspectAfterMs: 300, lostAfterMs: 60_000, checkEveryMs: 50 } });
    agents.setDown('b', true);
    await waitFor(() => c1.view.get('b')?.liveness === 'suspect');
    const r = await placeOn(c1, req('big', 't', { resources: { memoryMiB: 70_000, vcpus: 1 } }));
    expect(r.ok ? 'ok' : r.error.message).toBe('0/2 nodes are available: 1 Insufficient memory, 1 node not ready.');
  });
});
