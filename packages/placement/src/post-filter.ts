import { ok, PREEMPTION_PRIORITY_GAP, type Allocation, type AllocationRequest, type PlacementOptions, type Result } from '@allot/core';
import { DEFAULT_MAX_VISITS, requestFilters, stepContext } from './decide.ts';
import { firstFailure } from './filters.ts';
import { fitsWhenEmptied, planPreemption, type PreemptionPlan } from './preemption.ts';
import type { ClusterSnapshot, NodeId } from './snapshot.ts';
import type { PlacementContext } from './types.ts';

/*
 * The PostFilter extension point: when decide() found no node, preemption. It runs over the same filter plugins and
 * the same free-capacity index as decide(), leaving out only the capacity filters (memory, CPU) that eviction changes,
 * in two pure steps around one fetch by the coordinator:
 *   1. preemptionCandidates: the nodes worth fetching, at most maxNodes;
 *   2. the coordinator fetches those nodes' live allocations from their agents (every page: a plan made from a partial
 *      list could miss the cheapest victims), because the allocations are the agents' and no snapshot carries them;
 *   3. planPreemptionAmong: the plan (node, victims), which the coordinator only executes.
 * Asking the agents for the named nodes only keeps the fetch bounded (maxNodes x their pages) whatever the cluster's
 * size, and naming them here keeps every placement rule in this package.
 */

/**
 * The nodes where evicting allocations might make room, best first: every filter but capacity passes, and the request
 * fits once the node is emptied. Visited from the index by free memory, most free first (the fewest victims to find),
 * over any schedulable node, at most ctx.maxVisits of them. O(k log n) for k nodes visited.
 */
export function preemptionCandidates(
  snapshot: ClusterSnapshot,
  request: AllocationRequest,
  options: PlacementOptions,
  ctx: PlacementContext,
  maxNodes: number,
): Result<NodeId[]> {
  const prepared = stepContext(request, options, ctx);
  if (!prepared.ok) return prepared;
  const { strategy } = prepared.value;
  const { filters: all, step } = requestFilters(snapshot, strategy, prepared.value.step);
  const filters = all.filter((f) => f.capacity !== true);
  const eligible = (nodeId: NodeId): boolean => {
    const node = snapshot.get(nodeId);
    return node !== undefined && firstFailure(filters, step, node) === null && fitsWhenEmptied(node, request);
  };
  if (strategy.namesNode === true) return ok(options.nodeId !== undefined && eligible(options.nodeId) ? [options.nodeId] : []);
  const out: NodeId[] = [];
  const walk = snapshot.byFreeMemory({ memoryMiB: 0, vcpus: 0, exclusive: false }, 'descending');
  const maxVisits = ctx.maxVisits ?? DEFAULT_MAX_VISITS;
  for (let visited = 0; out.length < maxNodes && visited < maxVisits; visited += 1) {
    const entry = walk.next();
    if (entry === undefined) break;
    if (eligible(entry.nodeId)) out.push(entry.nodeId);
  }
  return ok(out);
}

/**
 * The plan with the fewest, then lowest-priority victims over the nodes whose allocations the coordinator fetched (in
 * the order preemptionCandidates named them; the first of equals wins). Null when no eviction makes room.
 */
export function planPreemptionAmong(
  snapshot: ClusterSnapshot,
  request: AllocationRequest,
  allocations: ReadonlyMap<NodeId, readonly Allocation[]>,
  minGap: number = PREEMPTION_PRIORITY_GAP,
): PreemptionPlan | null {
  let best: PreemptionPlan | null = null;
  for (const [nodeId, list] of allocations) {
    const node = snapshot.get(nodeId);
    if (node === undefined) continue;
    const plan = planPreemption(node, list, request, minGap);
    if (plan === null || plan.victims.length === 0) continue;
    if (
      best === null ||
      plan.victims.length < best.victims.length ||
      (plan.victims.length === best.victims.length && maxPriority(plan) < maxPriority(best))
    )
      best = plan;
  }
  return best;
}

function maxPriority(plan: PreemptionPlan): number {
  return Math.max(...plan.victims.map((v) => v.priority));
}
