import type { PlacementStrategy } from '@allot/core';
import { NAMED_NODE } from './filters.ts';
import { BINPACK, MANUAL, ROUND_ROBIN, SPREAD, SPREAD_DOMAIN } from './scorers.ts';
import type { CandidateSource, ClusterSnapshot } from './snapshot.ts';
import type { DomainLoad, Strategy, StepContext } from './types.ts';

/*
 * The strategies: each a set of score plugins with weights, the order the walk visits nodes in, and how many feasible
 * nodes it looks at. Adding one is adding an entry here; decide() has no per-strategy branch.
 */

/**
 * How many feasible nodes to look at before taking the best: about log2(n), at least 2 (the power of two choices, after
 * Nomad's limit iterator), and at least as many as the candidates returned so the coordinator has retries.
 */
export function sampleLimit(schedulable: number, maxCandidates: number): number {
  return Math.max(2, Math.ceil(Math.log2(Math.max(1, schedulable))), maxCandidates);
}

const nothing: CandidateSource = { next: () => undefined };

const need = (ctx: StepContext) => ({ memoryMiB: ctx.demand.memoryMiB, vcpus: ctx.demand.vcpus, exclusive: ctx.demand.exclusive });

/**
 * spread-domain's semantics are an order: the least loaded domain first, the emptiest node within it. Its weights
 * reproduce that order exactly: SpreadDomain is normalised by rank (two domain levels of a sample differ by at least
 * 100 / (levels - 1), levels <= nodes sampled), Spread's scores lie in 0..100, so with weights 1000 : 1 a better domain
 * always outweighs any spread difference while at most 1,000 nodes are sampled (about log2 n, at most maxCandidates).
 */
export const SPREAD_DOMAIN_WEIGHT = 1000;

export const STRATEGIES: Readonly<Record<PlacementStrategy, Strategy>> = {
  binpack: {
    name: 'binpack',
    scorers: [{ plugin: BINPACK, weight: 1 }],
    source: (snap, ctx) => snap.byFreeMemory(need(ctx), 'ascending'),
    sampleSize: sampleLimit,
  },
  spread: {
    name: 'spread',
    scorers: [{ plugin: SPREAD, weight: 1 }],
    source: (snap, ctx) => snap.byFreeMemory(need(ctx), 'descending'),
    sampleSize: sampleLimit,
  },
  'spread-domain': {
    name: 'spread-domain',
    scorers: [
      { plugin: SPREAD_DOMAIN, weight: SPREAD_DOMAIN_WEIGHT },
      { plugin: SPREAD, weight: 1 },
    ],
    source: (snap, ctx) => domainSource(snap, ctx),
    sampleSize: sampleLimit,
  },
  'round-robin': {
    name: 'round-robin',
    scorers: [{ plugin: ROUND_ROBIN, weight: 1 }],
    source: (snap, ctx, placement) => snap.inStableOrder(need(ctx), placement.roundRobinCursor),
    // The next nodes after the cursor are the answer: no sample beyond the candidates returned.
    sampleSize: (_schedulable, maxCandidates) => maxCandidates,
  },
  manual: {
    name: 'manual',
    scorers: [{ plugin: MANUAL, weight: 1 }],
    filters: [NAMED_NODE],
    source: () => nothing,
    sampleSize: () => 1,
    namesNode: true,
  },
};

/** Domains from the least loaded by this group or tenant; within each, the emptiest nodes first. */
function domainSource(snap: ClusterSnapshot, ctx: StepContext): CandidateSource {
  const load = ctx.domainLoad as DomainLoad;
  const order = [...load.counts.entries()].sort(([a, x], [b, y]) => x - y || compareDomain(a, b)).map(([value]) => value);
  let i = 0;
  let current: CandidateSource | null = null;
  const n = need(ctx);
  return {
    next: () => {
      for (;;) {
        if (current === null) {
          const value = order[i];
          if (i >= order.length) return undefined;
          i += 1;
          current = snap.byFreeMemoryInDomain(load.label, value ?? null, n, 'descending');
        }
        const e = current.next();
        if (e !== undefined) return e;
        current = null;
      }
    },
  };
}

function compareDomain(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1; // unlabelled nodes last among equals
  if (b === null) return -1;
  return a < b ? -1 : 1;
}
