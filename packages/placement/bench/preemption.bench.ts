// Preemption's post-filter against cluster size: step 1 (preemptionTargets: the lowest victim level over the whole
// cluster, then a ranked sample) from the snapshots' per-priority figures, on full clusters where nothing fits without
// eviction. Goal: per-decision time grows like log(nodes), as decide's does. Prints figures; asserts nothing.
// Run: node packages/placement/bench/preemption.bench.ts  (or `pnpm bench preemption`)
import { performance } from 'node:perf_hooks';
import type { Allocation, NodeView, PlacementOptions } from '@allot/core';
import { ClusterIndex } from '../src/cluster-index.ts';
import { allocation, allocationRequest, nodeHolding } from '../src/fixtures.ts';
import { preemptionTargets } from '../src/post-filter.ts';
import { seededRandom, type RandomSource } from '../src/random.ts';

const SIZES = [1_000, 10_000, 100_000];
const DECISIONS = 500;
/** The priority levels tenants use (a handful, as clusters do); victims are drawn from them. */
const LEVELS = [0, 10, 20, 50, 100, 200, 500];

/** A node filled to the brim with 4-12 VMs of random priorities: nothing fits without preempting. */
function fullNode(id: string, random: RandomSource, seq: number): { view: NodeView; held: Allocation[] } {
  const cores = [16, 32, 64][Math.floor(random() * 3)] as number;
  const memoryMiB = cores * 4096;
  const count = 4 + Math.floor(random() * 9);
  const held: Allocation[] = [];
  let left = memoryMiB;
  for (let i = 0; i < count && left > 0; i += 1) {
    const memory = i === count - 1 ? left : Math.min(left, 1024 * (1 + Math.floor(random() * 16)));
    left -= memory;
    held.push(allocation(`${id}:${i + 1}`, id, memory, 1, LEVELS[Math.floor(random() * LEVELS.length)] as number));
  }
  return { view: nodeHolding({ id, memoryMiB, cores, seq }, held), held };
}

const options: PlacementOptions = { constraints: [], allowPreemption: true };
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});
function bestOf(rounds: number, ops: number, body: () => void): number {
  let best = Infinity;
  for (let i = 0; i < rounds; i += 1) {
    collect();
    const t0 = performance.now();
    body();
    best = Math.min(best, ((performance.now() - t0) * 1000) / ops);
  }
  return best;
}
const fmt = (n: number, digits = 1) => n.toFixed(digits).padStart(10);

console.log('preemption post-filter, step 1 (µs per decision, mean of %d requests of 1-32 GiB at priorities 15-600)', DECISIONS);
console.log(
  `${'nodes'.padStart(8)} ${'targets'.padStart(10)} ${'ratio'.padStart(6)} ${'examined'.padStart(10)} ${'first(ms)'.padStart(10)} ${'upsert'.padStart(10)} ${'upsert0'.padStart(10)} ${'heartbeat'.padStart(10)}`,
);
let previous: number | undefined;
for (const size of SIZES) {
  const random = seededRandom(size);
  const nodes = Array.from({ length: size }, (_, i) => fullNode(`node-${i}`, random, 1));
  const index = ClusterIndex.of(
    nodes.map((n) => n.view),
    { random: seededRandom(42) },
  );
  const bare = ClusterIndex.of(
    nodes.map((n) => n.view),
    { random: seededRandom(42) },
  );
  const rr = seededRandom(7);
  const requests = Array.from({ length: DECISIONS }, (_, i) =>
    allocationRequest(1024 * (1 + Math.floor(rr() * 32)), 1 + Math.floor(rr() * 8), {
      requestId: `p${i}`,
      priority: [15, 30, 60, 110, 210, 600][Math.floor(rr() * 6)] as number,
    }),
  );
  const ctx = { random: seededRandom(9) };
  // The first decision builds the eviction trees it asks about (O(n log n) each, once): timed apart.
  const t0 = performance.now();
  for (const level of LEVELS) index.byRoomEvicting(level, { memoryMiB: 0, vcpus: 0, exclusive: false }, 'descending').next();
  const firstMs = performance.now() - t0;
  let examined = 0;
  const perDecision = bestOf(3, requests.length, () => {
    examined = 0;
    for (const r of requests) {
      const t = preemptionTargets(index, r, options, ctx, 4);
      if (t.ok) examined += t.value.examined;
    }
  });
  // Upsert with every level's eviction tree kept (the price of the trees), and without any (the index alone).
  const fresh = Array.from({ length: Math.min(size, 2_000) }, (_, i) => fullNode(`node-${i}`, random, 2).view);
  let seq = 10;
  const upsertOn = (into: ClusterIndex) => () => {
    for (let i = 0; i < 20_000; i += 1) {
      const v = fresh[i % fresh.length] as NodeView;
      seq += 1;
      into.upsert({ ...v, snapshot: { ...v.snapshot, seq } });
    }
  };
  const upsert = bestOf(3, 20_000, upsertOn(index));
  const upsertBare = bestOf(3, 20_000, upsertOn(bare));
  // A heartbeat: the same usage at a higher seq; the eviction trees are left alone when no room changed.
  const same = fresh.map((v) => v);
  const heartbeat = bestOf(3, 20_000, () => {
    for (let i = 0; i < 20_000; i += 1) {
      const v = same[i % same.length] as NodeView;
      seq += 1;
      index.upsert({ ...v, snapshot: { ...v.snapshot, seq } });
    }
  });
  const ratio = previous === undefined ? '     -' : (perDecision / previous).toFixed(2).padStart(6);
  console.log(
    `${String(size).padStart(8)} ${fmt(perDecision)} ${ratio} ${fmt(examined / requests.length)} ${fmt(firstMs)} ${fmt(upsert, 2)} ${fmt(upsertBare, 2)} ${fmt(heartbeat, 2)}`,
  );
  previous = perDecision;
}
console.log('ratio: time at this size / time at the previous (10x smaller) size; log growth would give about 1.3-2, linear 10.');
console.log('examined: nodes whose filters ran per decision (binary search over the levels, then a sample of up to 64 nodes).');
console.log(
  'first(ms): building the eviction trees of all %d levels once; upsert/upsert0: µs per node snapshot with/without them.',
  LEVELS.length,
);
