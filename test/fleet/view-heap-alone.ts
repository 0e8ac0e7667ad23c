// `node --expose-gc test/fleet/view-heap-alone.ts --nodes 10000`: what a coordinator's ClusterView holds per node, in
// one process (docs/benchmarks.md, "Fleet"). One real 64-core SimHost snapshot (as test/fleet/ingest-alone.ts builds
// it), some of its cores made exclusive to a few allocations, under N node ids, each decoded and validated as the usage
// feed does and applied to a view; then one heartbeat (no list) per node. Prints the V8 heap after a full GC at each
// step, and the same view built from snapshots without the list (what the per-core list costs).
import { UsageSnapshotSchema, type UsageSnapshot } from '@allot/core';
import { decode, encode } from '@allot/protocol';
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { CoreListElision } from '../../apps/agent/src/usage-snapshot.ts';
import { ClusterView } from '../../apps/coordinator/src/view.ts';
import { fleetHost } from './fleet.ts';
import { SimHost, type SimHostShared } from './sim-host.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '10000' }, exclusive: { type: 'string', default: '16' } } });
const nodes = Number(values.nodes);
const exclusive = Number(values.exclusive);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

const MiB = 1024 * 1024;
/** V8's heap in use plus ArrayBuffer backing stores (outside the heap, in RSS all the same), after a full GC. */
function heldBytes(): number {
  gc?.();
  gc?.();
  return getHeapStatistics().used_heap_size + process.memoryUsage().arrayBuffers;
}

const unused = { publish: () => undefined } as unknown as SimHostShared['events'];
const sim = new SimHost(fleetHost(0, 5_000, 250), { publisher: undefined as unknown as SimHostShared['publisher'], events: unused });
await sim.build();
const built = await sim.snapshot();
if (!built.ok) throw new Error(built.error.message);
// A host with VMs on exclusive cores: `exclusive` cores held by allocations of four cores each (ids as the agent's).
const held = {
  ...built.value,
  cpu: {
    ...built.value.cpu,
    cores: built.value.cpu.cores.map((c, i) =>
      i >= 8 && i < 8 + exclusive
        ? { ...c, role: 'exclusive' as const, allocationId: `a-${String(Math.floor(i / 4)).padStart(20, '0')}` }
        : c,
    ),
  },
};
const elision = new CoreListElision();
const full = elision.forPublish(held, 0);
elision.published(full, 0);
const beat = elision.forPublish(held, 1);
const ids = Array.from({ length: nodes }, (_, i) => fleetHost(i, 5_000, 250).nodeId);
const as = (s: UsageSnapshot, nodeId: string): Uint8Array => encode({ ...s, nodeId, bootId: `${nodeId}-boot`, seq: 1 });

function viewOf(s: UsageSnapshot): ClusterView {
  const view = new ClusterView({ lostAfterMs: 60_000 });
  for (const id of ids) {
    const d = decode(UsageSnapshotSchema, as(s, id), Number.POSITIVE_INFINITY);
    if (!d.ok) throw new Error(d.error.message);
    view.apply(d.value);
  }
  return view;
}

const per = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB (${Math.round(bytes / nodes)} B a node)`;
const snapshotTo = process.env.VIEW_HEAP_SNAPSHOT;

/** The view's figures with every node's full report, then with a heartbeat each (the view dropped on return). */
function withLists(): { full: number; beats: number; coresSeen: number | undefined; beatMicros: number; fullMicros: number } {
  const base = heldBytes();
  const view = viewOf(full);
  const withList = heldBytes() - base;
  for (const id of ids) {
    const d = decode(UsageSnapshotSchema, as(beat, id), Number.POSITIVE_INFINITY);
    if (d.ok) view.apply(d.value);
  }
  const beats = heldBytes() - base;
  if (snapshotTo !== undefined) writeHeapSnapshot(snapshotTo);
  // CPU time per report taken in (decode + validate + apply), as usage-feed.ts does, over 3 rounds of every node.
  const costOf = (bytes: Uint8Array[]): number => {
    const t0 = process.cpuUsage();
    for (let round = 0; round < 3; round++)
      for (const b of bytes) {
        const d = decode(UsageSnapshotSchema, b, Number.POSITIVE_INFINITY);
        if (d.ok) view.apply(d.value);
      }
    const used = process.cpuUsage(t0);
    return (used.user + used.system) / (3 * bytes.length);
  };
  const beatMicros = costOf(ids.map((id) => as(beat, id)));
  const fullMicros = costOf(ids.map((id) => as(full, id)));
  return { full: withList, beats, coresSeen: view.get(ids[0] as string)?.snapshot.cpu.cores.length, beatMicros, fullMicros };
}

/** The same view from reports without the list (what the list costs, by difference). */
function withoutLists(): number {
  const base = heldBytes();
  const { coresDigest: _digest, ...listless } = full.cpu;
  const view = viewOf({ ...full, cpu: { ...listless, cores: [] } });
  const bytes = heldBytes() - base;
  if (snapshotTo !== undefined) writeHeapSnapshot(`${snapshotTo}.bare`);
  return view.size > 0 ? bytes : 0;
}

const { full: withList, beats: afterBeats, coresSeen, beatMicros, fullMicros } = withLists();
const withoutList = withoutLists();
console.log(
  `view of ${nodes} nodes (64 cores, ${exclusive} exclusive): full snapshots ${per(withList)}; after a heartbeat each ${per(afterBeats)}; ` +
    `without the per-core list ${per(withoutList)}; the list ${per(withList - withoutList)}; a node read shows ${coresSeen} cores; ` +
    `full report ${as(full, ids[0] as string).length} bytes ${fullMicros.toFixed(0)} µs CPU to take in, heartbeat ${as(beat, ids[0] as string).length} bytes ${beatMicros.toFixed(0)} µs; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
);
