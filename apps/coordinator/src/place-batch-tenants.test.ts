import { TenantQuotaSchema, unwrap } from '@allot/core';
import { PlaceBatchRequestSchema, type PlaceBatchRequestInput } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import type { AgentCaller } from './agents.ts';
import { batchMembers, placeBatch } from './place-batch.ts';
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

  it('a retry that drove the batch on while the first attempt found a member refused keeps what it answered: the first attempt does not roll back under it', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const c2 = await cluster.coordinator('c2');
    const input = batch('acme', 'worst', 2, { maxPerNode: 1 });
    c1.refresh();
    const nodeB = cluster.agents.nodes.get('b');
    if (nodeB === undefined) throw new Error('no node b');
    // c1's allocate of the member on b gets no answer; c1 asks b at the member's fence and hears "nothing here". Right
    // then the scheduler's retry (c2) drives both members at the next fence, and b, answering again, commits it.
    let retried: Awaited<ReturnType<typeof run>> | undefined;
    const plain = cluster.agents.caller();
    const c1Agents = {
      call: async (nodeId: string, verb: string, body: unknown, opts: unknown) => {
        const answer = await (plain.call as (...a: unknown[]) => Promise<unknown>)(nodeId, verb, body, opts);
        if (verb === 'fence' && nodeId === 'b' && retried === undefined) {
          nodeB.stall.delete('allocate');
          retried = await run(cluster, c2, input);
        }
        return answer;
      },
    } as unknown as AgentCaller;
    nodeB.stall.add('allocate');
    const first = await placeBatch(
      { view: c1.view, store: c1.store, agents: c1Agents, flow: c1.flow },
      PlaceBatchRequestSchema.parse(input),
    );
    if (retried === undefined) throw new Error('the retry never ran');
    await c1.flow.settled();
    await c2.flow.settled();
    const live = [...cluster.agents.nodes.keys()].flatMap((id) => cluster.agents.live(id)).map((a) => a.requestId);
    // Whatever either attempt answered holds: placed members are live, or nothing of the batch is.
    for (const answer of [retried, first])
      if (answer.ok) expect(live.sort()).toEqual(answer.value.placements.map((p) => p.allocation.requestId).sort());
    if (!retried.ok && !first.ok) expect(live).toEqual([]);
    expect(unwrap(await c1.store.usage('acme'))?.value.usage.vms ?? 0).toBe(live.length);
  });

  it('a place naming a member of a batch in flight is refused: it would answer placed what the batch may roll back', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const c2 = await cluster.coordinator('c2');
    const input = batch('acme', 'mixed', 2, { maxPerNode: 1 });
    c1.refresh();
    c2.refresh();
    const members = batchMembers(PlaceBatchRequestSchema.parse(input));
    const nodeB = cluster.agents.nodes.get('b');
    if (nodeB === undefined) throw new Error('no node b');
    // As above, c1's allocate of the member on b (two nodes, one member each) gets no answer; while c1 asks b at its
    // fence, the same tenant places the other member's request id alone (the same request, the same fingerprint) on c2.
    let alone: Awaited<ReturnType<typeof c2.place>> | undefined;
    const plain = cluster.agents.caller();
    const c1Agents = {
      call: async (nodeId: string, verb: string, body: { requestId: string }, opts: unknown) => {
        const answer = await (plain.call as (...a: unknown[]) => Promise<unknown>)(nodeId, verb, body, opts);
        const other = members.find((m) => m.request.requestId !== body.requestId);
        if (verb === 'fence' && nodeId === 'b' && alone === undefined && other !== undefined) alone = await c2.place(other);
        return answer;
      },
    } as unknown as AgentCaller;
    nodeB.stall.add('allocate');
    const first = await placeBatch(
      { view: c1.view, store: c1.store, agents: c1Agents, flow: c1.flow },
      PlaceBatchRequestSchema.parse(input),
    );
    if (alone === undefined) throw new Error('the place never ran');
    await c1.flow.settled();
    await c2.flow.settled();
    const live = [...cluster.agents.nodes.keys()].flatMap((id) => cluster.agents.live(id)).map((a) => a.requestId);
    // The place's answer holds (before: answered placed, then released by the batch's rollback).
    expect(alone.ok ? live.length : alone.error.code).toBe(alone.ok ? 1 : 'conflict');
    expect(first.ok).toBe(false);
  });
});
