// Placement decision time against cluster size, for binpack and spread, plus the index's upsert cost.
// Goal: per-placement time grows no faster than log(nodes). Prints figures; asserts nothing.
// Run: node packages/placement/bench/placement.bench.ts  (or `pnpm bench placement`)
import { performance } from 'node:perf_hooks';
import type { NodeView, PlacementOptions } from '@allot/core';
import { ClusterIndex } from '../src/cluster-index.ts';
import { filtersFor, firstFailure } from '../src/filters.ts';
import { allocationRequest, nodeView } from '../src/fixtures.ts';
import { decide, demandOf } from '../src/decide.ts';
import { seededRandom, type RandomSource } from '../src/random.ts';

const SIZES = [10, 100, 1_000, 10_000, 100_000];
const PLACEMENTS = 3_000;

function randomNode(id: string, random: RandomSource, seq: number): NodeView {
  const cores = [16, 32, 48, 64][Math.floor(random() * 4)] as number;
  const memoryMiB = cores * 4096;
  const ratio = [1, 2, 4][Math.floor(random() * 3)] as number;
  return nodeView({
    id,
    memoryMiB,
    memoryCommitted: Math.floor(memoryMiB * random()),
    cores,
    reservedCores: 2,
    cpuOvercommit: ratio,
    sharedVcpusCommitted: Math.floor((cores - 2) * ratio * random()),
    labels: { zone: `z${Math.floor(random() * 3)}` },
    seq,
  });
}

function requests(random: RandomSource) {
  return Array.from({ length: PLACEMENTS }, (_, i) =>
    allocationRequest(1024 * (1 + Math.floor(random() * 16)), 1 + Math.floor(random() * 8), { requestId: `r${i}` }),
  );
}

const fmt = (n: number, digits = 2) => n.toFixed(digits).padStart(9);
const options = (strategy: 'binpack' | 'spread'): PlacementOptions => ({ strategy, constraints: [], allowPreemption: false });

console.log('placement decision time (µs per placement, mean of %d requests of 1-16 GiB, 1-8 vCPUs)', PLACEMENTS);
console.log(
  `${'nodes'.padStart(8)} ${'binpack'.padStart(9)} ${'ratio'.padStart(6)} ${'spread'.padStart(9)} ${'ratio'.padStart(6)} ${'examined'.padStart(9)} ${'scan-all'.padStart(10)} ${'upsert'.padStart(9)} ${'ratio'.padStart(6)}`,
);

// gc() between sections when run with --expose-gc (pnpm bench does), so one section's garbage is not billed to the next.
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

/**
 * The best of several rounds, in µs per operation: the machine is shared (2 cores, other processes running), and the
 * fastest round is the one least disturbed by them; the first rounds also warm the JIT.
 */
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

let previous: { binpack: number; spread: number; upsert: number } | null = null;
for (const size of SIZES) {
  const random = seededRandom(size);
  const views = Array.from({ length: size }, (_, i) => randomNode(`node-${i}`, random, 1));
  const index = ClusterIndex.of(views, { random: seededRandom(42) });
  const reqs = requests(seededRandom(7));
  const ctx = { random: seededRandom(9) };

  const perStrategy: Record<'binpack' | 'spread', number> = { binpack: 0, spread: 0 };
  let examined = 0;
  for (const strategy of ['binpack', 'spread'] as const) {
    const opts = options(strategy);
    perStrategy[strategy] = bestOf(5, reqs.length, () => {
      for (const r of reqs) decide(index, r, opts, ctx);
    });
  }
  for (const r of reqs) {
    const d = decide(index, r, options('binpack'), ctx);
    if (d.ok) examined += d.value.examined;
  }

  // Baseline: what visiting every node with every filter would cost (what the index avoids).
  const scanReqs = reqs.slice(0, Math.max(20, Math.floor(200_000 / size)));
  const t1 = performance.now();
  for (const r of scanReqs) {
    const step = { request: r, options: options('binpack'), demand: demandOf(r), weights: { cpu: 1, memory: 1 } };
    const filters = filtersFor(step);
    for (const v of views) firstFailure(filters, step, v);
  }
  const scanAll = ((performance.now() - t1) * 1000) / scanReqs.length;

  // Upsert: a node's new snapshot (its usage changed) replaces the old one.
  const updates = 20_000;
  const fresh = Array.from({ length: Math.min(size, 2_000) }, (_, i) => randomNode(`node-${i}`, random, 2));
  let seq = 10;
  const upsert = bestOf(3, updates, () => {
    for (let i = 0; i < updates; i += 1) {
      const v = fresh[i % fresh.length] as NodeView;
      seq += 1;
      index.upsert({ ...v, snapshot: { ...v.snapshot, seq } });
    }
  });

  const ratio = (now: number, before: number | undefined) => (before === undefined ? '     -' : (now / before).toFixed(2).padStart(6));
  console.log(
    `${String(size).padStart(8)} ${fmt(perStrategy.binpack)} ${ratio(perStrategy.binpack, previous?.binpack)} ${fmt(perStrategy.spread)} ${ratio(perStrategy.spread, previous?.spread)} ${fmt(examined / reqs.length, 1)} ${fmt(scanAll, 1).padStart(10)} ${fmt(upsert)} ${ratio(upsert, previous?.upsert)}`,
  );
  previous = { binpack: perStrategy.binpack, spread: perStrategy.spread, upsert };
}
console.log('ratio: time at this size / time at the previous (10x smaller) size; log growth would give about 1.3-2, linear 10.');
console.log('examined: nodes whose filters ran per binpack placement; scan-all: µs to run every filter on every node once.');
