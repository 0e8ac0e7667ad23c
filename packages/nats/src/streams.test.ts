import {
  EVENTS_STREAM,
  KV_NODES,
  KV_PLACEMENTS,
  STREAM_LIMITS,
  USAGE_STREAM,
  usageSubject,
  AgentActivateRequestSchema,
  decode,
} from '@allot/protocol';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer } from '../../../test/harness/index.ts';
import { publishDurable } from './publish.ts';
import { ensureKv, ensureStreams } from './streams.ts';

let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  const server = await startNatsServer({ jetstream: true });
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await cleanupAll();
});

describe('ensureStreams', () => {
  it('creates the usage and events streams with the limits from core, and succeeds again when run twice', async () => {
    const first = await ensureStreams(jsm, { replicas: 1 });
    const second = await ensureStreams(jsm, { replicas: 1 });
    expect(first.ok && second.ok).toBe(true);
    const usage = (await jsm.streams.info(USAGE_STREAM)).config;
    expect(usage).toMatchObject({
      subjects: ['allot.usage.*'],
      max_msgs_per_subject: STREAM_LIMITS.usage.maxMsgsPerSubject,
      max_age: nanos(STREAM_LIMITS.usage.maxAgeMs),
      max_bytes: STREAM_LIMITS.usage.maxBytes,
      discard: 'old',
      storage: 'file',
      num_replicas: 1,
    });
    const events = (await jsm.streams.info(EVENTS_STREAM)).config;
    expect(events).toMatchObject({
      subjects: ['allot.events.>'],
      max_age: nanos(STREAM_LIMITS.events.maxAgeMs),
      max_bytes: STREAM_LIMITS.events.maxBytes,
      max_msgs: STREAM_LIMITS.events.maxMsgs,
      discard: 'old',
      storage: 'file',
    });
  });

  it('succeeds for every one of several processes starting at once', async () => {
    await jsm.streams.delete(USAGE_STREAM).catch(() => false);
    await jsm.streams.delete(EVENTS_STREAM).catch(() => false);
    const clients = await Promise.all(Array.from({ length: 4 }, () => connect({ servers: nc.getServer() })));
    const results = await Promise.all(clients.map(async (c) => ensureStreams(await jetstreamManager(c), { replicas: 1 })));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true]);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('brings back the configured limits when someone changed them', async () => {
    const info = await jsm.streams.info(USAGE_STREAM);
    await jsm.streams.update(USAGE_STREAM, { ...info.config, max_msgs_per_subject: 3 });
    expect((await ensureStreams(jsm, { replicas: 1 })).ok).toBe(true);
    expect((await jsm.streams.info(USAGE_STREAM)).config.max_msgs_per_subject).toBe(STREAM_LIMITS.usage.maxMsgsPerSubject);
  });
});

describe('ensureKv', () => {
  it('creates a bucket with the history and TTL asked, twice and concurrently', async () => {
    const results = await Promise.all(
      [1, 2, 3].map(() => ensureKv(jetstream(nc), KV_PLACEMENTS, { history: 1, ttlMs: 3_600_000, replicas: 1 })),
    );
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    const again = await ensureKv(jetstream(nc), KV_PLACEMENTS, { history: 1, ttlMs: 3_600_000, replicas: 1 });
    if (!again.ok) throw new Error(again.error.message);
    await again.value.put('k', 'v');
    expect((await again.value.get('k'))?.string()).toBe('v');
    const config = (await jsm.streams.info(`KV_${KV_PLACEMENTS}`)).config;
    expect(config).toMatchObject({ max_msgs_per_subject: 1, max_age: nanos(3_600_000), num_replicas: 1 });
  });

  it('updates an existing bucket to the history asked', async () => {
    expect((await ensureKv(jetstream(nc), KV_NODES, { history: 1, replicas: 1 })).ok).toBe(true);
    expect((await ensureKv(jetstream(nc), KV_NODES, { history: 5, replicas: 1 })).ok).toBe(true);
    expect((await jsm.streams.info(`KV_${KV_NODES}`)).config.max_msgs_per_subject).toBe(5);
  });
});

describe('publishDurable', () => {
  it('stores a msgpack message once per dedupe id', async () => {
    await ensureStreams(jsm, { replicas: 1 });
    const payload = { requestId: 'r-1', allocationId: 'a-1' };
    const first = await publishDurable(jetstream(nc), usageSubject('node-1'), payload, { msgId: 'snap-1' });
    const retry = await publishDurable(jetstream(nc), usageSubject('node-1'), payload, { msgId: 'snap-1' });
    if (!first.ok || !retry.ok) throw new Error('publish failed');
    expect(first.value).toMatchObject({ stream: USAGE_STREAM, duplicate: false });
    expect(retry.value).toMatchObject({ seq: first.value.seq, duplicate: true });
    const stored = await jsm.streams.getMessage(USAGE_STREAM, { seq: first.value.seq });
    expect(stored && decode(AgentActivateRequestSchema, stored.data)).toEqual({ ok: true, value: payload });
  });

  it('returns unavailable when no stream takes the subject', async () => {
    const result = await publishDurable(jetstream(nc), 'not.a.stream', { a: 1 }, { timeoutMs: 2_000 });
    expect(result.ok || result.error).toMatchObject({ code: 'unavailable', details: { subject: 'not.a.stream' } });
  });
});
