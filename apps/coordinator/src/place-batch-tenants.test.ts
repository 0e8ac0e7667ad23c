import { TenantQuotaSchema, unwrap } from '@allot/core';
import { PlaceBatchRequestSchema, type PlaceBatchRequestInput } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { placeBatch } from './place-batch.ts';
import { inProcessCluster, type InProcessCluster, type InProcessCoordinator } from './testing/fake-agents.ts';

/* place.batch between tenants: one tenant's batch never shapes or reads another's. */

const NODES = { a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 } };

function batch(tenantId: string, batchId: string, n: number, more: Partial<PlaceBatchRequestInput> = {}): PlaceBatchRequestInput {
  return {
    batchId,
    tenantId,
    members: Array.from({ length: n }, (_, i) => ({
      requestId: `${tenantId}-${batchId}-m${i}`,
      tenantId,
      resources: { memoryMiB: 512, vcpus: 1 },
    })),
    ...more,
  };
}

function run(cluster: InProcessCluster, c: InProcessCoordinator, input: PlaceBatchRequestInput) {
  c.refresh();
  return placeBatch({ view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow }, PlaceBatchRequestSchema.parse(input));
}

describe('place.batch between tenants', () => {
  it("two tenants' batches of the same id spread on their own: maxPerNode counts each tenant's members only", async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    unwrap(await run(cluster, c, batch('acme', 'web', 2, { maxPerNode: 1 })));
    // Batch ids are the tenants' own names: another tenant's "web" on both nodes must not refuse this one.
    const other = await run(cluster, c, batch('other', 'web', 2, { maxPerNode: 1 }));
    expect(other.ok ? other.value.placements.map((p) => p.nodeId).sort() : other.error.message).toEqual(['a', 'b']);
  });

  it("a batch that exactly fits the quota lands; one VM more is refused whole; two coordinators' batches at once never exceed it", async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const c2 = await cluster.coordinator('c2');
    unwrap(await c1.quotas.set(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 4 })));
    unwrap(await run(cluster, c1, batch('acme', 'fits', 4)));
    const over = await run(cluster, c1, batch('acme', 'over', 1));
    expect(!over.ok && over.error.code).toBe('quota_exceeded');
    unwrap(await c1.quotas.set(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 7 })));
    // 3 left: two batches of 3 on two coordinators at once, one of them lands.
    const both = await Promise.all([run(cluster, c1, batch('acme', 'x', 3)), run(cluster, c2, batch('acme', 'y', 3))]);
    expect(both.filter((r) => r.ok)).toHaveLength(1);
    expect(both.find((r) => !r.ok)?.error).toMatchObject({ code: 'quota_exceeded' });
    expect(unwrap(await c1.store.usage('acme'))?.value.usage.vms).toBe(7);
    const live = [...cluster.agents.nodes.keys()].flatMap((id) => cluster.agents.live(id)).filter((a) => a.tenantId === 'acme');
    expect(live).toHaveLength(7);
  });

  it('a retry racing the first attempt on another coordinator answers the same placements, one allocation per member', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const c2 = await cluster.coordinator('c2');
    const [first, retry] = await Promise.all([run(cluster, c1, batch('acme', 'race', 3)), run(cluster, c2, batch('acme', 'race', 3))]);
    const ids = (r: typeof first) => (r.ok ? r.value.placements.map((p) => p.allocation.id) : r.error.code);
    expect(ids(retry)).toEqual(ids(first));
    expect(first.ok).toBe(true);
    const live = [...cluster.agents.nodes.keys()].flatMap((id) => cluster.agents.live(id)).map((a) => a.requestId);
    expect(live.sort()).toEqual(['acme-race-m0', 'acme-race-m1', 'acme-race-m2']);
    await c1.flow.settled();
    await c2.flow.settled();
    expect(unwrap(await c1.store.usage('acme'))?.value.usage.vms).toBe(3);
  });

  it("takes one token of the tenant's place rate per member (capped at a bucket's burst): a batch is not a way around the rate", async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 'acme', placeRates: [{ count: 10, per: 'minute' }] })));
    unwrap(await run(cluster, c, batch('acme', 'r1', 6)));
    // 4 tokens left of 10 a minute: 6 more VMs are 6 places, whatever the request that carries them.
    const second = await run(cluster, c, batch('acme', 'r2', 6));
    expect(!second.ok && second.error.code).toBe('rate_limited');
    expect(unwrap(await c.store.get('acme-r2-m0'))).toBeNull();
    unwrap(await run(cluster, c, batch('acme', 'r3', 4)));
  });

  it('a batch larger than the burst is admitted on a full bucket, taking all of it', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 'acme', placeRates: [{ count: 3, per: 'minute' }] })));
    unwrap(await run(cluster, c, batch('acme', 'big', 5)));
    const next = await run(cluster, c, batch('acme', 'next', 1));
    expect(!next.ok && next.error.code).toBe('rate_limited');
  });
});
