import { unwrap } from '@allot/core';
import { PlaceBatchRequestSchema, PlaceRequestSchema, type PlaceBatchRequestInput } from '@allot/protocol';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ReconcileConfigSchema } from './config.ts';
import { requestHash } from './intents.ts';
import { batchMembers, placeBatch } from './place-batch.ts';
import { Reconciler } from './reconciler.ts';
import { inProcessCluster, type InProcessCluster, type InProcessCoordinator } from './testing/fake-agents.ts';

/*
 * A batch left half placed by a coordinator that died mid-batch, with no client retry: the reconcilers settle it all or
 * nothing. A member failed (nothing at its fence) fails the batch: every sibling is released at its fence.
 */

const NODES = { a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 }, c: { memoryMiB: 4096, cores: 8 } };

function batch(batchId: string): PlaceBatchRequestInput {
  return {
    batchId,
    tenantId: 'acme',
    maxPerNode: 1,
    members: [0, 1, 2].map((i) => ({ requestId: `${batchId}-m${i}`, tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 } })),
  };
}

/** What a coordinator that died mid-batch got done: the batch's intents, and the allocates of the members `sent` only. */
async function diedMidBatch(cluster: InProcessCluster, batchId: string, sent: readonly number[]): Promise<void> {
  const dead = await cluster.coordinator('dead');
  dead.refresh();
  const members = batchMembers(PlaceBatchRequestSchema.parse(batch(batchId)));
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
        batch: { batchId, index: i, size: 3, first: `${batchId}-m0` },
      })),
    ),
  );
  for (const i of sent) {
    const at = created[i];
    if (at === undefined) throw new Error('no intent');
    unwrap(await dead.flow.allocateOn(at.value.nodeId, PlaceRequestSchema.parse(members[i]), 1, true));
  }
}

/** A reconciler's rounds until its pending intents are old enough, then one more. */
async function reconcile(cluster: InProcessCluster, ...cs: InProcessCoordinator[]): Promise<void> {
  await Promise.all(cs.map((c) => c.reconciler.reconcileOnce()));
  cluster.clock.advance(61_000);
  await Promise.all(cs.map((c) => c.reconciler.reconcileOnce()));
}

function live(cluster: InProcessCluster): string[] {
  return [...cluster.agents.nodes.keys()].flatMap((id) => cluster.agents.live(id).map((a) => a.requestId)).sort();
}

async function states(c: InProcessCoordinator, batchId: string): Promise<[string | undefined, string | undefined][]> {
  const out: [string | undefined, string | undefined][] = [];
  for (const i of [0, 1, 2]) {
    const v = unwrap(await c.store.get(`${batchId}-m${i}`))?.value;
    out.push([v?.state, v?.releasedBy]);
  }
  return out;
}

async function vms(c: InProcessCoordinator): Promise<number> {
  return unwrap(await c.store.usage('acme'))?.value.usage.vms ?? 0;
}

function run(cluster: InProcessCluster, c: InProcessCoordinator, batchId: string) {
  c.refresh();
  return placeBatch(
    { view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow },
    PlaceBatchRequestSchema.parse(batch(batchId)),
  );
}

describe('a batch left half placed, settled by the reconciler', () => {
  it('a member with nothing at its fence fails the batch: its siblings are released at their fences, quota back, a retry answers the failure', async () => {
    const cluster = inProcessCluster(NODES);
    await diedMidBatch(cluster, 'half', [0, 1]);
    expect(live(cluster)).toEqual(['half-m0', 'half-m1']);
    const c = await cluster.coordinator('c1');
    await reconcile(cluster, c);
    expect(live(cluster)).toEqual([]);
    expect(await states(c, 'half')).toEqual([
      ['released', 'batch'],
      ['released', 'batch'],
      ['failed', undefined],
    ]);
    expect(await vms(c)).toBe(0);
    const retried = await run(cluster, c, 'half');
    expect(!retried.ok && retried.error).toMatchObject({ details: { batchId: 'half', memberIndex: 2, requestId: 'half-m2' } });
    expect(live(cluster)).toEqual([]);
    expect(await vms(c)).toBe(0);
  });

  it('every member held on its node: the batch stands, and a retry answers its placements', async () => {
    const cluster = inProcessCluster(NODES);
    await diedMidBatch(cluster, 'whole', [0, 1, 2]);
    const c = await cluster.coordinator('c1');
    await reconcile(cluster, c);
    expect(await states(c, 'whole')).toEqual([
      ['placed', undefined],
      ['placed', undefined],
      ['placed', undefined],
    ]);
    expect(live(cluster)).toEqual(['whole-m0', 'whole-m1', 'whole-m2']);
    expect(unwrap(await run(cluster, c, 'whole')).placements).toHaveLength(3);
    expect(await vms(c)).toBe(3);
  });

  it("two coordinators' reconcilers at once: no member stays placed beside a failed one", async () => {
    const cluster = inProcessCluster(NODES);
    await diedMidBatch(cluster, 'two', [0, 1]);
    const [c1, c2] = [await cluster.coordinator('c1'), await cluster.coordinator('c2')];
    await reconcile(cluster, c1, c2);
    await Promise.all([c1.reconciler.reconcileOnce(), c2.reconciler.reconcileOnce()]);
    expect(live(cluster)).toEqual([]);
    expect((await states(c1, 'two')).filter(([s]) => s === 'placed' || s === 'pending')).toEqual([]);
    expect(await vms(c1)).toBe(0);
  });

  it('a retry while a sibling cannot be released yet (its node down) answers unavailable; the next round finishes the rollback', async () => {
    const cluster = inProcessCluster(NODES);
    await diedMidBatch(cluster, 'down', [0, 1]);
    const c = await cluster.coordinator('c1');
    await c.reconciler.reconcileOnce();
    cluster.clock.advance(61_000);
    cluster.agents.setDown('a', true);
    await c.reconciler.reconcileOnce();
    expect(live(cluster)).toEqual(['down-m0']);
    const retried = await run(cluster, c, 'down');
    expect(!retried.ok && retried.error).toMatchObject({ code: 'unavailable', details: { batchId: 'down', notReleased: ['down-m0'] } });
    cluster.agents.setDown('a', false);
    await c.reconciler.reconcileOnce();
    expect(live(cluster)).toEqual([]);
    expect(await vms(c)).toBe(0);
    const again = await run(cluster, c, 'down');
    expect(!again.ok && again.error).toMatchObject({ details: { batchId: 'down', memberIndex: 2 } });
  });

  it('a retry racing the reconcilers ends all or nothing, and answers what it ended as', async () => {
    for (const order of ['retry first', 'reconcilers first'] as const) {
      const cluster = inProcessCluster(NODES);
      await diedMidBatch(cluster, 'race', [0, 1]);
      const [c1, c2] = [await cluster.coordinator('c1'), await cluster.coordinator('c2')];
      await Promise.all([c1.reconciler.reconcileOnce(), c2.reconciler.reconcileOnce()]);
      cluster.clock.advance(61_000);
      const rounds = () => Promise.all([c1.reconciler.reconcileOnce(), c2.reconciler.reconcileOnce()]);
      const [retried] =
        order === 'retry first'
          ? await Promise.all([run(cluster, c1, 'race'), rounds()])
          : await Promise.all([rounds().then(() => run(cluster, c1, 'race'))]);
      await c1.flow.settled();
      await rounds();
      const now = live(cluster);
      expect([[], ['race-m0', 'race-m1', 'race-m2']], order).toContainEqual(now);
      expect(retried.ok, order).toBe(now.length === 3);
      expect(await vms(c1), order).toBe(now.length);
      if (order === 'reconcilers first') expect(now).toEqual([]); // the batch failed before the retry came
    }
  });

  it("a member failed on a decommissioned lost node's word fails its batch too", async () => {
    const cluster = inProcessCluster(NODES);
    await diedMidBatch(cluster, 'gone', [0, 1]);
    cluster.agents.setDown('c', true);
    const c = await cluster.coordinator('c1');
    const reconciler = new Reconciler({
      store: c.store,
      agents: cluster.agents.caller(),
      config: ReconcileConfigSchema.parse({ pendingOlderThanMs: 60_000 }),
      logger: pino({ level: 'silent' }),
      clock: cluster.clock,
      nodeGone: (n) => n === 'c',
    });
    await reconciler.reconcileOnce();
    cluster.clock.advance(61_000);
    const round = await reconciler.reconcileOnce();
    expect(round.outcomes).toMatchObject({ 'gone-m2': 'failed' });
    expect(round.batches).toEqual({ 'acme/gone': 'rolled-back' });
    expect(unwrap(await c.store.get('gone-m2'))?.value.error?.details).toMatchObject({ reason: 'node_decommissioned', batchId: 'gone' });
    expect(live(cluster)).toEqual([]);
    expect(await vms(c)).toBe(0);
  });

  it('a member released by its tenant after the batch was placed leaves the others placed', async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    unwrap(await run(cluster, c, 'kept'));
    await c.flow.settled();
    unwrap(await c.flow.release({ requestId: 'rel-kept-m1', placementRequestId: 'kept-m1', tenantId: 'acme' }));
    await reconcile(cluster, c);
    expect(live(cluster)).toEqual(['kept-m0', 'kept-m2']);
    expect(await vms(c)).toBe(2);
  });

  it("an older batch of the same id that failed does not touch a newer one's members", async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    await diedMidBatch(cluster, 'again', [0, 1]);
    cluster.agents.setDown('a', true);
    await reconcile(cluster, c); // m2 failed, m0 not released yet (its node is down)
    cluster.agents.setDown('a', false);
    const newer = batch('again');
    newer.members = newer.members.map((m, i) => ({ ...m, requestId: `again2-m${i}` }));
    c.refresh();
    const placed = await placeBatch(
      { view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow },
      PlaceBatchRequestSchema.parse({ ...newer, maxPerNode: undefined }),
    );
    expect(placed.ok).toBe(true);
    await c.flow.settled();
    await c.reconciler.reconcileOnce();
    expect(live(cluster)).toEqual(['again2-m0', 'again2-m1', 'again2-m2']);
  });
});
