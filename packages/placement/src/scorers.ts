import { tenantGroupKey, type NodeView } from '@allot/core';
import { idleSharedCores, sharedCoreCount } from './node-capacity.ts';
import type { ClusterSnapshot } from './snapshot.ts';
import type { DomainLoad, PlacementContext, ScorePlugin, Scorer, StepContext } from './types.ts';

export const DEFAULT_DOMAIN_LABEL = 'zone';

/*
 * Scorers: 0..100, higher is better. Scores are ranking figures only; nothing here reaches the ledger, so fractions are
 * fine (integer accounting applies to what is committed, not to preferences).
 */

function fraction(used: number, capacity: number): number {
  if (capacity <= 0) return 1;
  return Math.min(1, Math.max(0, used / capacity));
}

/** Memory allocated after placing the request, as a share of effective capacity. */
export function memoryShareAfter(ctx: StepContext, node: NodeView): number {
  const m = node.snapshot.memory;
  return fraction(m.committed + ctx.demand.memoryMiB, m.effectiveCapacity);
}

/**
 * CPU allocated after placing the request: for shared, committed shared vCPUs over the shared vCPU capacity; for
 * exclusive, cores taken (already exclusive, needed by the shared pool, and this request's) over shared + exclusive cores.
 */
export function cpuShareAfter(ctx: StepContext, node: NodeView): number {
  const c = node.snapshot.cpu;
  if (!ctx.demand.exclusive) return fraction(c.sharedVcpusCommitted + ctx.demand.vcpus, c.sharedVcpusCapacity);
  const shared = sharedCoreCount(node);
  const taken = c.exclusiveCores + (shared - idleSharedCores(node)) + ctx.demand.vcpus;
  return fraction(taken, shared + c.exclusiveCores);
}

/** Weighted share allocated after placement, in 0..1. */
export function allocatedShareAfter(ctx: StepContext, node: NodeView): number {
  const { cpu, memory } = ctx.weights;
  const total = cpu + memory;
  if (total === 0) return 0;
  return (memory * memoryShareAfter(ctx, node) + cpu * cpuShareAfter(ctx, node)) / total;
}

/** binpack: most allocated after placement wins (fills nodes up, keeps others empty for big requests). */
export const binpackScore: Scorer = (ctx, node) => 100 * allocatedShareAfter(ctx, node);

/** spread: least allocated after placement wins (evens load out). */
export const spreadScore: Scorer = (ctx, node) => 100 * (1 - allocatedShareAfter(ctx, node));

/** The failure domain of a node for this label; nodes without it share the `null` domain. */
export function domainOf(node: NodeView, label: string): string | null {
  return Object.hasOwn(node.snapshot.labels, label) ? (node.snapshot.labels[label] as string) : null;
}

/**
 * spread-domain: 100 for a node in a domain holding the fewest of this group's (or tenant's) allocations, 0 in the one
 * holding the most, linear between. The domain decides first, spreadScore breaks ties (see SPREAD_DOMAIN's weight).
 */
export const spreadDomainScore: Scorer = (ctx, node) => {
  const load = ctx.domainLoad;
  if (load === undefined || load.max === load.min) return 100;
  const here = load.counts.get(domainOf(node, load.label)) ?? 0;
  return (100 * (load.max - here)) / (load.max - load.min);
};

/**
 * round-robin: 100 for the node right after the cursor in the stable order (node ids sorted), falling linearly to 0 for
 * the cursor's own node, so successive placements rotate through the cluster.
 */
export const roundRobinScore: Scorer = (ctx, node) => {
  const count = ctx.stableCount ?? 0;
  if (ctx.stableRank === undefined || count <= 1) return 100;
  const rank = ctx.stableRank(node.nodeId);
  const cursor = ctx.cursorRank ?? -1;
  const distance = (((rank - cursor - 1) % count) + count) % count;
  return (100 * (count - 1 - distance)) / (count - 1);
};

/** manual: the named node is the only one that passes the filters; all passing nodes score the same. */
export const manualScore: Scorer = () => 100;

/** The group's allocations per domain when the request has a group, else the tenant's VMs per domain. */
export function domainLoad(snapshot: ClusterSnapshot, ctx: StepContext): DomainLoad {
  const label = ctx.options.domainLabel ?? DEFAULT_DOMAIN_LABEL;
  const name = ctx.options.group?.name;
  const group = name === undefined ? undefined : tenantGroupKey(ctx.request.tenantId, name);
  const counts = new Map<string | null, number>();
  let min = Infinity;
  let max = -Infinity;
  for (const [value, tally] of snapshot.domains(label)) {
    const n = group !== undefined ? (tally.groups.get(group) ?? 0) : (tally.tenants.get(ctx.request.tenantId) ?? 0);
    counts.set(value, n);
    if (n < min) min = n;
    if (n > max) max = n;
  }
  if (counts.size === 0) min = max = 0;
  return { label, counts, min, max };
}

/**
 * NormalizeScore by rank: the sample's distinct scores, best first, get 100 down to 0 in equal steps (all 100 when
 * they are equal). So two levels differ by at least 100 / (levels - 1), whatever the raw counts.
 */
export function normalizeByRank(scores: number[]): void {
  const levels = [...new Set(scores)].sort((a, b) => b - a);
  if (levels.length <= 1) {
    scores.fill(100);
    return;
  }
  const rank = new Map(levels.map((v, i) => [v, i]));
  for (let i = 0; i < scores.length; i += 1)
    scores[i] = (100 * (levels.length - 1 - (rank.get(scores[i] as number) as number))) / (levels.length - 1);
}

export const BINPACK: ScorePlugin = { name: 'Binpack', score: binpackScore };
export const SPREAD: ScorePlugin = { name: 'Spread', score: spreadScore };
export const MANUAL: ScorePlugin = { name: 'Named', score: manualScore };

export const SPREAD_DOMAIN: ScorePlugin = {
  name: 'SpreadDomain',
  preScore: (snapshot, ctx) => ({ domainLoad: domainLoad(snapshot, ctx) }),
  score: spreadDomainScore,
  normalize: normalizeByRank,
};

export const ROUND_ROBIN: ScorePlugin = {
  name: 'RoundRobin',
  preScore: (snapshot: ClusterSnapshot, _ctx: StepContext, placement: PlacementContext) => {
    const cursor = placement.roundRobinCursor;
    return {
      stableRank: (id) => snapshot.stableRank(id),
      cursorRank: cursor === undefined ? -1 : snapshot.stableRank(cursor, true) - 1,
      stableCount: snapshot.schedulableCount,
    };
  },
  score: roundRobinScore,
};
