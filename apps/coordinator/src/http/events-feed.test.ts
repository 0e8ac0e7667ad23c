import { encode, eventSubject, type AllotEvent } from '@allot/protocol';
import { ensureStreams } from '@allot/nats';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, waitFor } from '../../../../test/harness/index.ts';
import { DroppedInput } from '../dropped-input.ts';
import { jetstream, jetstreamManager, type JetStreamClient, type NatsConnection } from '../nats-deps.ts';
import type { FeedEvent } from '@allot/protocol/http';
import { followEvents } from './events-feed.ts';

const log = pino({ level: 'silent' });
let nc: NatsConnection;
let js: JetStreamClient;
const stops: (() => Promise<void>)[] = [];

beforeEach(async () => {
  const server = await startNatsServer();
  nc = await connect({ servers: server.url });
  const ensured = await ensureStreams(await jetstreamManager(nc), { replicas: 1 });
  if (!ensured.ok) throw new Error(ensured.error.message);
  js = jetstream(nc);
});

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  await nc.close();
  await cleanupAll();
});

const event = (nodeId: string, requestId: string, kind: AllotEvent['kind'] = 'refused'): AllotEvent => ({
  kind,
  nodeId,
  at: Date.now(),
  requestId,
});

describe("the dashboard's event feed on hostile events", () => {
  it('drops an event whose body names another node or kind than its subject; the cluster subject may name any node', async () => {
    const seen: FeedEvent[] = [];
    const dropped = new DroppedInput(log);
    stops.push(await followEvents(js, (e) => seen.push(e), { logger: log, now: Date.now, lookbackMs: 60_000, dropped }));
    await js.publish(eventSubject('n1', 'refused'), encode(event('n2', 'forged-node')));
    await js.publish(eventSubject('n1', 'allocated'), encode(event('n1', 'forged-kind')));
    await js.publish(eventSubject('cluster', 'node_lost'), encode(event('n3', 'cluster-ok', 'node_lost')));
    await js.publish(eventSubject('n1', 'refused'), encode(event('n1', 'last')));
    await waitFor(() => seen.some((e) => e.requestId === 'last'), { message: 'the last event' });
    expect(seen.map((e) => e.requestId)).toEqual(['cluster-ok', 'last']);
    expect(dropped.count('events_feed', 'node_mismatch')).toBe(1);
    expect(dropped.count('events_feed', 'kind_mismatch')).toBe(1);
  });

  it('keeps following when the handler throws on an event', async () => {
    const seen: string[] = [];
    const dropped = new DroppedInput(log);
    const onEvent = (e: FeedEvent) => {
      if (e.requestId === 'bad') throw new Error('boom');
      seen.push(e.requestId ?? '');
    };
    stops.push(await followEvents(js, onEvent, { logger: log, now: Date.now, lookbackMs: 60_000, dropped }));
    await js.publish(eventSubject('n1', 'refused'), encode(event('n1', 'bad')));
    await js.publish(eventSubject('n1', 'refused'), encode(event('n1', 'good')));
    await waitFor(() => seen.includes('good'), { message: 'the event after the throw' });
    expect(dropped.count('events_feed', 'threw')).toBe(1);
  });
});
