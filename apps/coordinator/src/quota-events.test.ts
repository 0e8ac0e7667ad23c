import { AllocationRequestSchema } from '@allot/core';
import { encode, eventSubject, type AllotEvent, type PlaceReply } from '@allot/protocol';
import { ensureKv, ensureStreams } from '@allot/nats';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, waitFor } from '../../../test/harness/index.ts';
import { IntentStore, type StoredIntent } from './intents/intent-store.ts';
import { jetstream, jetstreamManager, type NatsConnection } from './nats-deps.ts';
import { followQuotaEvents, handleEndingEvent } from './quota-events.ts';
import { MemoryBucket } from './store/memory-bucket.ts';
import { NatsBucket } from './store/nats-bucket.ts';

const quietLogger = pino({ level: 'silent' });

const DAY = 24 * 3_600_000;
const clock = { wall: () => 1_000_000, monotonic: () => 1_000_000 };

function replyFor(requestId: string, nodeId: string, allocationId: string): PlaceReply {
  const request = AllocationRequestSchema.parse({ requestId, tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 2 } });
  const allocation = {
    id: allocationId,
    requestId,
    tenantId: 'acme',
    nodeId,
    request,
    granted: { memoryMiB: 1024, vcpus: 2 },
    cpu: null,
    status: 'active' as const,
    priority: 0,
    createdAt: 1,
    updatedAt: 1,
  };
  return { nodeId, allocation, cpuset: [], preempted: [], attempts: 1 };
}

/** A placed intent for `requestId` on `nodeId`, counted in acme's usage. */
async function placed(store: IntentStore, requestId: string, nodeId = 'a', allocationId = `${nodeId}:1`): Promise<StoredIntent> {
  const created = await store.create({ requestId, tenantId: 'acme', hash: 'h'.repeat(64), nodeId, memoryMiB: 1024, vcpus: 2 });
  if (!created.ok) throw new Error(created.error.message);
  const done = await store.placed(created.value, replyFor(requestId, nodeId, allocationId));
  if (!done.ok) throw new Error(done.error.message);
  return done.value;
}

async function usedVms(store: IntentStore): Promise<number> {
  const u = await store.usage('acme');
  if (!u.ok) throw new Error(u.error.message);
  return u.value?.value.usage.vms ?? 0;
}

const event = (e: Partial<AllotEvent> & Pick<AllotEvent, 'kind' | 'nodeId'>): AllotEvent => ({ at: 5, ...e });

describe('handleEndingEvent', () => {
  it('gives the quota back when a reservation placed through a coordinator expires on its agent, once', async () => {
    const store = new IntentStore(new MemoryBucket({ now: clock.wall }), { coordinatorId: 'c1', clock, finishedTtlMs: DAY });
    await placed(store, 'r1');
    expect(await usedVms(store)).toBe(1);
    const expired = event({ kind: 'expired', nodeId: 'a', requestId: 'r1', allocationId: 'a:1' });
    expect(await handleEndingEvent(store, expired)).toEqual({ ok: true, value: 'released' });
    expect(await usedVms(store)).toBe(0);
    const intent = await store.get('r1');
    expect(intent.ok && intent.value?.value).toMatchObject({ state: 'released', releasedBy: 'expiry' });
    // Redelivered, or seen by a second coordinator: nothing more is given back.
    expect(await handleEndingEvent(store, expired)).toEqual({ ok: true, value: 'already_ended' });
    expect(await usedVms(store)).toBe(0);
  });

  it('leaves alone a placement whose intent names another node or another allocation (an orphan released elsewhere)', async () => {
    const store = new IntentStore(new MemoryBucket({ now: clock.wall }), { coordinatorId: 'c1', clock, finishedTtlMs: DAY });
    await placed(store, 'r2', 'b', 'b:7');
    expect(
      await handleEndingEvent(store, event({ kind: 'released', nodeId: 'a', requestId: 'r2', allocationId: 'a:3', reason: 'undo' })),
    ).toEqual({ ok: true, value: 'not_this_placement' });
    expect(await handleEndingEvent(store, event({ kind: 'released', nodeId: 'b', requestId: 'r2', allocationId: 'b:6' }))).toEqual({
      ok: true,
      value: 'not_this_placement',
    });
    expect(await usedVms(store)).toBe(1);
    expect(await handleEndingEvent(store, event({ kind: 'preempted', nodeId: 'b', requestId: 'r2', allocationId: 'b:7' }))).toEqual({
      ok: true,
      value: 'released',
    });
    expect(await usedVms(store)).toBe(0);
  });

  it('counts events with no request id or no intent without touching anything', async () => {
    const store = new IntentStore(new MemoryBucket({ now: clock.wall }), { coordinatorId: 'c1', clock, finishedTtlMs: DAY });
    expect(await handleEndingEvent(store, event({ kind: 'expired', nodeId: 'a', allocationId: 'a:9' }))).toEqual({
      ok: true,
      value: 'no_request_id',
    });
    expect(await handleEndingEvent(store, event({ kind: 'released', nodeId: 'a', requestId: 'direct' }))).toEqual({
      ok: true,
      value: 'no_intent',
    });
    expect(await handleEndingEvent(store, event({ kind: 'allocated', nodeId: 'a', requestId: 'x' }))).toEqual({
      ok: true,
      value: 'invalid',
    });
  });
});

describe('followQuotaEvents on a real nats-server', () => {
  let nc: NatsConnection;
  let store: IntentStore;

  beforeAll(async () => {
    const server = await startNatsServer();
    nc = await connect({ servers: server.url });
    const streams = await ensureStreams(await jetstreamManager(nc), { replicas: 1 });
    if (!streams.ok) throw new Error(streams.error.message);
    const kv = await ensureKv(jetstream(nc), 'allot_placements', { history: 1, replicas: 1, allowMsgTtl: true, allowAtomic: true });
    if (!kv.ok) throw new Error(kv.error.message);
    store = new IntentStore(new NatsBucket(nc, kv.value, 'allot_placements'), { coordinatorId: 'c1', clock, finishedTtlMs: DAY });
  });

  afterAll(async () => {
    await nc?.close();
    await cleanupAll();
  });

  it('two coordinators share one durable: an expiry is handled once, hostile payloads are acknowledged and counted', async () => {
    const js = jetstream(nc);
    const first = await followQuotaEvents(js, store, { logger: quietLogger });
    const second = await followQuotaEvents(js, store, { logger: quietLogger });
    if (!first.ok || !second.ok) throw new Error('consumer not started');
    await placed(store, 'lease-1', 'a', 'a:1');
    await placed(store, 'lease-2', 'a', 'a:2');
    expect(await usedVms(store)).toBe(2);
    await js.publish(eventSubject('a', 'expired'), new Uint8Array([0xc1, 0xff, 0x00]));
    await js.publish(eventSubject('a', 'released'), encode({ kind: 'released', nodeId: 'a', at: 1, requestId: 'no spaces allowed' }));
    await js.publish(
      eventSubject('a', 'expired'),
      encode(event({ kind: 'expired', nodeId: 'a', requestId: 'lease-1', allocationId: 'a:1' })),
    );
    await js.publish(
      eventSubject('a', 'allocated'),
      encode(event({ kind: 'allocated', nodeId: 'a', requestId: 'lease-2', allocationId: 'a:2' })),
    );
    await waitFor(async () => (await usedVms(store)) === 1, { message: 'the expired reservation to give its quota back' });
    const total = () => ({
      released: first.value.counts.released + second.value.counts.released,
      invalid: first.value.counts.invalid + second.value.counts.invalid,
    });
    await waitFor(() => total().invalid === 2, { message: 'both hostile events to be counted' });
    expect(total().released).toBe(1);
    // The allocated event is not even delivered (the durable filters on the ending kinds).
    const other = await store.get('lease-2');
    expect(other.ok && other.value?.value.state).toBe('placed');
    await first.value.stop();
    await second.value.stop();
  });
});
