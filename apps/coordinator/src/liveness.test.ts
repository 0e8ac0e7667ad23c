import { encode, usageSubject } from '@allot/protocol';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, waitFor, type NatsServerHandle } from '../../../test/harness/index.ts';
import { syntheticSnapshot } from './http/fixtures.ts';
import { jetstream, type JetStreamClient, type NatsConnection } from './nats-deps.ts';
import type { CoordinatorClock } from './store/clock.ts';
import { ensureTestStreams } from './testing/cluster.ts';
import { followUsage, type UsageFeed } from './usage-feed.ts';
import { ClusterView, type LivenessTransition } from './view.ts';

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

/** A coordinator's clocks with its wall clock `skewMs` off the real one. */
const skewed = (skewMs: number): CoordinatorClock => ({ wall: () => Date.now() + skewMs, monotonic: () => performance.now() });

async function report(nodeId: string, seq = 1): Promise<void> {
  await js.publish(usageSubject(nodeId), encode(syntheticSnapshot({ nodeId, seq })));
}

async function follow(view: ClusterView, transitions: LivenessTransition[] = []): Promise<UsageFeed> {
  const feed = await followUsage(js, view, { logger: log, onTransition: (t) => transitions.push(t) });
  feeds.push(feed);
  await feed.caughtUp;
  return feed;
}

describe('liveness on the coordinator own clock', () => {
  it('sees nodes that report as ready when its wall clock is 30 s ahead of the NATS servers', async () => {
    await report('n1');
    const view = new ClusterView({ lostAfterMs: 10_000, suspectAfterMs: 5_000, clock: skewed(30_000) });
    await follow(view);
    await report('n2');
    await waitFor(() => view.get('n2') !== undefined, { message: 'n2 seen' });
    expect(view.sweep()).toEqual([]);
    expect(view.get('n1')?.liveness).toBe('ready');
    expect(view.get('n2')?.liveness).toBe('ready');
    // What the dashboard shows is this coordinator's own time of receipt.
    expect(Math.abs(view.get('n2')!.lastSeen - (Date.now() + 30_000))).toBeLessThan(2_000);
  });

  it('on a cold start, does not count a node ready whose last snapshot is old, even with its clock 30 s behind', async () => {
    await report('old');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await report('fresh');
    const view = new ClusterView({ lostAfterMs: 1_000, suspectAfterMs: 500, clock: skewed(-30_000) });
    await follow(view);
    expect(view.get('old')?.liveness).toBe('lost');
    expect(view.get('fresh')?.liveness).toBe('ready');
  });

  it('counts a node ready again from the moment its next snapshot arrives after the rebuild', async () => {
    await report('old');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await report('fresh');
    const transitions: LivenessTransition[] = [];
    const view = new ClusterView({ lostAfterMs: 1_000, suspectAfterMs: 500, clock: skewed(-30_000) });
    await follow(view, transitions);
    expect(view.get('old')?.liveness).toBe('lost');
    await report('old', 2);
    await waitFor(() => view.get('old')?.liveness === 'ready', { message: 'old ready again' });
    expect(transitions.map((t) => [t.nodeId, t.kind])).toEqual([['old', 'node_returned']]);
  });

  it('turns a silent node suspect then lost by monotonic silence, whatever the wall clock does', () => {
    let mono = 0;
    let wall = 1_700_000_000_000;
    const view = new ClusterView({ lostAfterMs: 10_000, suspectAfterMs: 3_000, clock: { wall: () => wall, monotonic: () => mono } });
    view.apply(syntheticSnapshot({ nodeId: 'n1' }));
    wall += 3_600_000; // an NTP step forward of an hour
    expect(view.sweep()).toEqual([]);
    wall -= 7_200_000; // and back two
    mono += 2_999;
    expect(view.sweep()).toEqual([]);
    mono += 1;
    expect(view.sweep().map((t) => [t.kind, t.silentMs])).toEqual([['node_suspect', 3_000]]);
    mono += 7_000;
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_lost']);
  });
});
