import { request } from 'node:http';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterView } from '../view.ts';
import { DeltaMessageSchema, SnapshotMessageSchema, type DeltaMessage } from '@allot/protocol/http';
import { syntheticSnapshot } from './fixtures.ts';
import { DashboardModel } from './model.ts';
import { startHttpServer, type DashboardServer } from './server.ts';
import { FakeSseSink } from '../testing/sse-sink.ts';
import { frame, SseHub } from './sse.ts';

const T0 = 1_700_000_000_000;
/** The views' clock (wall and monotonic alike): a test moves it by assigning `now`. */
let now = T0;
const clock = { wall: () => now, monotonic: () => now };

function viewWith(ids: string[]): ClusterView {
  now = T0;
  const view = new ClusterView({ lostAfterMs: 60_000, suspectAfterMs: 15_000, clock });
  for (const nodeId of ids) view.apply(syntheticSnapshot({ nodeId }));
  return view;
}

describe('DashboardModel: deltas coalesce what changed between two ticks', () => {
  it('sends a node that changed many times as one row, its latest, and nothing when nothing changed', () => {
    const view = viewWith(['n1', 'n2', 'n3']);
    const model = new DashboardModel(view, undefined, { seriesEveryMs: 5_000 });
    const first = model.tick(T0);
    expect(first?.nodes?.map((r) => r.nodeId)).toEqual(['n1', 'n2', 'n3']);
    expect(model.tick(T0 + 250)).toBeNull();

    now = T0 + 300;
    for (let seq = 2; seq <= 50; seq++) view.apply(syntheticSnapshot({ nodeId: 'n2', seq, memoryCommitted: seq * 100 }));
    const delta = model.tick(T0 + 500) as DeltaMessage;
    expect(DeltaMessageSchema.parse(delta)).toBeTruthy();
    expect(delta.nodes?.map((r) => [r.nodeId, r.seq, r.memory.committed])).toEqual([['n2', 50, 5_000]]);
    // The cluster summary (a pass over every node) follows at most once a second (summaryEveryMs).
    expect(delta.cluster).toBeUndefined();
    const summary = model.tick(T0 + 1_000) as DeltaMessage;
    expect(summary.nodes).toBeUndefined();
    expect(summary.cluster?.usage.memory.committed).toBe(5_000);
    expect(model.tick(T0 + 1_250)).toBeNull();
  });

  it('sends a heartbeat that changed nothing but lastSeen as `seen` only', () => {
    const view = viewWith(['n1']);
    const model = new DashboardModel(view, undefined);
    model.tick(T0);
    now = T0 + 1_000;
    view.apply(syntheticSnapshot({ nodeId: 'n1' }));
    const delta = model.tick(T0 + 1_000) as DeltaMessage;
    expect(delta.nodes).toBeUndefined();
    expect(delta.seen).toEqual({ n1: T0 + 1_000 });
  });

  it('sends a liveness change as a row, adds a series point when due, and passes events on once', () => {
    const view = viewWith(['n1']);
    const model = new DashboardModel(view, undefined, { seriesEveryMs: 5_000 });
    model.tick(T0);
    now = T0 + 20_000;
    view.sweep();
    model.addEvent({ kind: 'node_suspect', nodeId: 'n1', at: T0 + 20_000, seq: 7 });
    const delta = model.tick(T0 + 20_000) as DeltaMessage;
    expect(delta.nodes?.[0]?.liveness).toBe('suspect');
    expect(delta.cluster?.usage.nodes.suspect).toBe(1);
    expect(delta.point?.at).toBe(T0 + 20_000);
    expect(delta.events?.map((e) => e.seq)).toEqual([7]);
    expect(model.tick(T0 + 20_250)).toBeNull();
    expect(model.snapshot(T0 + 20_250).events.map((e) => e.seq)).toEqual([7]);
  });

  it('sends a node that left the view (decommissioned, nothing left) as removed, and a cordon as a row', () => {
    const view = viewWith(['n1', 'n2']);
    const model = new DashboardModel(view, undefined);
    model.tick(T0);
    view.setDecommissioned('n1', { at: T0, removedAt: T0 });
    view.setCordoned('n2', true);
    const delta = model.tick(T0 + 250) as DeltaMessage;
    expect(delta.removed).toEqual(['n1']);
    expect(delta.nodes?.map((r) => [r.nodeId, r.cordoned])).toEqual([['n2', true]]);
    expect(model.snapshot(T0 + 250).nodes.map((r) => r.nodeId)).toEqual(['n2']);
  });

  it('counts events beyond the per-delta bound instead of sending them', () => {
    const model = new DashboardModel(viewWith(['n1']), undefined, { maxEventsPerDelta: 10 });
    model.tick(T0);
    for (let i = 0; i < 25; i++) model.addEvent({ kind: 'allocated', nodeId: 'n1', at: T0, seq: i });
    const delta = model.tick(T0 + 250) as DeltaMessage;
    expect(delta.events).toHaveLength(10);
    expect(delta.eventsDropped).toBe(15);
  });
});

describe('SseHub: a slow client costs a bounded buffer', () => {
  const hubs: SseHub[] = [];
  afterEach(() => hubs.splice(0).forEach((h) => h.close()));
  const hubWith = (opts: Partial<ConstructorParameters<typeof SseHub>[0]> = {}) => {
    const hub = new SseHub({ snapshotJson: () => JSON.stringify({ everything: true }), heartbeatMs: 60_000, ...opts });
    hubs.push(hub);
    return hub;
  };

  it('sends a snapshot on connect, then every broadcast', () => {
    const hub = hubWith();
    const sink = new FakeSseSink(1 << 20);
    hub.add(sink);
    hub.broadcast('delta', { a: 1 });
    hub.broadcast('delta', { a: 2 });
    expect(sink.events()).toEqual(['snapshot', 'delta', 'delta']);
    expect(sink.chunks[2]).toBe(frame('delta', { a: 2 }));
  });

  it('drops and counts a frame that cannot be serialised instead of throwing out of the broadcast', () => {
    const hub = hubWith();
    const sink = new FakeSseSink(1 << 20);
    hub.add(sink);
    expect(() => hub.broadcast('delta', { details: { n: 2n ** 70n } })).not.toThrow();
    hub.broadcast('delta', { a: 1 });
    expect(sink.events()).toEqual(['snapshot', 'delta']);
    expect(hub.stats.unserialisable).toBe(1);
  });

  it('without a catch-up, writes nothing to a blocked client, then one snapshot instead of the deltas it missed', () => {
    const hub = hubWith();
    const slow = new FakeSseSink(10);
    const fast = new FakeSseSink(1 << 20);
    hub.add(slow);
    hub.add(fast);
    expect(slow.events()).toEqual(['snapshot']);
    for (let i = 0; i < 1_000; i++) hub.broadcast('delta', { i, padding: 'x'.repeat(100) });
    expect(slow.events()).toEqual(['snapshot']);
    expect(fast.events()).toHaveLength(1_001);
    slow.drain();
    expect(slow.events()).toEqual(['snapshot', 'snapshot']);
    expect(hub.stats.resyncs).toBe(1);
    slow.drain();
    hub.broadcast('delta', { i: 'after' });
    expect(slow.events()).toEqual(['snapshot', 'snapshot', 'delta']);
  });

  it('drops a client stalled past stalledMs, and one holding more than maxBufferedBytes at once', () => {
    let now = T0;
    const hub = hubWith({ stalledMs: 1_000, now: () => now });
    const stalled = new FakeSseSink(10);
    hub.add(stalled);
    now += 500;
    hub.heartbeat();
    expect(stalled.destroyed).toBe(false);
    now += 1_000;
    hub.heartbeat();
    expect(stalled.destroyed).toBe(true);
    expect(hub.size).toBe(0);

    const hub2 = hubWith({ maxBufferedBytes: 100, snapshotJson: () => JSON.stringify({ big: 'x'.repeat(1_000) }) });
    const huge = new FakeSseSink(1 << 20);
    hub2.add(huge);
    expect(huge.destroyed).toBe(true);
    expect(hub2.stats.dropped).toBe(1);
  });

  it('holds at most maxTotalBufferedBytes for all clients together: past it, the one holding the most is dropped', () => {
    // Pages that connect and never read: each holds its snapshot unsent (5.6 MiB at 10,000 nodes).
    const hub = hubWith({ maxTotalBufferedBytes: 2_500, snapshotJson: () => JSON.stringify({ big: 'x'.repeat(1_000) }) });
    const stuck = [new FakeSseSink(10), new FakeSseSink(10)];
    for (const s of stuck) hub.add(s);
    expect(stuck.map((s) => s.destroyed)).toEqual([false, false]);
    const reading = new FakeSseSink(1 << 20);
    hub.add(reading);
    hub.broadcast('delta', { padding: 'y'.repeat(400) }); // the stuck ones miss it; it costs them nothing
    reading.drain(); // this one reads: its socket takes what it was sent
    const third = new FakeSseSink(10);
    hub.add(third); // 3 x ~1,030 bytes unsent > 2,500: the largest (the first, by a hair or by order) goes
    expect([...stuck, third].filter((s) => s.destroyed)).toHaveLength(1);
    expect(reading.destroyed).toBe(false);
    expect(hub.size).toBe(3);
    expect(hub.stats.dropped).toBe(1);
  });
});

describe('GET /api/events/stream', () => {
  let server: DashboardServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('sends a valid snapshot on connect, then at most ~4 deltas a second while a node changes 200 times a second', async () => {
    const view = viewWith(['n1', 'n2']);
    const started = await startHttpServer(
      { view },
      { host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), tickMs: 250, dashboardDir: '/nonexistent' },
    );
    if (!started.ok) throw new Error(started.error.message);
    server = started.value;
    const frames: { event: string; data: unknown }[] = [];
    const req = request(`${server.url}/api/events/stream`);
    const done = new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          let i;
          while ((i = buf.indexOf('\n\n')) !== -1) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const event = /^event: (\w+)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event !== undefined && data !== undefined) frames.push({ event, data: JSON.parse(data) });
          }
        });
        res.on('close', resolve);
      });
      req.on('error', (e) => (e.message === 'socket hang up' ? resolve() : reject(e)));
    });
    req.end();

    const t0 = Date.now();
    let seq = 1;
    while (Date.now() - t0 < 2_000) {
      seq += 1;
      view.apply(syntheticSnapshot({ nodeId: 'n1', seq, memoryCommitted: seq }));
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 400));
    req.destroy();
    await done;

    expect(frames[0]?.event).toBe('snapshot');
    expect(SnapshotMessageSchema.parse(frames[0]?.data).nodes.map((n) => n.nodeId)).toEqual(['n1', 'n2']);
    const deltas = frames.filter((f) => f.event === 'delta').map((f) => DeltaMessageSchema.parse(f.data));
    expect(deltas.length).toBeGreaterThanOrEqual(5);
    expect(deltas.length).toBeLessThanOrEqual(11); // 2.4 s at 4 a second, with timer slack
    // The summary has its own cadence (at most once a second) and may come in a delta of its own after the last row.
    const rows = deltas.filter((d) => (d.nodes?.length ?? 0) > 0);
    expect(rows.at(-1)?.nodes?.[0]?.seq).toBe(seq);
  });

  it('answers the JSON API and 404s unknown nodes and routes', async () => {
    const view = viewWith(['n1', 'n2']);
    view.apply(syntheticSnapshot({ nodeId: 'n3', labels: { zone: 'b' }, tenants: { acme: { vms: 1, vcpus: 2, memoryMiB: 1024 } } }));
    const extra = new Map([['/metrics', (_req: unknown, res: { end: (s: string) => void }) => res.end('m 1\n')]]);
    const started = await startHttpServer(
      { view },
      { host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), dashboardDir: '/nonexistent', extraRoutes: extra as never },
    );
    if (!started.ok) throw new Error(started.error.message);
    server = started.value;
    const get = async (p: string) => {
      const r = await fetch(server!.url + p);
      return { status: r.status, body: (await r.json().catch(() => null)) as Record<string, unknown> };
    };
    expect((await get('/api/nodes')).body['nodes']).toHaveLength(3);
    expect(((await get('/api/nodes?label=zone=b')).body['nodes'] as { nodeId: string }[]).map((n) => n.nodeId)).toEqual(['n3']);
    expect(((await get('/api/nodes?tenant=acme')).body['nodes'] as { nodeId: string }[]).map((n) => n.nodeId)).toEqual(['n3']);
    expect((await get('/api/nodes?health=bogus')).status).toBe(400);
    expect((await get('/api/nodes/n3')).body['node']).toMatchObject({ nodeId: 'n3' });
    expect((await get('/api/nodes/zz')).status).toBe(404);
    expect((await get('/api/nodes/bad.id')).status).toBe(400);
    expect((await get('/api/nodes/n3/allocations')).status).toBe(503);
    expect((await get('/api/tenants')).body['tenants']).toEqual([
      { tenantId: 'acme', usage: { vms: 1, vcpus: 2, memoryMiB: 1024, nodes: 1 } },
    ]);
    expect((await get('/api/cluster')).body['cluster']).toMatchObject({ usage: { nodes: { total: 3 } } });
    expect((await get('/api/series')).body['at']).toHaveLength(1);
    expect((await get('/api/nope')).status).toBe(404);
    expect(await (await fetch(server.url + '/metrics')).text()).toBe('m 1\n');
    expect((await fetch(server.url + '/', { method: 'POST' })).status).toBe(405);
    const page = await fetch(server.url + '/');
    expect(page.status).toBe(503);
    expect(await page.text()).toContain('dashboard not built: run pnpm build');
  });
});

describe('SseHub on bad data', () => {
  it('counts a resync snapshot that cannot be built when a slow client drains, instead of throwing from the socket callback', () => {
    let calls = 0;
    const hub = new SseHub({
      snapshotJson: () => {
        calls += 1;
        if (calls > 1) throw new TypeError('Do not know how to serialize a BigInt');
        return JSON.stringify({ ok: true });
      },
      heartbeatMs: 60_000,
    });
    const sink = new FakeSseSink(10);
    hub.add(sink);
    hub.broadcast('delta', { n: 1 });
    expect(() => sink.drain()).not.toThrow();
    expect(hub.stats.errors).toBe(1);
    hub.close();
  });
});
