import { tenantGroupKey, type TopologySpread } from '@allot/core';
import { domainOf } from './scorers.ts';
import type { ClusterSnapshot } from './snapshot.ts';
import type { DomainLoad, Filter, StepContext } from './types.ts';

/*
 * Hard topology spread, after kube-scheduler's PodTopologySpread with whenUnsatisfiable DoNotSchedule: a node passes
 * when its domain, with this request added, is at most maxSkew above the least loaded domain. What is counted is the
 * request's group (or, without one, the tenant's VMs), from the index's per-domain tallies: O(domains) once per decision.
 * The domains counted are those holding a schedulable node: a zone that is lost or wholly cordoned can take nothing, and
 * counting it would stop every spread placement until it returns. Its nodes still count toward the tally of a domain
 * that has a schedulable node.
 */

export function missingLabelReason(spread: TopologySpread): string {
  return `topology spread: node has no ${spread.topologyKey} label`;
}

export function maxSkewReason(spread: TopologySpread): string {
  return `topology spread ${spread.topologyKey} maxSkew ${spread.maxSkew}`;
}

/** The group's (or tenant's) allocations in each labelled domain that has a schedulable node; min over them. */
export function spreadLoad(snapshot: ClusterSnapshot, ctx: StepContext, label: string): DomainLoad {
  const name = ctx.options.group?.name;
  const group = name === undefined ? undefined : tenantGroupKey(ctx.request.tenantId, name);
  const tallies = snapshot.domains(label);
  const counts = new Map<string | null, number>();
  let min = Infinity;
  let max = -Infinity;
  for (const value of snapshot.schedulableDomains(label)) {
    if (value === null) continue;
    const tally = tallies.get(value);
    const n = (group !== undefined ? tally?.groups.get(group) : tally?.tenants.get(ctx.request.tenantId)) ?? 0;
    counts.set(value, n);
    min = Math.min(min, n);
    max = Math.max(max, n);
  }
  if (counts.size === 0) min = max = 0;
  return { label, counts, min, max };
}

export const topologySpread: Filter = (ctx, node) => {
  const spread = ctx.options.topologySpread;
  const load = ctx.spreadLoad;
  if (spread === undefined || load === undefined) return null;
  const domain = domainOf(node, spread.topologyKey);
  if (domain === null) return { reason: missingLabelReason(spread) };
  const here = load.counts.get(domain) ?? 0;
  return here + 1 - load.min <= spread.maxSkew ? null : { reason: maxSkewReason(spread) };
};
