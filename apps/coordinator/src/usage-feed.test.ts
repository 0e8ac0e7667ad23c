import { encode, usageSubject } from '@allot/protocol';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, waitFor, type NatsServerHandle } from '../../../test/harness/index.ts';
import { DroppedInput } from './dropped-input.ts';
import { syntheticSnapshot } from './http/fixtures.ts';
import { jetstream, type JetStreamClient, type NatsConnection } from './nats-deps.ts';
import { ensureTestStreams } from './testing/cluster.ts';
import { followUsage, type UsageFeed } from './usage-feed.ts';
import { ClusterView } from './view.ts';

const log = pino({ level: 'silent' });
let server: NatsServerHandle;
let nc: NatsConnection;
let js: JetStreamClient;
const feeds: UsageFeed[] = [];

beforeEach(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  await ensureTestStreams(nc);
  js = jetstream(nc);
});

afterEach(async () => {
  for (const f of feeds.splice(0)) await f.stop();
  await nc.close();
  await cleanupAll();
});

describe('the usage feed on hostile snapshots', () => {
  it('drops a snapshot published on allot.usage.<real> that names another node: no phantom node appears', async () => {
    await js.publish(usageSubject('real'), encode(syntheticSnapshot({ nodeId: 'real' })));
    const view = new ClusterView({ lostAfterMs: 30_000 });
    const dropped = new DroppedInput(log);
    const feed = await followUsage(js, view, { logger: log, onTransition: () => undefined, dropped });
    feeds.push(feed);
    await feed.caughtUp;
    // The attack: the real node's snapshot, republished on its own subject with another node id in the body.
    await js.publish(usageSubject('real'), encode(syntheticSnapshot({ nodeId: 'phantom', seq: 2 })));
    await js.publish(usageSubject('real'), encode(syntheticSnapshot({ nodeId: 'real', seq: 3 })));
    await waitFor(() => view.get('real')?.snapshot.seq === 3, { message: 'the real node seq 3' });
    expect(view.get('phantom')).toBeUndefined();
    expect(view.nodes().map((n) => n.nodeId)).toEqual(['real']);
    expect(dropped.count('usage', 'node_mismatch')).toBe(1);
    expect(feed.stats()).toMatchObject({ applied: 2, invalid: 1 });
  });

  it('drops a snapshot written more than one protocol version away, by name, and applies the current ones', async () => {
    const view = new ClusterView({ lostAfterMs: 30_000 });
    const dropped = new DroppedInput(log);
    const feed = await followUsage(js, view, { logger: log, onTransition: () => undefined, dropped });
    feeds.push(feed);
    await feed.caughtUp;
    const version = (v: string) => {
      const h = natsHeaders();
      h.set('Allot-Protocol', v);
      return { headers: h };
    };
    await js.publish(usageSubject('far'), encode(syntheticSnapshot({ nodeId: 'far' })), version('3'));
    await js.publish(usageSubject('near'), encode(syntheticSnapshot({ nodeId: 'near' })), version('2'));
    await js.publish(usageSubject('near'), encode(syntheticSnapshot({ nodeId: 'near', seq: 2 })));
    await waitFor(() => view.get('near')?.snapshot.seq === 2, { message: 'the near node seq 2' });
    expect(view.get('far')).toBeUndefined();
    expect(dropped.count('usage', 'protocol_version')).toBe(1);
  });

  it('stays up when applying a snapshot throws: the message is counted and the next one is applied', async () => {
    const view = new ClusterView({ lostAfterMs: 30_000 });
    const apply = view.apply.bind(view);
    view.apply = (s, age) => {
      if (s.seq === 2) throw new Error('boom');
      return apply(s, age);
    };
    const dropped = new DroppedInput(log);
    const feed = await followUsage(js, view, { logger: log, onTransition: () => undefined, dropped });
    feeds.push(feed);
    await js.publish(usageSubject('n1'), encode(syntheticSnapshot({ nodeId: 'n1', seq: 2 })));
    await js.publish(usageSubject('n1'), encode(syntheticSnapshot({ nodeId: 'n1', seq: 3 })));
    await waitFor(() => view.get('n1')?.snapshot.seq === 3, { message: 'n1 seq 3 applied after the throw' });
    expect(dropped.count('usage', 'threw')).toBe(1);
  });
});

describe('the usage feed on heartbeats without the per-core list', () => {
  const full = (seq: number, digest: string) => {
    const s = syntheticSnapshot({ nodeId: 'n1', seq, exclusive: seq > 1 ? { vm1: [0, 1] } : {} });
    const numa = [{ node: 0, sharedCores: 16 - s.cpu.exclusiveCores, exclusiveCores: s.cpu.exclusiveCores, reservedCores: 0 }];
    return { ...s, cpu: { ...s.cpu, coresDigest: digest, numa } };
  };
  const beat = (seq: number, digest: string) => {
    const s = full(seq, digest);
    return { ...s, cpu: { ...s.cpu, cores: [] } };
  };

  it('keeps the list for a running coordinator; one started later shows the node ready and gets the list with the next full', async () => {
    const running = new ClusterView({ lostAfterMs: 30_000 });
    const feed = await followUsage(js, running, { logger: log, onTransition: () => undefined });
    feeds.push(feed);
    await js.publish(usageSubject('n1'), encode(full(1, 'd1')));
    await js.publish(usageSubject('n1'), encode(beat(1, 'd1')));
    await js.publish(usageSubject('n1'), encode(full(2, 'd2')));
    await js.publish(usageSubject('n1'), encode(beat(2, 'd2')));
    await waitFor(() => feed.stats().applied === 4, { message: 'four snapshots applied' });
    expect(
      running
        .get('n1')
        ?.snapshot.cpu.cores.filter((c) => c.role === 'exclusive')
        .map((c) => c.id),
    ).toEqual([0, 1]);

    // A cold start replays the node's last message only: a heartbeat.
    const later = new ClusterView({ lostAfterMs: 30_000 });
    const second = await followUsage(js, later, { logger: log, onTransition: () => undefined });
    feeds.push(second);
    await second.caughtUp;
    expect(later.get('n1')).toMatchObject({ liveness: 'ready', snapshot: { seq: 2, cpu: { cores: [], exclusiveCores: 2 } } });
    await js.publish(usageSubject('n1'), encode(full(2, 'd2')));
    await waitFor(() => later.get('n1')?.snapshot.cpu.cores.length === 16, { message: 'the list with the next full snapshot' });
  });
});
