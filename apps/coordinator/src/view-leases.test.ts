import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { DroppedInput } from './dropped-input.ts';
import { syntheticSnapshot } from './http/fixtures.ts';
import { NodeLeaseTable } from './liveness.ts';
import { ClusterView } from './view.ts';

/** A report of a node that announces an idle status (it reports every 60 s when nothing changes). */
const idleReport = (nodeId: string, seq = 1) => ({ ...syntheticSnapshot({ nodeId, seq }), idleStatusMs: 60_000 });

const lease = (bootId: string, identity = 'id-1') =>
  new TextEncoder().encode(JSON.stringify({ identity, bootId, host: 'h', pid: 1, since: 0 }));

/** A view judging liveness by reports (suspect after 1.5 s, lost after 15 s) and by the leases of `table`. */
function leasedView() {
  const clock = { mono: 0 };
  const coordinatorClock = { wall: () => 1_000_000 + clock.mono, monotonic: () => clock.mono };
  const dropped = new DroppedInput(pino({ level: 'silent' }));
  const table = new NodeLeaseTable(coordinatorClock, { dropped });
  table.caughtUp();
  const view = new ClusterView({ lostAfterMs: 15_000, suspectAfterMs: 1_500, clock: coordinatorClock, leases: table });
  return { view, clock, table, dropped };
}

describe('ClusterView: node leases as liveness', () => {
  it('keeps a node ready for minutes on renewals alone, each up to 2 s late, with no report', () => {
    const { view, clock, table } = leasedView();
    table.renewed('a', lease('boot-a'));
    view.apply(idleReport('a'));
    for (let t = 0; t < 300_000; t += 100) {
      clock.mono = t;
      // Renewed every 5 s, up to 2 s late (a loaded agent or JetStream), as the agent's timer restarts after each write.
      if (t % 7_000 === 0) table.renewed('a', lease('boot-a'));
      expect(view.sweep()).toEqual([]);
    }
    expect(view.get('a')?.liveness).toBe('ready');
  });

  it('turns a node whose renewals and reports stop suspect 10 s after its last renewal and lost at its 15 s TTL', () => {
    const { view, clock, table } = leasedView();
    view.apply(idleReport('a'));
    clock.mono = 3_000;
    table.renewed('a', lease('boot-a'));
    clock.mono = 12_999;
    expect(view.sweep()).toEqual([]);
    clock.mono = 13_000;
    expect(view.sweep().map((t) => [t.kind, t.silentMs])).toEqual([['node_suspect', 10_000]]);
    clock.mono = 17_999;
    expect(view.sweep()).toEqual([]);
    clock.mono = 18_000;
    expect(view.sweep().map((t) => [t.kind, t.silentMs])).toEqual([['node_lost', 15_000]]);
    // Its agent renews again (it had lapsed during a JetStream outage and was taken again): back, as with a report.
    table.renewed('a', lease('boot-a'));
    expect(view.sweep().map((t) => [t.kind, t.from])).toEqual([['node_returned', 'lost']]);
  });

  it('keeps judging a node that reports every heartbeat (no idle status) by its reports: suspect after 3 missed ones', () => {
    const { view, clock, table } = leasedView();
    table.renewed('a', lease('boot-a'));
    view.apply(syntheticSnapshot({ nodeId: 'a' }));
    clock.mono = 1_500;
    table.renewed('a', lease('boot-a'));
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_suspect']);
    // Its lease still keeps it from lost while renewed.
    clock.mono = 16_000;
    table.renewed('a', lease('boot-a'));
    expect(view.sweep()).toEqual([]);
    expect(view.get('a')?.liveness).toBe('suspect');
    // Lost once the renewals stop too; only its next report brings it back (its status comes every heartbeat).
    clock.mono = 31_000;
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_lost']);
    table.renewed('a', lease('boot-a'));
    expect(view.sweep()).toEqual([]);
    expect(view.apply(syntheticSnapshot({ nodeId: 'a', seq: 2 }))?.kind).toBe('node_returned');
  });

  it('holds each lease as last seen while the feed is blind (a server went away), for at most one TTL', () => {
    const { view, clock, table } = leasedView();
    table.renewed('a', lease('boot-a'));
    view.apply(idleReport('a'));
    clock.mono = 4_000;
    table.blind(); // no renewal arrives from here on, for nobody: the coordinator's own feed, not the agents
    clock.mono = 18_000;
    expect(view.sweep()).toEqual([]);
    expect(view.get('a')?.liveness).toBe('ready');
    // Blind for a whole TTL: judged as of now again (suspect, and lost since its lease is unrenewed past its TTL).
    clock.mono = 19_000;
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_lost']);
    table.sighted();
    table.renewed('a', lease('boot-a'));
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_returned']);
  });

  it('brings a suspect node back to ready on its next renewal', () => {
    const { view, clock, table } = leasedView();
    table.renewed('a', lease('boot-a'));
    view.apply(idleReport('a'));
    clock.mono = 11_000;
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_suspect']);
    table.renewed('a', lease('boot-a'));
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_returned']);
  });

  it('sees a clean stop (lease deleted) at once: suspect, then lost after lostAfterMs of silence', () => {
    const { view, clock, table } = leasedView();
    table.renewed('a', lease('boot-a'));
    view.apply(idleReport('a'));
    clock.mono = 100;
    table.deleted('a');
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_suspect']);
    clock.mono = 15_000;
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_lost']);
  });

  it('does not count a lease held by another boot (another agent, or the next boot before its first report) as liveness', () => {
    const { view, clock, table } = leasedView();
    view.apply(idleReport('a'));
    for (let t = 0; t <= 15_000; t += 2_500) {
      clock.mono = t;
      table.renewed('a', lease('boot-other', 'id-2'));
      view.sweep();
    }
    expect(view.get('a')?.liveness).toBe('lost');
  });

  it('judges a node by its reports alone, lost only at twice lostAfterMs, until the leases stored at start are read', () => {
    const clock = { mono: 0 };
    const coordinatorClock = { wall: () => clock.mono, monotonic: () => clock.mono };
    const table = new NodeLeaseTable(coordinatorClock);
    const view = new ClusterView({ lostAfterMs: 15_000, suspectAfterMs: 1_500, clock: coordinatorClock, leases: table });
    view.apply(idleReport('a'));
    clock.mono = 29_999;
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_suspect']);
    clock.mono = 30_000;
    expect(view.sweep().map((t) => t.kind)).toEqual(['node_lost']);
  });

  it('on a cold start, holds a node whose last report is old ready when its replayed lease is fresh', () => {
    const { view, clock, table } = leasedView();
    clock.mono = 100_000;
    table.renewed('a', lease('boot-a'), 2_000);
    table.renewed('b', lease('boot-b'), 20_000);
    expect(view.apply(idleReport('a'), 60_000)).toBeNull();
    view.apply(idleReport('b'), 60_000);
    expect(view.get('a')?.liveness).toBe('ready');
    expect(view.get('b')?.liveness).toBe('lost');
  });
});

describe('NodeLeaseTable', () => {
  it('drops values that are not a lease, counting why, and keeps what it saw before', () => {
    const { table, clock, dropped } = leasedView();
    table.renewed('a', lease('boot-a'));
    clock.mono = 1_000;
    for (const bad of [
      new Uint8Array([0xc1, 0xff]),
      new TextEncoder().encode('[]'),
      new TextEncoder().encode('null'),
      new TextEncoder().encode('{"identity":"x"}'),
      new TextEncoder().encode('{"identity":"x","bootId":7}'),
      new TextEncoder().encode(JSON.stringify({ identity: 'x', bootId: 'b'.repeat(65) })),
    ])
      table.renewed('a', bad);
    expect(dropped.count('node_lease', 'invalid')).toBe(6);
    expect(table.seen('a')).toEqual(expect.objectContaining({ bootId: 'boot-a', at: 0, deleted: false }));
  });

  it('drops a lease value larger than a lease can be before decoding or holding it', () => {
    const { table, clock, dropped } = leasedView();
    table.renewed('a', lease('boot-a'));
    clock.mono = 1_000;
    // Well formed, but 2 KiB: an agent may write anything to its own key, and each coordinator would hold it.
    table.renewed('a', new TextEncoder().encode(JSON.stringify({ identity: 'x', bootId: 'boot-b', host: 'h'.repeat(2_048) })));
    expect(dropped.count('node_lease', 'too_large')).toBe(1);
    expect(table.seen('a')).toEqual(expect.objectContaining({ bootId: 'boot-a', at: 0 }));
  });

  it('holds at most maxKeys ids, making room by forgetting expired leases', () => {
    const clock = { mono: 0 };
    const dropped = new DroppedInput(pino({ level: 'silent' }));
    const table = new NodeLeaseTable({ wall: () => 0, monotonic: () => clock.mono }, { dropped, maxKeys: 2 });
    table.renewed('a', lease('boot-a'));
    table.renewed('b', lease('boot-b'));
    table.renewed('c', lease('boot-c'));
    expect(table.seen('c')).toBeUndefined();
    expect(dropped.count('node_lease', 'table_full')).toBe(1);
    clock.mono = 16_000;
    table.renewed('b', lease('boot-b'));
    table.renewed('c', lease('boot-c'));
    expect([table.seen('a'), table.seen('c')?.bootId]).toEqual([undefined, 'boot-c']);
  });
});
