import { TenantQuotaSchema, unwrap } from '@allot/core';
import { decideBatch } from '@allot/placement';
import {
  PlaceBatchRequestSchema,
  PlaceRequestSchema,
  type PlaceBatchRequest,
  type PlaceBatchRequestInput,
  type PlaceRequest,
} from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { requestHash } from './intents.ts';
import { batchMembers, placeBatch } from './place-batch.ts';
import { inProcessCluster, type InProcessCluster, type InProcessCoordinator } from './testing/fake-agents.ts';

/* place.batch over in-process fake agents and a MemoryBucket: all or nothing, quota for the whole batch, retries. */

const NODES = { a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 }, c: { memoryMiB: 4096, cores: 8 } };

function batch(batchId: string, n: number, more: Partial<PlaceBatchRequestInput> = {}): PlaceBatchRequestInput {
  return {
    batchId,
    tenantId: 'acme',
    members: Array.from({ length: n }, (_, i) => ({
      requestId: `${batchId}-m${i}`,
      tenantId: 'acme',
      resources: { memoryMiB: 1024, vcpus: 1 },
    })),
    ...more,
  };
}

function run(cluster: InProcessCluster, c: InProcessCoordinator, input: PlaceBatchRequestInput) {
  c.refresh();
  return placeBatch({ view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow }, PlaceBatchRequestSchema.parse(input));
}

function live(cluster: InProcessCluster): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const id of cluster.agents.nodes.keys()) out[id] = cluster.agents.live(id).map((a) => a.requestId);
  return out;
}

/** The nodes placeBatch would decide for `req` on `c`'s view now (decideBatch over its members, as placeBatch calls it). */
function dryRun(c: InProcessCoordinator, req: PlaceBatchRequest): { nodes: readonly string[] } {
  const members = batchMembers(req);
  const dry = unwrap(
    decideBatch(
      c.view.index,
      members.map((m) => m.request),
      (members[0] as PlaceRequest).placement,
      c.flow.contextFor(members[0] as PlaceRequest),
    ),
  );
  if (!dry.fits) throw new Error('the dry run should fit');
  return dry;
}

async function vms(c: InProcessCoordinator): Promise<number> {
  const u = unwrap(await c.store.usage('acme'));
  return u?.value.usage.vms ?? 0;
}

describe('place.batch', () => {
  it('places every member, at most maxPerNode of them per node, counted at once', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    const placed = unwrap(await run(cluster, c, batch('b1', 3, { maxPerNode: 1 })));
    expect(placed.placements.map((p) => p.allocation.requestId)).toEqual(['b1-m0', 'b1-m1', 'b1-m2']);
    expect(new Set(placed.placements.map((p) => p.nodeId)).size).toBe(3);
    expect(await vms(c)).toBe(3);
    await c.flow.settled();
    for (const i of [0, 1, 2]) expect(unwrap(await c.store.get(`b1-m${i}`))?.value.state).toBe('placed');
  });

  it('a retried batch answers the same placements and commits nothing new', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    const first = unwrap(await run(cluster, c, batch('b2', 3)));
    const commits = [...cluster.agents.nodes.values()].reduce((s, n) => s + n.commits, 0);
    const again = unwrap(await run(cluster, c, batch('b2', 3)));
    expect(again.placements.map((p) => p.allocation.id)).toEqual(first.placements.map((p) => p.allocation.id));
    await c.flow.settled();
    const fromStore = unwrap(await run(cluster, await cluster.coordinator('c2'), batch('b2', 3)));
    expect(fromStore.placements.map((p) => p.allocation.id)).toEqual(first.placements.map((p) => p.allocation.id));
    expect([...cluster.agents.nodes.values()].reduce((s, n) => s + n.commits, 0)).toBe(commits);
    expect(await vms(c)).toBe(3);
  });

  it('refuses the whole batch when the last member does not fit, writing nothing', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    const refused = await run(cluster, c, batch('b3', 4, { maxPerNode: 1 }));
    expect(!refused.ok && refused.error).toMatchObject({ code: 'insufficient_capacity', details: { memberIndex: 3, requestId: 'b3-m3' } });
    expect(live(cluster)).toEqual({ a: [], b: [], c: [] });
    expect(unwrap(await c.store.get('b3-m0'))).toBeNull();
  });

  it("checks the tenant's quota for the whole batch: over it, nothing is placed", async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 2 })));
    const refused = await run(cluster, c, batch('b4', 3));
    expect(!refused.ok && refused.error).toMatchObject({
      code: 'quota_exceeded',
      details: { limit: 'maxVms', memberIndex: 2, batchId: 'b4' },
    });
    expect(live(cluster)).toEqual({ a: [], b: [], c: [] });
    expect(await vms(c)).toBe(0);
    expect(unwrap(await run(cluster, c, batch('b5', 2))).placements).toHaveLength(2);
  });

  it('a member refused by its agent moves to its next candidate (the view was stale): the batch is placed whole, one allocation per member', async () => {
    const cluster = inProcessCluster({ ...NODES, d: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    c.refresh();
    const req = PlaceBatchRequestSchema.parse(batch('b9', 3, { maxPerNode: 1 }));
    const dry = dryRun(c, req);
    const first = dry.nodes[0] as string;
    // The node decided for member 0 is cordoned on its agent after the view saw it: the agent refuses (fence journaled).
    (cluster.agents.nodes.get(first) as { cordoned: boolean }).cordoned = true;
    const placed = unwrap(await placeBatch({ view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow }, req));
    const nodes = placed.placements.map((p) => p.nodeId);
    expect(nodes).not.toContain(first);
    expect(new Set(nodes).size).toBe(3);
    expect(await vms(c)).toBe(3);
    await c.flow.settled();
    expect(unwrap(await c.store.get('b9-m0'))?.value).toMatchObject({ state: 'placed', refusedBy: [first], attempt: 2, nodeId: nodes[0] });
    for (const [i, nodeId] of nodes.entries()) expect(cluster.agents.live(nodeId).map((a) => a.requestId)).toContain(`b9-m${i}`);
    expect(Object.values(live(cluster)).flat().sort()).toEqual(['b9-m0', 'b9-m1', 'b9-m2']);
    // A retry of the batch answers the same placements (member 0 where it moved), allocating nothing more.
    const again = unwrap(await placeBatch({ view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow }, req));
    expect(again.placements.map((p) => p.allocation.id)).toEqual(placed.placements.map((p) => p.allocation.id));
    expect(await vms(c)).toBe(3);
    // The per-node count followed member 0 off the node that refused it.
    const perNode = unwrap(await c.store.usage('acme'))?.value.usage.vmsPerNode;
    expect(perNode).toEqual(Object.fromEntries(nodes.map((n) => [n, 1])));
  });

  it('a member committed on its node and ended there before its fence was asked (preempted) is not placed again elsewhere: one allocation per request id', async () => {
    const cluster = inProcessCluster({ ...NODES, d: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
    c.refresh();
    const req = PlaceBatchRequestSchema.parse(batch('b10', 2, { maxPerNode: 1 }));
    const dry = dryRun(c, req);
    const first = dry.nodes[0] as string;
    // Member 0's allocate commits but its reply is lost; before the batch asks at its fence, the allocation is released
    // there (a preemption by a higher priority place): the node answers the ended allocation, holding nothing live.
    (cluster.agents.nodes.get(first) as { loseReplies: number }).loseReplies = 1;
    const inner = cluster.agents.caller();
    const call = async (nodeId: string, verb: string, body: { requestId?: string }, opts?: unknown) => {
      if (verb === 'fence' && nodeId === first && body.requestId === 'b10-m0')
        unwrap(await inner.call(nodeId, 'release', { requestId: 'preempt-b10-m0', allocationRequestId: 'b10-m0' } as never));
      return inner.call(nodeId, verb as never, body as never, opts as never);
    };
    const placed = await placeBatch({ view: c.view, store: c.store, agents: { call } as never, flow: c.flow }, req);
    expect(placed.ok).toBe(false); // all or nothing: member 0 is not placed, so neither is the batch
    await c.flow.settled();
    const everywhere = [...cluster.agents.nodes.keys()].flatMap((n) =>
      [...(cluster.agents.nodes.get(n)?.byRequest.values() ?? [])].filter((a) => a.requestId === 'b10-m0'),
    );
    expect(everywhere.map((a) => a.id.split(':')[0])).toEqual([first]);
  });

  it('a member moves on only within its failure domain when the batch spreads over domains: the spread holds', async () => {
    const zoned = (zone: string) => ({ memoryMiB: 4096, cores: 8, labels: { zone } });
    const cluster = inProcessCluster({ a: zoned('z1'), b: zoned('z1'), c: zoned('z2'), d: zoned('z2'), e: zoned('z3'), f: zoned('z3') });
    const c = await cluster.coordinator('c1');
    c.refresh();
    const req = PlaceBatchRequestSchema.parse(batch('b11', 3, { placement: { topologySpread: { topologyKey: 'zone', maxSkew: 1 } } }));
    const dry = dryRun(c, req);
    const zoneOf = (n: string) => ({ a: 'z1', b: 'z1', c: 'z2', d: 'z2', e: 'z3', f: 'z3' })[n] as string;
    expect(new Set(dry.nodes.map(zoneOf)).size).toBe(3);
    // Member 0's whole zone is cordoned on its agents after the view saw it: leaving the zone would put two members in
    // another one and none in its own (skew 2 > 1).
    const zone = zoneOf(dry.nodes[0] as string);
    for (const n of ['a', 'b', 'c', 'd', 'e', 'f'])
      if (zoneOf(n) === zone) (cluster.agents.nodes.get(n) as { cordoned: boolean }).cordoned = true;
    const placed = await placeBatch({ view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow }, req);
    await c.flow.settled();
    const perZone = new Map<string, number>();
    for (const n of Object.keys(live(cluster)))
      for (const _ of cluster.agents.live(n)) perZone.set(zoneOf(n), (perZone.get(zoneOf(n)) ?? 0) + 1);
    const counts = ['z1', 'z2', 'z3'].map((z) => perZone.get(z) ?? 0);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(placed.ok).toBe(false);
  });

  it('a member of a batch held on one node (required affinity to its own group) does not move on alone', async () => {
    const cluster = inProcessCluster({
      a: { memoryMiB: 8192, cores: 8 },
      b: { memoryMiB: 4096, cores: 8 },
      c: { memoryMiB: 4096, cores: 8 },
    });
    const c = await cluster.coordinator('c1');
    c.refresh();
    const placement = { strategy: 'spread' as const, group: { name: 'g', maxPerNode: 8 }, affinity: [{ group: 'g' }] };
    const input = batch('b12', 2, { placement });
    (input.members[0] as { resources: { memoryMiB: number } }).resources.memoryMiB = 2048;
    // Both go to a (the most free, then beside member 0); a's room shrinks after the view saw it: member 0 (2 GiB) is
    // refused there, member 1 (1 GiB) is not.
    (cluster.agents.nodes.get('a') as { spec: { memoryMiB: number; cores: number } }).spec = { memoryMiB: 1536, cores: 8 };
    const placed = await placeBatch(
      { view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow },
      PlaceBatchRequestSchema.parse(input),
    );
    await c.flow.settled();
    const nodes = Object.entries(live(cluster)).flatMap(([n, ids]) => (ids.length > 0 ? [n] : []));
    expect(nodes.length).toBeLessThanOrEqual(1);
    expect(placed.ok).toBe(false);
  });

  it('one agent refusing rolls the others back: released on their nodes, quota back, and a retry answers the same error', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    c.refresh();
    // c's agent is cordoned after the view saw it: the view offers it, the agent refuses (fence journaled).
    const nodeC = cluster.agents.nodes.get('c');
    if (nodeC === undefined) throw new Error('no node c');
    const view = c.view;
    const refresh = c.refresh;
    nodeC.cordoned = true;
    const failed = await placeBatch(
      { view, store: c.store, agents: cluster.agents.caller(), flow: c.flow },
      PlaceBatchRequestSchema.parse(batch('b6', 3, { maxPerNode: 1 })),
    );
    expect(!failed.ok && failed.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { batchId: 'b6', nodeId: 'c', cordoned: true, nodeCode: 'unavailable' },
    });
    expect(!failed.ok && failed.error.message).toContain('the batch placed nothing');
    expect(live(cluster)).toEqual({ a: [], b: [], c: [] });
    expect(await vms(c)).toBe(0);
    const states = await Promise.all([0, 1, 2].map(async (i) => unwrap(await c.store.get(`b6-m${i}`))?.value));
    expect(states.map((s) => [s?.nodeId, s?.state, s?.releasedBy])).toEqual(
      expect.arrayContaining([
        ['c', 'failed', undefined],
        ['a', 'released', 'batch'],
        ['b', 'released', 'batch'],
      ]),
    );
    nodeC.cordoned = false;
    refresh();
    const retried = await placeBatch(
      { view, store: c.store, agents: cluster.agents.caller(), flow: c.flow },
      PlaceBatchRequestSchema.parse(batch('b6', 3, { maxPerNode: 1 })),
    );
    expect(!retried.ok && retried.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { batchId: 'b6', memberIndex: failed.ok ? -1 : failed.error.details?.['memberIndex'] },
    });
    expect(live(cluster)).toEqual({ a: [], b: [], c: [] });
  });

  // A coordinator that dies mid-batch with no retry: place-batch-settle.test.ts (the reconcilers settle it all or nothing).

  it('a member whose allocate reply is lost is asked at its fence and found held: the batch is placed', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
    const nodeB = cluster.agents.nodes.get('b');
    if (nodeB === undefined) throw new Error('no node b');
    nodeB.loseReplies = 1;
    const placed = unwrap(await run(cluster, c, batch('lost', 3, { maxPerNode: 1 })));
    expect(placed.placements.map((p) => p.nodeId).sort()).toEqual(['a', 'b', 'c']);
    expect(await vms(c)).toBe(3);
  });

  it('a member whose allocate never reached its agent is fenced there, found absent, and the batch rolls back at once', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
    const nodeB = cluster.agents.nodes.get('b');
    if (nodeB === undefined) throw new Error('no node b');
    nodeB.stall.add('allocate');
    const failed = await run(cluster, c, batch('stalled', 3, { maxPerNode: 1 }));
    expect(!failed.ok && failed.error).toMatchObject({
      code: 'insufficient_capacity',
      details: { batchId: 'stalled', nodeId: 'b', nodeCode: 'timeout' },
    });
    expect(!failed.ok && failed.error.message).toContain('the batch placed nothing');
    expect(live(cluster)).toEqual({ a: [], b: [], c: [] });
    expect(await vms(c)).toBe(0);
    // The late allocate arrives after the fence: refused, nothing commits there.
    nodeB.stall.delete('allocate');
    const late = cluster.agents.deliverStalled('b');
    expect(late.every((r) => !r.ok && r.error.details?.['reason'] === 'fenced')).toBe(true);
    expect(live(cluster)).toEqual({ a: [], b: [], c: [] });
  });

  it('a retry after the tenant released one member answers conflict and leaves the others placed', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    unwrap(await run(cluster, c, batch('kept', 3)));
    await c.flow.settled();
    unwrap(await c.flow.release({ requestId: 'rel-kept-m1', placementRequestId: 'kept-m1', tenantId: 'acme' }));
    const retried = await run(cluster, c, batch('kept', 3));
    expect(!retried.ok && retried.error).toMatchObject({
      code: 'conflict',
      details: { memberIndex: 1, requestId: 'kept-m1', state: 'released' },
    });
    expect(Object.values(live(cluster)).flat().sort()).toEqual(['kept-m0', 'kept-m2']);
    expect(await vms(c)).toBe(2);
  });

  it("a retry after one member's reservation expired on its node answers conflict, ends that one only, and keeps the others", async () => {
    const cluster = inProcessCluster(NODES);
    const dead = await cluster.coordinator('dead');
    dead.refresh();
    const held = batch('held', 3, { maxPerNode: 1 });
    const input = { ...held, members: held.members.map((m) => ({ ...m, reservation: { ttlMs: 60_000 } })) };
    const req = PlaceBatchRequestSchema.parse(input);
    const members = batchMembers(req);
    // A batch answered by a coordinator that died before its `placed` writes: pending intents, every member held.
    const created = unwrap(
      await dead.store.createBatch(
        members.map((m, i) => ({
          requestId: m.request.requestId,
          tenantId: 'acme',
          hash: requestHash(m),
          nodeId: ['a', 'b', 'c'][i] as string,
          memoryMiB: 1024,
          vcpus: 1,
          asked: m,
          batch: { batchId: 'held', index: i, size: 3 },
        })),
      ),
    );
    for (const [i, at] of created.entries())
      unwrap(await dead.flow.allocateOn(at.value.nodeId, PlaceRequestSchema.parse(members[i]), 1, true));
    cluster.agents.expire('a', 'held-m0');
    const c = await cluster.coordinator('c1');
    const retried = await run(cluster, c, input);
    expect(!retried.ok && retried.error).toMatchObject({
      code: 'conflict',
      details: { memberIndex: 0, requestId: 'held-m0', state: 'released' },
    });
    expect(Object.values(live(cluster)).flat().sort()).toEqual(['held-m1', 'held-m2']);
    expect(await vms(c)).toBe(2);
  });

  it('refuses request ids another batch or place used, naming the member', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    unwrap(await c.place({ request: { requestId: 'b8-m1', tenantId: 'acme', resources: { memoryMiB: 512, vcpus: 1 } } }));
    const refused = await run(cluster, c, batch('b8', 2));
    expect(!refused.ok && refused.error).toMatchObject({ code: 'conflict', details: { memberIndex: 1, requestId: 'b8-m1' } });
    expect(live(cluster).a?.concat(live(cluster).b ?? [], live(cluster).c ?? [])).toEqual(['b8-m1']);
  });

  it('many batches of one tenant in flight on one coordinator all land, counted once each (they share the group commit)', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 1 << 20, cores: 4096 }, b: { memoryMiB: 1 << 20, cores: 4096 } });
    const c = await cluster.coordinator('c1');
    c.refresh();
    const deps = { view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow };
    const all = await Promise.all(
      Array.from({ length: 100 }, (_, i) => placeBatch(deps, PlaceBatchRequestSchema.parse(batch(`many-${i}`, 3)))),
    );
    expect(all.filter((r) => !r.ok).map((r) => !r.ok && r.error.message)).toEqual([]);
    expect(await vms(c)).toBe(300);
  });

  it('rejects a batch naming one request id twice, or another tenant', () => {
    const twice = batch('b9', 2);
    const dup = { ...twice, members: [twice.members[0], twice.members[0]] };
    expect(PlaceBatchRequestSchema.safeParse(dup).success).toBe(false);
    const other = { ...twice, members: [{ ...twice.members[0], tenantId: 'other' }] };
    expect(PlaceBatchRequestSchema.safeParse(other).success).toBe(false);
  });
});
