import { AllotEventSchema, decode, eventSubject, EVENTS_STREAM } from '@allot/protocol';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer } from '../../../test/harness/index.ts';
import { AsyncJetStreamPublisher } from './async-publisher.ts';
import { ensureStreams } from './streams.ts';

let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  const server = await startNatsServer({ jetstream: true });
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
  const streams = await ensureStreams(jsm, { replicas: 1 });
  if (!streams.ok) throw new Error(streams.error.message);
});

afterAll(async () => {
  await nc?.close();
  await cleanupAll();
});

const event = (i: number) => ({ kind: 'allocated' as const, nodeId: 'n1', at: 1_700_000_000_000 + i, requestId: `r-${i}` });

describe('publishing with many acks outstanding', () => {
  it('stores every message in publish order and answers each with its stream sequence', async () => {
    const publisher = new AsyncJetStreamPublisher(nc);
    const before = (await jsm.streams.info(EVENTS_STREAM)).state.last_seq;
    const acks = await Promise.all(
      Array.from({ length: 500 }, (_, i) => publisher.publish(eventSubject('n1', 'allocated'), event(i), `ordered-${i}`)),
    );
    expect(acks.every((a) => a.ok)).toBe(true);
    const seqs = acks.map((a) => (a.ok ? a.value.seq : -1));
    expect(seqs).toEqual(Array.from({ length: 500 }, (_, i) => before + 1 + i));
    const last = await jsm.streams.getMessage(EVENTS_STREAM, { seq: seqs[499]! });
    const decoded = decode(AllotEventSchema, last!.data);
    expect(decoded.ok && decoded.value.requestId).toBe('r-499');
    expect(publisher.pending).toBe(0);
    publisher.close();
  });

  it('reports a republished message id as a duplicate, stored once', async () => {
    const publisher = new AsyncJetStreamPublisher(nc);
    const first = await publisher.publish(eventSubject('n1', 'released'), event(1), 'dup-1');
    const again = await publisher.publish(eventSubject('n1', 'released'), event(1), 'dup-1');
    expect(first.ok && !first.value.duplicate).toBe(true);
    expect(again.ok && again.value.duplicate && again.value.seq).toBe(first.ok && first.value.seq);
    publisher.close();
  });

  it('answers unavailable when no stream takes the subject', async () => {
    const publisher = new AsyncJetStreamPublisher(nc);
    const result = await publisher.publish('nobody.listens.here', { x: 1 });
    expect(!result.ok && result.error.code).toBe('unavailable');
    publisher.close();
  });
});

describe('on a connection with a private reply inbox (a secured identity)', () => {
  it("takes its acks on the connection's inbox prefix, the only inbox the server lets it subscribe to", async () => {
    // As `allot security` grants: this identity may subscribe to its own `_INBOX_<key>.>` and nothing else.
    const server = await startNatsServer({
      jetstream: true,
      extraConfig:
        'authorization { users: [ { user: "agent", password: "secret", permissions: { publish: ">", subscribe: "_INBOX_AGENT.>" } } ] }',
    });
    const secured = await connect({ servers: server.url, user: 'agent', pass: 'secret', inboxPrefix: '_INBOX_AGENT' });
    try {
      const streams = await ensureStreams(await jetstreamManager(secured), { replicas: 1 });
      if (!streams.ok) throw new Error(streams.error.message);
      const publisher = new AsyncJetStreamPublisher(secured, { timeoutMs: 2_000 });
      const ack = await publisher.publish(eventSubject('n1', 'allocated'), event(1), 'private-inbox-1');
      expect(ack.ok ? 'stored' : ack.error.code).toBe('stored');
      publisher.close();
    } finally {
      await secured.close();
    }
  });
});
