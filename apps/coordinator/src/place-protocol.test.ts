import { err, TenantQuotaSchema, type Result } from '@allot/core';
import { PlaceRequestSchema, type PlaceRequestInput } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { requestHash } from './intents.ts';
import { moveAllocation } from './moves/move.ts';
import type { Bucket, BucketWrite } from './store/bucket.ts';
import { inProcessCluster, type InProcessCluster } from './testing/fake-agents.ts';

/*
 * The place protocol over a MemoryBucket and in-process fake agents that keep the fencing contract: every interleaving
 * here is driven step by step, no NATS, no timers.
 */

const NODES = { a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 }, c: { memoryMiB: 4096, cores: 8 } };

function req(requestId: string, extra: Partial<PlaceRequestInput> = {}, tenantId = 'acme'): PlaceRequestInput {
  return { request: { requestId, tenantId, resources: { memoryMiB: 512, vcpus: 1 } }, ...extra };
}

function on(nodeId: string): Partial<PlaceRequestInput> {
  return { placement: { strategy: 'manual', nodeId } };
}

/** A bucket whose writes fail (`unavailable`, nothing stored) while `failing` is set. */
function flaky(inner: Bucket): Bucket & { failing: boolean } {
  const b = {
    failing: false,
    get: (key: string) => inner.get(key),
    write: (writes: readonly BucketWrite[]): Promise<Result<number[]>> =>
      b.failing ? Promise.resolve(err('unavailable', 'KV did not answer')) : inner.write(writes),
    watch: inner.watch.bind(inner),
  };
  return b;
}

/**
 * A bucket that holds back every single-intent write (the deferred `placed` compare-and-set; counting transitions are
 * batches with the usage record) until `open()`, or fails them (`unavailable`, nothing stored) while `failing` is set.
 */
function holdingPlaced(inner: Bucket): Bucket & { failing: boolean; open(): void } {
  let held: (() => void)[] = [];
  const b = {
    failing: false,
    get: (key: string) => inner.get(key),
    write: (writes: readonly BucketWrite[]): Promise<Result<number[]>> => {
      if (writes.length !== 1 || !(writes[0] as BucketWrite).key.startsWith('intent.')) return inner.write(writes);
      if (b.failing) return Promise.resolve(err('unavailable', 'KV did not answer'));
      return new Promise((resolve) => held.push(() => resolve(inner.write(writes))));
    },
    watch: inner.watch.bind(inner),
    open() {
      for (const release of held) release();
      held = [];
    },
  };
  return b;
}

async function usage(cluster: InProcessCluster, tenantId = 'acme') {
  const c = await cluster.coordinator('reader');
  const u = await c.store.usage(tenantId);
  if (!u.ok) throw new Error(u.error.message);
  return u.value?.value.usage ?? { vms: 0, vcpus: 0, memoryMiB: 0, vmsPerNode: {} };
}

function liveCount(cluster: InProcessCluster, requestId: string): number {
  return [...cluster.agents.nodes.keys()].flatMap((n) => cluster.agents.live(n)).filter((a) => a.requestId === requestId).length;
}

/** What a coordinator that died mid-place leaves: the intent pending on `nodeId` at attempt 1, counted. */
async function abandoned(cluster: InProcessCluster, requestId: string, nodeId: string) {
  const dead = await cluster.coordinator('dead');
  const r = PlaceRequestSchema.parse(req(requestId));
  const created = await dead.store.create({ requestId, tenantId: 'acme', hash: requestHash(r), nodeId, memoryMiB: 512, vcpus: 1 });
  if (!created.ok) throw new Error(created.error.message);
  return { request: r, intent: created.value };
}

/** The allocate the dead coordinator sent (fence 1), delivered now. */
function lateAllocate(cluster: InProcessCluster, nodeId: string, request: ReturnType<typeof PlaceRequestSchema.parse>, fence = 1) {
  return cluster.agents.caller().call(nodeId, 'allocate', { ...request.request, fence });
}

describe('place protocol: fencing', () => {
  it('answers attempts = nodes asked, and the allocation carries the fence it was driven at', async () => {
    const cluster = inProcessCluster(NODES);
    const a = cluster.agents.nodes.get('a');
    if (a === undefined) throw new Error('no a');
    a.memoryCommitted = 1024; // the most used node: binpack's first choice
    const c1 = await cluster.coordinator('c1');
    a.memoryCommitted = a.spec.memoryMiB; // then full behind the view's back: a refuses, the place moves on
    const r = await c1.flow.place(PlaceRequestSchema.parse(req('p1', { placement: { strategy: 'binpack' } })));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.attempts).toBe(2);
    expect(r.value.allocation.fence).toBe(2);
  });

  it('refuses an allocate from a dead coordinator that arrives after its node refused and the place moved on (closes the residual risk)', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const { request } = await abandoned(cluster, 'p2', 'a');
    const a = cluster.agents.nodes.get('a');
    if (a === undefined) throw new Error('no a');
    const room = a.memoryCommitted;
    a.memoryCommitted = a.spec.memoryMiB;
    const r = await c1.place(req('p2')); // follows the pending intent: a refuses at fence 2, the place moves to b
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.nodeId).not.toBe('a');
    a.memoryCommitted = room;
    const late = await lateAllocate(cluster, 'a', request); // the dead coordinator's fence-1 allocate, delayed on a route
    expect(!late.ok && late.error.details).toMatchObject({ reason: 'fenced' });
    expect(liveCount(cluster, 'p2')).toBe(1);
  });

  it('settles two coordinators driving the same pending intent at once to one allocation, counted once', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const c2 = await cluster.coordinator('c2');
    await abandoned(cluster, 'p3', 'b');
    const [r1, r2] = await Promise.all([c1.place(req('p3')), c2.place(req('p3'))]);
    if (!r1.ok || !r2.ok) throw new Error(`${JSON.stringify(r1)} ${JSON.stringify(r2)}`);
    expect(r1.value.allocation.id).toBe(r2.value.allocation.id);
    expect(liveCount(cluster, 'p3')).toBe(1);
    expect((await usage(cluster)).vms).toBe(1);
  });
});

describe('place protocol: findings', () => {
  it('a KV error while following a pending intent answers unavailable and leaves it pending, never failed (finding 6)', async () => {
    const cluster = inProcessCluster(NODES);
    const bucket = flaky(cluster.bucket);
    const c1 = await cluster.coordinator('c1', { bucket });
    const { request } = await abandoned(cluster, 'p4', 'a');
    expect((await lateAllocate(cluster, 'a', request)).ok).toBe(true); // the dead coordinator's allocate committed on a
    bucket.failing = true;
    const r = await c1.place(req('p4'));
    expect(!r.ok && r.error.code).toBe('unavailable');
    bucket.failing = false;
    const stored = await c1.store.get('p4');
    expect(stored.ok && stored.value?.value.state).toBe('pending');
    // The retry finds the allocation on a, not a second copy elsewhere.
    const retry = await c1.place(req('p4'));
    expect(retry.ok && retry.value.nodeId).toBe('a');
    expect(liveCount(cluster, 'p4')).toBe(1);
    expect((await usage(cluster)).vms).toBe(1);
  });

  it('never moves a placement on an agent answer that proves nothing of an earlier allocate (a stopped host): the VM is not placed twice nor counted once for two', async () => {
    const cluster = inProcessCluster(NODES);
    // Node a's host manager has stopped while its service still answers: "unavailable", no fence journaled.
    const agents = cluster.agents.caller();
    cluster.agents.caller = () => ({
      call: ((nodeId: string, verb: string, request: unknown, opts?: unknown) =>
        nodeId === 'a' && verb === 'allocate'
          ? Promise.resolve(err('unavailable', 'host-manager is stopped'))
          : agents.call(nodeId as never, verb as never, request as never, opts as never)) as typeof agents.call,
    });
    const c1 = await cluster.coordinator('c1');
    const { request } = await abandoned(cluster, 'p10', 'a');
    expect((await agents.call('a', 'allocate', { ...request.request, fence: 1 })).ok).toBe(true); // the dead coordinator's allocate committed on a
    const r = await c1.place(req('p10'));
    expect(r.ok).toBe(false); // a may hold it: the retry asks a again
    expect(liveCount(cluster, 'p10')).toBe(1);
    const stored = await c1.store.get('p10');
    expect(stored.ok && stored.value?.value).toMatchObject({ state: 'pending', nodeId: 'a' });
    expect((await usage(cluster)).vms).toBe(1);
  });

  it('never accepts a released allocation as a placement: the intent becomes released and the client hears conflict (finding 7)', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const { request } = await abandoned(cluster, 'p5', 'a');
    expect((await lateAllocate(cluster, 'a', request)).ok).toBe(true);
    // Released on the agent directly (the allocation is retained as released for the same request id).
    expect((await cluster.agents.caller().call('a', 'release', { requestId: 'rel-p5', allocationRequestId: 'p5' })).ok).toBe(true);
    const r = await c1.place(req('p5'));
    expect(!r.ok && r.error.code).toBe('conflict');
    const stored = await c1.store.get('p5');
    expect(stored.ok && stored.value?.value).toMatchObject({ state: 'released', releasedBy: 'agent' });
    expect((await usage(cluster)).vms).toBe(0);
  });

  it('gives the quota back when a reservation placed through the coordinator expired on its node (findings 5a, 7)', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const held = await c1.place(
      req('p6', {
        ...on('a'),
        request: { requestId: 'p6', tenantId: 'acme', resources: { memoryMiB: 512, vcpus: 1 }, reservation: { ttlMs: 1_000 } },
      }),
    );
    if (!held.ok) throw new Error(held.error.message);
    expect(held.value.allocation.status).toBe('reserved');
    cluster.agents.expire('a', 'p6');
    // The stored placed intent answers retries as before; the reconciler (or the events consumer) settles the expiry.
    const settled = await c1.store.get('p6');
    if (!settled.ok || settled.value === null) throw new Error('no intent');
    const fenced = await cluster.agents.caller().call('a', 'fence', { requestId: 'p6', fence: settled.value.value.attempt });
    expect(fenced.ok && fenced.value.allocation?.status).toBe('released');
    const released = await c1.store.released(settled.value, 'expiry');
    expect(released.ok).toBe(true);
    expect((await usage(cluster)).vms).toBe(0);
  });

  it('counts a place on one coordinator and its release on another exactly, whatever each had seen (finding 5c)', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const c2 = await cluster.coordinator('c2');
    // c2's copy of the usage record is older than c1's write (a watch that has not delivered yet).
    const stale = await c2.store.usage('acme');
    expect(stale.ok && stale.value).toBe(null);
    const placed = await c1.place(req('p7'));
    if (!placed.ok) throw new Error(placed.error.message);
    const released = await c2.flow.release({ requestId: 'rel-p7', placementRequestId: 'p7' });
    expect(released.ok).toBe(true);
    expect((await usage(cluster)).vms).toBe(0);
    const again = await c2.place(req('p8'));
    expect(again.ok).toBe(true);
    expect((await usage(cluster)).vms).toBe(1);
  });

  it('a reconciler that fails an abandoned intent and a retry that places it again count it once (finding 5d)', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const { request } = await abandoned(cluster, 'p9', 'a');
    expect((await usage(cluster)).vms).toBe(1);
    await c1.reconciler.reconcileOnce(); // sees it now
    cluster.clock.advance(61_000);
    const round = await c1.reconciler.reconcileOnce();
    expect(round.outcomes).toEqual({ p9: 'failed' });
    expect((await usage(cluster)).vms).toBe(0);
    // The dead coordinator's allocate arrives after the fence: refused, nothing commits, nothing to undo.
    const late = await lateAllocate(cluster, 'a', request);
    expect(!late.ok && late.error.details).toMatchObject({ reason: 'fenced' });
    const retry = await c1.place(req('p9'));
    if (!retry.ok) throw new Error(retry.error.message);
    expect(liveCount(cluster, 'p9')).toBe(1);
    expect((await usage(cluster)).vms).toBe(1);
  });

  it('a quota set for a tenant that already has VMs starts at their count (finding 5e)', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    for (const id of ['q1', 'q2']) expect((await c1.place(req(id))).ok).toBe(true);
    const set = await c1.quotas.set(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 2 }));
    expect(set.ok && set.value.usage.vms).toBe(2);
    const over = await c1.place(req('q3'));
    expect(!over.ok && over.error.code).toBe('quota_exceeded');
  });

  it('never admits past a quota between two coordinators placing at once', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const c2 = await cluster.coordinator('c2');
    await c1.quotas.set(TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 3 }));
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? c1 : c2).place(req(`c-${i}`))));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    expect((await usage(cluster)).vms).toBe(3);
    expect([...cluster.agents.nodes.keys()].flatMap((n) => cluster.agents.live(n))).toHaveLength(3);
  });
});

describe('place protocol: one round of KV writes per place (placed is written after the answer)', () => {
  it('answers once the node committed, before the placed write lands; the intent reads pending and counted meanwhile, then placed', async () => {
    const cluster = inProcessCluster(NODES);
    const bucket = holdingPlaced(cluster.bucket);
    const c1 = await cluster.coordinator('c1', { bucket });
    const r = await c1.place(req('d1', on('a')));
    if (!r.ok) throw new Error(r.error.message);
    expect(liveCount(cluster, 'd1')).toBe(1);
    const before = await c1.store.get('d1');
    expect(before.ok && before.value?.value).toMatchObject({ state: 'pending', nodeId: 'a' });
    expect((await usage(cluster)).vms).toBe(1);
    bucket.open();
    await c1.flow.settled();
    const after = await c1.store.get('d1');
    expect(after.ok && after.value?.value).toMatchObject({ state: 'placed', reply: { allocation: { id: r.value.allocation.id } } });
    const retry = await c1.place(req('d1', on('a')));
    expect(retry.ok && retry.value.allocation.id).toBe(r.value.allocation.id);
  });

  it('releases a placement answered a moment ago whose placed write has not landed, on another coordinator; the late write does not bring it back', async () => {
    const cluster = inProcessCluster(NODES);
    const bucket = holdingPlaced(cluster.bucket);
    const c1 = await cluster.coordinator('c1', { bucket });
    const c2 = await cluster.coordinator('c2');
    const r = await c1.place(req('d2', on('b')));
    if (!r.ok) throw new Error(r.error.message);
    const released = await c2.flow.release({ requestId: 'rel-d2', placementRequestId: 'd2', tenantId: 'acme' });
    expect(released.ok && released.value).toMatchObject({ id: r.value.allocation.id, status: 'released' });
    expect(liveCount(cluster, 'd2')).toBe(0);
    expect((await usage(cluster)).vms).toBe(0);
    bucket.open();
    await c1.flow.settled();
    const stored = await c2.store.get('d2');
    expect(stored.ok && stored.value?.value).toMatchObject({ state: 'released', releasedBy: 'tenant' });
    expect((await usage(cluster)).vms).toBe(0);
  });

  it('moves a placement answered a moment ago whose placed write has not landed, on another coordinator', async () => {
    const cluster = inProcessCluster(NODES);
    const bucket = holdingPlaced(cluster.bucket);
    const c1 = await cluster.coordinator('c1', { bucket });
    const c2 = await cluster.coordinator('c2');
    const r = await c1.place(req('d5', on('a')));
    if (!r.ok) throw new Error(r.error.message);
    c2.refresh();
    const deps = { store: c2.store, flow: c2.flow, agents: cluster.agents.caller(), knowsNode: () => true, holdMs: 60_000 };
    const moved = await moveAllocation(deps, { requestId: 'mv-d5', allocationId: r.value.allocation.id }, 'acme');
    expect(moved.ok && moved.value).toMatchObject({ state: 'held', source: { allocationId: r.value.allocation.id, nodeId: 'a' } });
    bucket.open();
    await c1.flow.settled();
    expect((await usage(cluster)).vms).toBe(1);
  });

  it('keeps a placement whose placed write failed pending and counted; the reconciler finds it held and records it placed, and a retry gets it', async () => {
    const cluster = inProcessCluster(NODES);
    const bucket = holdingPlaced(cluster.bucket);
    bucket.failing = true;
    const c1 = await cluster.coordinator('c1', { bucket });
    const r = await c1.place(req('d3', on('c')));
    if (!r.ok) throw new Error(r.error.message);
    await c1.flow.settled();
    const pending = await c1.store.get('d3');
    expect(pending.ok && pending.value?.value.state).toBe('pending');
    expect((await usage(cluster)).vms).toBe(1);
    const c2 = await cluster.coordinator('c2');
    await c2.reconciler.reconcileOnce();
    cluster.clock.advance(60_000);
    expect((await c2.reconciler.reconcileOnce()).outcomes).toEqual({ d3: 'placed' });
    const retry = await c2.place(req('d3', on('c')));
    expect(retry.ok && retry.value.allocation.id).toBe(r.value.allocation.id);
    expect(liveCount(cluster, 'd3')).toBe(1);
    expect((await usage(cluster)).vms).toBe(1);
  });
});

describe('reconciler', () => {
  it('measures an intent age on its own monotonic clock from when it saw it, never by another coordinator updatedAt (finding 9)', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    cluster.clock.wallOffset = -3_600_000; // the writer's wall clock an hour behind: its updatedAt looks old
    await abandoned(cluster, 'r1', 'b');
    cluster.clock.wallOffset = 0;
    expect((await c1.reconciler.reconcileOnce()).stale).toBe(0);
    cluster.clock.advance(30_000);
    expect((await c1.reconciler.reconcileOnce()).stale).toBe(0);
    cluster.clock.advance(30_000);
    expect((await c1.reconciler.reconcileOnce()).outcomes).toEqual({ r1: 'failed' });
  });

  it('settles an abandoned intent whose node holds the allocation as placed; a retry gets that very allocation', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    const { request } = await abandoned(cluster, 'r2', 'a');
    const committed = await lateAllocate(cluster, 'a', request);
    if (!committed.ok) throw new Error(committed.error.message);
    await c1.reconciler.reconcileOnce();
    cluster.clock.advance(60_000);
    expect((await c1.reconciler.reconcileOnce()).outcomes).toEqual({ r2: 'placed' });
    const retry = await c1.place(req('r2'));
    expect(retry.ok && retry.value.allocation.id).toBe(committed.value.id);
    expect((await usage(cluster)).vms).toBe(1);
    expect((await c1.reconciler.reconcileOnce()).stale).toBe(0);
  });

  it('leaves an intent whose node does not answer, and one driven since it was first seen', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    await abandoned(cluster, 'r3', 'b');
    await abandoned(cluster, 'r4', 'c');
    await c1.reconciler.reconcileOnce();
    cluster.clock.advance(59_000);
    const c2 = await cluster.coordinator('c2');
    const r4 = await c2.store.get('r4');
    if (!r4.ok || r4.value === null) throw new Error('no r4');
    expect((await c2.store.drive(r4.value)).ok).toBe(true); // a retry in progress: a new revision, age from now
    cluster.agents.setDown('b', true);
    cluster.clock.advance(1_000);
    expect((await c1.reconciler.reconcileOnce()).outcomes).toEqual({ r3: 'left' });
    expect((await usage(cluster)).vms).toBe(2);
  });
});

describe('quota.recount', () => {
  it('rebuilds a usage record from the counting intents', async () => {
    const cluster = inProcessCluster(NODES);
    const c1 = await cluster.coordinator('c1');
    for (const id of ['u1', 'u2']) expect((await c1.place(req(id))).ok).toBe(true);
    const r = await c1.quotas.recount('acme');
    expect(r.ok && r.value).toEqual({
      tenantId: 'acme',
      before: { vms: 2, vcpus: 2, memoryMiB: 1024 },
      after: { vms: 2, vcpus: 2, memoryMiB: 1024 },
    });
  });
});
