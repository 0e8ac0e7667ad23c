import { tenantGroupKey, type GroupAffinity, type NodeView } from '@allot/core';
import { domainOf } from './scorers.ts';
import type { ClusterSnapshot } from './snapshot.ts';
import type { AffinityLoad, Filter, ScorePlugin, Scorer, StepContext } from './types.ts';

/*
 * Affinity to a group's allocations (the requesting tenant's: groups are per tenant, tenantGroupKey), per node or per
 * failure domain: required terms filter, preferred ones score.
 * Per-node terms read the node's own group counts; per-domain terms the index's domain tallies, computed once.
 */

export function affinityReason(term: GroupAffinity): string {
  return `affinity group ${term.group} per ${term.topologyKey ?? 'node'}`;
}

/** The term's figures: per-domain counts (domain terms) and the cluster total, from the index's tallies. */
export function affinityLoads(snapshot: ClusterSnapshot, ctx: StepContext): AffinityLoad[] {
  return (ctx.options.affinity ?? []).map((term) => {
    const key = tenantGroupKey(ctx.request.tenantId, term.group);
    const tallies = snapshot.domains(term.topologyKey ?? 'zone');
    const counts = new Map<string | null, number>();
    let total = 0;
    for (const [value, tally] of tallies) {
      const n = tally.groups.get(key) ?? 0;
      counts.set(value, n);
      total += n;
    }
    return term.topologyKey === undefined ? { total } : { counts, total };
  });
}

/** The term's group allocations next to this node: on it, or in its domain (nodes without the label have none). */
function groupNear(ctx: StepContext, term: GroupAffinity, load: AffinityLoad | undefined, node: NodeView): number {
  if (term.topologyKey === undefined) return node.snapshot.groups[tenantGroupKey(ctx.request.tenantId, term.group)] ?? 0;
  const domain = domainOf(node, term.topologyKey);
  return domain === null ? 0 : (load?.counts?.get(domain) ?? 0);
}

/** Every required term: the group is on the node (or in its domain), unless it is the request's own group and nowhere yet. */
export const requiredAffinity: Filter = (ctx, node) => {
  const terms = ctx.options.affinity ?? [];
  for (let i = 0; i < terms.length; i += 1) {
    const term = terms[i] as GroupAffinity;
    if (term.mode !== 'required') continue;
    const load = ctx.affinityLoads?.[i];
    if (groupNear(ctx, term, load, node) > 0) continue;
    const firstOfOwnGroup = term.group === ctx.options.group?.name && (load?.total ?? 0) === 0;
    if (!firstOfOwnGroup) return { reason: affinityReason(term) };
  }
  return null;
};

/** The summed weights of the preferred terms the node satisfies (not normalised: see preferredAffinityWeight). */
export const preferredAffinityScore: Scorer = (ctx, node) => {
  const terms = ctx.options.affinity ?? [];
  let met = 0;
  terms.forEach((term, i) => {
    if (term.mode === 'preferred' && groupNear(ctx, term, ctx.affinityLoads?.[i], node) > 0) met += term.weight;
  });
  return met;
};

/**
 * The weight that makes preferences decide first: two nodes' met weights differ by at least 1 (integer weights), the
 * strategy's weighted sum ranges over 100 x its total weight, so weight 100 x total + 1 puts a node meeting more (by
 * weight) first whatever the strategy says; the strategy orders nodes meeting the same.
 */
export function preferredAffinityWeight(strategyWeights: readonly { readonly weight: number }[]): number {
  return 100 * strategyWeights.reduce((sum, s) => sum + s.weight, 0) + 1;
}

export function hasPreferredAffinity(ctx: StepContext): boolean {
  return ctx.options.affinity?.some((t) => t.mode === 'preferred') ?? false;
}

export function hasRequiredAffinity(ctx: StepContext): boolean {
  return ctx.options.affinity?.some((t) => t.mode === 'required') ?? false;
}

/**
 * Added to any strategy's scorers when the request has preferred terms (see preferredAffinityWeight). A preference,
 * not a filter: the walk still visits the strategy's order and samples about log2 n nodes, so a node meeting it that
 * is not sampled is not found (as Nomad's affinities).
 */
export const PREFERRED_AFFINITY: ScorePlugin = {
  name: 'PreferredAffinity',
  preScore: (snapshot, ctx) => (ctx.affinityLoads === undefined ? { affinityLoads: affinityLoads(snapshot, ctx) } : {}),
  score: preferredAffinityScore,
};
