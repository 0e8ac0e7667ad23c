import { describe, expect, it } from 'vitest';
import { DeltaMessageSchema, SnapshotMessageSchema, type NodeRow } from '@allot/protocol/http';
import { ClusterView } from '../view.ts';
import { syntheticSnapshot } from './fixtures.ts';
import { DashboardModel } from './model.ts';
import { dashboardHub } from './server.ts';
import { FakeSseSink } from '../testing/sse-sink.ts';

/*
 * The page feed end to end in one process: a real ClusterView, the DashboardModel and the hub as the server wires
 * them, and pages that apply what they are sent as the dashboard's store does (a snapshot replaces, a delta merges).
 * Whatever a page's pace, after the churn it must hold exactly the coordinator's rows.
 */

const T0 = 1_700_000_000_000;
let now = T0;
const clock = { wall: () => now, monotonic: () => now };

/** The page's side: parses the frames it was sent and applies them as apps/dashboard/src/store.ts does. */
class Page {
  readonly rows = new Map<string, NodeRow>();
  readonly frames: { event: string; bytes: number }[] = [];
  readonly sink: FakeSseSink;
  #read = 0;
  constructor(sink: FakeSseSink) {
    this.sink = sink;
  }
  /** Applies the frames written since the last call. */
  sync(): this {
    const blocks = this.sink.text.slice(this.#read).split('\n\n');
    this.#read = this.sink.text.length - (blocks.pop() ?? '').length;
    for (const block of blocks) {
      const event = /^event: (\w+)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event === undefined || data === undefined) continue;
      this.frames.push({ event, bytes: data.length });
      if (event === 'snapshot') {
        const m = SnapshotMessageSchema.parse(JSON.parse(data));
        this.rows.clear();
        for (const r of m.nodes) this.rows.set(r.nodeId, r);
      } else if (event === 'delta') {
        const m = DeltaMessageSchema.parse(JSON.parse(data));
        for (const r of m.nodes ?? []) this.rows.set(r.nodeId, r);
        for (const id of m.removed ?? []) this.rows.delete(id);
        for (const [id, at] of Object.entries(m.seen ?? {})) {
          const r = this.rows.get(id);
          if (r !== undefined) this.rows.set(id, { ...r, lastSeen: at });
        }
      }
    }
    return this;
  }
  sorted(): NodeRow[] {
    return [...this.rows.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  }
}

function feed(nodes: number) {
  now = T0;
  const view = new ClusterView({ lostAfterMs: 60_000, suspectAfterMs: 15_000, clock });
  const id = (i: number) => `n${String(i).padStart(4, '0')}`;
  // A 30 s heartbeat: nodes that churn rarely stay ready through a test's few seconds, whatever the liveness rules.
  for (let i = 0; i < nodes; i++) view.apply(syntheticSnapshot({ nodeId: id(i), heartbeatMs: 30_000 }));
  const model = new DashboardModel(view, undefined, { seriesEveryMs: 5_000 });
  const hub = dashboardHub(model, () => now, { heartbeatMs: 3_600_000 });
  const tick = () => {
    const d = model.tick(now);
    if (d !== null) hub.broadcast('delta', d);
  };
  tick();
  let seq = 2;
  let k = 0;
  let changed = 0;
  /** 250 ms of a fleet: `changes` nodes move (seq), `beats` only report again, every 20th change a node leaves. */
  const churn = (changes: number, beats: number) => {
    now += 250;
    for (let j = 0; j < changes; j++) {
      const n = id((k++ * 7) % nodes);
      if (++changed % 20 === 0) view.setDecommissioned(n, { at: now, removedAt: now });
      else view.apply(syntheticSnapshot({ nodeId: n, seq: seq++, memoryCommitted: seq, at: now, heartbeatMs: 30_000 }));
    }
    for (let j = 0; j < beats; j++) {
      const n = id((k++ * 13) % nodes);
      const cur = view.get(n);
      if (cur !== undefined) view.apply({ ...cur.snapshot, at: now });
    }
    view.sweep();
    tick();
  };
  /** The coordinator's rows now, as the API lists them (after the last tick: the feed is as of a tick). */
  const truth = () => model.rows();
  return { view, model, hub, churn, truth, add: (capacity: number) => hub.add(new FakeSseSink(capacity)) };
}

function connect(f: ReturnType<typeof feed>, capacity = 1 << 30): Page {
  const sink = new FakeSseSink(capacity);
  f.hub.add(sink);
  return new Page(sink).sync();
}

describe('the dashboard feed: every page ends with the coordinator rows', () => {
  it('a page connected throughout, sent deltas only, holds exactly the coordinator rows after churn', () => {
    const f = feed(300);
    const page = connect(f);
    for (let t = 0; t < 40; t++) f.churn(10, 30);
    page.sync();
    expect(page.frames[0]?.event).toBe('snapshot');
    expect(page.frames.slice(1).every((fr) => fr.event === 'delta')).toBe(true);
    expect(page.sorted()).toEqual(f.truth());
  });

  it('a page that joins late gets a complete view: its snapshot and the deltas after it make the coordinator rows', () => {
    const f = feed(300);
    for (let t = 0; t < 20; t++) f.churn(10, 30);
    // Between two ticks: the view has moved on since the last one; the snapshot is as of that tick, the next delta the rest.
    now += 100;
    f.view.apply(syntheticSnapshot({ nodeId: 'n0001', seq: 10_000, memoryCommitted: 1, at: now, heartbeatMs: 30_000 }));
    const late = connect(f);
    for (let t = 0; t < 5; t++) f.churn(10, 30);
    late.sync();
    expect(late.sorted()).toEqual(f.truth());
    expect(late.rows.get('n0001')?.seq).toBeGreaterThanOrEqual(10_000);
  });

  it('a slow page is sent what changed since what it was sent, not a snapshot nor the deltas it missed', () => {
    const f = feed(1_000);
    const fast = connect(f);
    const slow = connect(f, 1);
    const snapshotBytes = slow.frames[0]?.bytes ?? 0;
    // Its socket is full: 40 ticks of churn touch ~250 of 1,000 rows, 100 of them several times.
    for (let t = 0; t < 40; t++) f.churn(10, 30);
    expect(slow.sync().frames).toHaveLength(1);
    slow.sink.capacity = 1 << 30;
    slow.sink.drain();
    slow.sync();
    expect(slow.frames.map((fr) => fr.event)).toEqual(['snapshot', 'delta', 'delta']); // one missed series point, then the rest
    expect(f.hub.stats).toMatchObject({ catchUps: 1, resyncs: 0 });
    const catchUp = slow.frames.slice(1).reduce((s, fr) => s + fr.bytes, 0);
    expect(catchUp).toBeLessThan(snapshotBytes / 2);
    for (let t = 0; t < 4; t++) f.churn(10, 30);
    expect(slow.sync().sorted()).toEqual(f.truth());
    expect(fast.sync().sorted()).toEqual(f.truth());
  });

  it('a page that stays behind longer than half the rows is sent one snapshot; one that never drains is dropped', () => {
    const f = feed(200);
    const slow = connect(f, 1);
    for (let t = 0; t < 30; t++) f.churn(10, 0);
    slow.sink.capacity = 1 << 30;
    slow.sink.drain();
    expect(slow.sync().frames.map((fr) => fr.event)).toEqual(['snapshot', 'snapshot']);
    expect(f.hub.stats).toMatchObject({ catchUps: 0, resyncs: 1 });
    expect(slow.sorted()).toEqual(f.truth());

    const stuck = new FakeSseSink(1);
    f.hub.add(stuck);
    now += 31_000;
    f.hub.heartbeat();
    expect(stuck.destroyed).toBe(true);
    f.hub.close();
  });

  it('builds one snapshot a tick, whatever the pages that connect meanwhile', () => {
    const f = feed(100);
    const first = f.model.snapshotJson(now);
    expect(f.model.snapshotJson(now + 100)).toBe(first);
    f.churn(5, 0);
    const next = f.model.snapshotJson(now);
    expect(next).not.toBe(first);
    expect(f.model.snapshotJson(now)).toBe(next);
  });

  it('sends no row for a heartbeat that changes nothing a row shows, only its lastSeen', () => {
    const f = feed(100);
    const page = connect(f);
    f.churn(0, 50);
    page.sync();
    const delta = page.frames.at(-1);
    expect(delta?.event).toBe('delta');
    const last = JSON.parse(/^data: (.*)$/m.exec(page.sink.text.trimEnd().split('\n\n').at(-1) ?? '')?.[1] ?? '{}') as Record<
      string,
      unknown
    >;
    expect(last['nodes']).toBeUndefined();
    expect(Object.keys(last['seen'] as object).length).toBeGreaterThan(0);
    expect(page.sorted()).toEqual(f.truth());
  });
});
