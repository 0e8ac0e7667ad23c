import { AllocationRequestSchema } from '@allot/core';
import { encode, eventSubject, type PlaceReply } from '@allot/protocol';
import { ensureKv, ensureStreams } from '@allot/nats';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, waitFor } from '../../../test/harness/index.ts';
import { DroppedInput } from './dropped-input.ts';
import { IntentStore } from './intents/intent-store.ts';
import { jetstream, jetstreamManager, type NatsConnection } from './nats-deps.ts';
import { followQuotaEvents } from './quota-events.ts';
import { NatsBucket } from './store/nats-bucket.ts';

const log = pino({ level: 'silent' });
const clock = { wall: () => 1_000_000, monotonic: () => 1_000_000 };

describe('quota events: identity from the subject', () => {
  let nc: NatsConnection;
  let store: IntentStore;

  beforeAll(async () => {
    const server = await startNatsServer();
    nc = await connect({ servers: server.url });
    const streams = await ensureStreams(await jetstreamManager(nc), { replicas: 1 });
    if (!streams.ok) throw new Error(streams.error.message);
    const kv = await ensureKv(jetstream(nc), 'allot_placements', { history: 1, replicas: 1, allowMsgTtl: true, allowAtomic: true });
    if (!kv.ok) throw new Error(kv.error.message);
    store = new IntentStore(new NatsBucket(nc, kv.value, 'allot_placements'), { coordinatorId: 'c1', clock, finishedTtlMs: 86_400_000 });
  });

  afterAll(async () => {
    await nc?.close();
    await cleanupAll();
  });

  it("ignores a release event published under node b (or the cluster subject) that names node a's placement", async () => {
    const request = AllocationRequestSchema.parse({ requestId: 'victim', tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 2 } });
    const created = await store.create({
      requestId: 'victim',
      tenantId: 'acme',
      hash: 'h'.repeat(64),
      nodeId: 'a',
      memoryMiB: 1024,
      vcpus: 2,
    });
    if (!created.ok) throw new Error(created.error.message);
    const allocation = {
      id: 'a:1',
      requestId: 'victim',
      tenantId: 'acme',
      nodeId: 'a',
      request,
      granted: { memoryMiB: 1024, vcpus: 2 },
      cpu: null,
      status: 'active' as const,
      priority: 0,
      createdAt: 1,
      updatedAt: 1,
    };
    const reply: PlaceReply = { nodeId: 'a', allocation, cpuset: [], preempted: [], attempts: 1 };
    const done = await store.placed(created.value, reply);
    if (!done.ok) throw new Error(done.error.message);

    const dropped = new DroppedInput(log);
    const js = jetstream(nc);
    const follower = await followQuotaEvents(js, store, { logger: log, dropped });
    if (!follower.ok) throw new Error(follower.error.message);
    const forged = { kind: 'released', nodeId: 'a', at: 1, requestId: 'victim', allocationId: 'a:1' };
    await js.publish(eventSubject('b', 'released'), encode(forged));
    await js.publish(eventSubject('cluster', 'released'), encode(forged));
    await waitFor(() => follower.value.counts.invalid === 2, { message: 'both forged events counted' });
    expect(dropped.count('quota_events', 'node_mismatch')).toBe(2);
    const intent = await store.get('victim');
    expect(intent.ok && intent.value?.value.state).toBe('placed');
    await follower.value.stop();
  });
});
