import {
  ok,
  PREEMPTION_PRIORITY_GAP,
  type Allocation,
  type AllocationRequest,
  type NodeView,
  type PlacementOptions,
  type Result,
} from '@allot/core';
import { DEFAULT_MAX_VISITS, requestFilters, stepContext } from './decide.ts';
import { firstFailure } from './filters.ts';
import { evictableUpTo, NOTHING_FREED, type Freed } from './node-capacity.ts';
import { cellsFreedAtMost, fitsNumaAfter, numaBound } from './numa-room.ts';
import { fitsAfter, planPreemption, type PreemptionPlan } from './preemption.ts';
import type { CapacityNeed, ClusterSnapshot, NodeId } from './snapshot.ts';
import type { FilterPlugin, PlacementContext, StepContext } from './types.ts';

/*
 * The PostFilter extension point: when decide() found no node, preemption, after kube-scheduler's. It runs over the
 * same filter plugins as decide() (all but the capacity ones, which eviction changes) and over the free-capacity
 * index, in two pure steps around one bounded fetch by the coordinator:
 *   1. preemptionTargets: from the snapshots alone (each lists what its preemptible allocations hold per priority
 *      level), the lowest priority level L such that some node passing the filters makes room by evicting allocations
 *      of priority L or below; every plan then has L as its highest victim priority, kube-scheduler's first criterion,
 *      and it is exact over the whole cluster, since the index answers for the nodes it never visits (a node whose room
 *      at L cannot fit is never visited). Then a sample of the nodes at L, ranked by an estimate of the next criteria
 *      (lowest sum of victim priorities, then fewest victims);
 *   2. the coordinator fetches the live allocations of the best few of them (the exact victims are the agents'; no
 *      snapshot carries every allocation);
 *   3. rankPreemptionPlans: the exact plan per fetched node (victims at or below L), ranked by kube-scheduler's order;
 *      the coordinator executes the first through the agent's atomic preempt, and the next after a refusal.
 * Cost of step 1: O(log P) probes of the index by binary search over the P priority levels at or below the bound (the
 * room grows with the level, so "some node fits at L" is monotone), each O(log n) per node visited and at most
 * ctx.maxVisits visits, plus a sample of S nodes at L: O((log P + S) log n) when the filters reject little, and at
 * worst O((log P + 1) x maxVisits x log n) when they reject most of the nodes that would have room.
 */

/** Nodes sampled at the chosen level before ranking them by estimated cost (kube-scheduler samples candidates too). */
export const PREEMPTION_SAMPLE = 64;

export interface PreemptionTargets {
  /** The highest priority any victim needs to have: the lowest level at which a node makes room; null when none does. */
  readonly level: number | null;
  /** Nodes worth fetching, cheapest estimate first, at most maxNodes. */
  readonly nodes: NodeId[];
  /** Nodes whose filters ran. */
  readonly examined: number;
}

/** What evicting at or below a level would cost on one node, estimated from its snapshot (see estimateCost). */
interface Estimate {
  readonly prioritySum: number;
  readonly victims: number;
}

/**
 * Step 1 (see above): the lowest victim level over the whole cluster and the nodes worth fetching at that level.
 * Invalid options are refused as decide() refuses them.
 */
export function preemptionTargets(
  snapshot: ClusterSnapshot,
  request: AllocationRequest,
  options: PlacementOptions,
  ctx: PlacementContext,
  maxNodes: number,
  minGap: number = PREEMPTION_PRIORITY_GAP,
): Result<PreemptionTargets> {
  const prepared = stepContext(request, options, ctx);
  if (!prepared.ok) return prepared;
  const { strategy } = prepared.value;
  const { filters: all, step } = requestFilters(snapshot, strategy, prepared.value.step);
  const filters = all.filter((f) => f.capacity !== true);
  const capacity = all.filter((f) => f.capacity === true);
  const bound = request.priority - minGap;
  const probe = new Probe(snapshot, request, step, filters, capacity, ctx.maxVisits ?? DEFAULT_MAX_VISITS);
  if (strategy.namesNode === true) {
    const node = options.nodeId === undefined ? undefined : snapshot.get(options.nodeId);
    const level = node === undefined ? null : probe.lowestLevelOn(node, bound);
    return ok({ level, nodes: level === null || node === undefined ? [] : [node.nodeId], examined: node === undefined ? 0 : 1 });
  }
  const levels = snapshot.preemptionLevels().filter((l) => l <= bound);
  // Binary search for the lowest level with a node: room only grows with the level, so the answer is monotone.
  let lo = 0;
  let hi = levels.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (probe.sample(levels[mid] as number, 1).length > 0) hi = mid;
    else lo = mid + 1;
  }
  const level = levels[lo];
  if (level === undefined) return ok({ level: null, nodes: [], examined: probe.examined });
  const sampled = probe.sample(level, Math.max(maxNodes, PREEMPTION_SAMPLE));
  const ranked = sampled
    .map((node, seq) => ({ node, seq, cost: estimateCost(node, request, level) }))
    .sort((a, b) => a.cost.prioritySum - b.cost.prioritySum || a.cost.victims - b.cost.victims || a.seq - b.seq);
  return ok({ level, nodes: ranked.slice(0, maxNodes).map((r) => r.node.nodeId), examined: probe.examined });
}

/** The walks of step 1, each visiting at most maxVisits nodes. */
class Probe {
  examined = 0;
  readonly #snapshot: ClusterSnapshot;
  readonly #request: AllocationRequest;
  readonly #step: StepContext;
  readonly #filters: readonly FilterPlugin[];
  /** The capacity filters (memory, CPU, NUMA): a node passing them all needs no eviction. */
  readonly #capacity: readonly FilterPlugin[];
  readonly #maxVisits: number;
  readonly #need: CapacityNeed;

  constructor(
    snapshot: ClusterSnapshot,
    request: AllocationRequest,
    step: StepContext,
    filters: readonly FilterPlugin[],
    capacity: readonly FilterPlugin[],
    maxVisits: number,
  ) {
    this.#snapshot = snapshot;
    this.#request = request;
    this.#step = step;
    this.#filters = filters;
    this.#capacity = capacity;
    this.#maxVisits = maxVisits;
    this.#need = { memoryMiB: request.resources.memoryMiB, vcpus: request.resources.vcpus, exclusive: request.cpu.exclusive };
  }

  /**
   * Passes every filter but capacity, needs an eviction (fails a capacity filter), and may fit once `level` and below
   * are evicted: by the totals exactly, and for a request bound to one NUMA node by an upper bound of what the eviction
   * gives back per node (numa-room.ts cellsFreedAtMost; the exact plan decides).
   */
  eligible(node: NodeView, level: number): boolean {
    if (firstFailure(this.#filters, this.#step, node) !== null) return false;
    if (firstFailure(this.#capacity, this.#step, node) === null) return false;
    const freed = evictableUpTo(node, level);
    if (!fitsAfter(node, this.#request, freed)) return false;
    return !numaBound(this.#request) || fitsNumaAfter(node, this.#request, cellsFreedAtMost(node, this.#request, freed), freed.memoryMiB);
  }

  /** Up to `count` eligible nodes at this level, most room first, visiting at most maxVisits nodes. */
  sample(level: number, count: number): NodeView[] {
    const out: NodeView[] = [];
    const walk = this.#snapshot.byRoomEvicting(level, this.#need, 'descending');
    for (let visited = 0; out.length < count && visited < this.#maxVisits; visited += 1) {
      const entry = walk.next();
      if (entry === undefined) break;
      this.examined += 1;
      const node = this.#snapshot.get(entry.nodeId);
      if (node !== undefined && this.eligible(node, level)) out.push(node);
    }
    return out;
  }

  /** The lowest level at or below `bound` at which this one node makes room, or null. */
  lowestLevelOn(node: NodeView, bound: number): number | null {
    for (const p of node.snapshot.priorities ?? []) {
      if (p.priority > bound) break;
      if (this.eligible(node, p.priority)) return p.priority;
    }
    return null;
  }
}

/**
 * An estimate of the cheapest eviction at or below `level` on a node, from its per-priority figures: whole levels from
 * the lowest up, then, in the level where the room is reached, the fewest of its allocations, as if they were of equal
 * size. Only orders the sample; the exact plan is made from the node's allocations (rankPreemptionPlans).
 */
export function estimateCost(node: NodeView, request: AllocationRequest, level: number): Estimate {
  let freed: Freed = NOTHING_FREED;
  let prioritySum = 0;
  let victims = 0;
  for (const p of node.snapshot.priorities ?? []) {
    if (p.priority > level) break;
    const part = (k: number): Freed => ({
      memoryMiB: freed.memoryMiB + Math.floor((p.memoryMiB * k) / p.vms),
      sharedVcpus: freed.sharedVcpus + Math.floor((p.sharedVcpus * k) / p.vms),
      exclusiveCores: freed.exclusiveCores + Math.floor((p.exclusiveCores * k) / p.vms),
    });
    if (fitsAfter(node, request, part(p.vms))) {
      let lo = 1;
      let hi = p.vms;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (fitsAfter(node, request, part(mid))) hi = mid;
        else lo = mid + 1;
      }
      return { prioritySum: prioritySum + lo * p.priority, victims: victims + lo };
    }
    freed = part(p.vms);
    prioritySum += p.vms * p.priority;
    victims += p.vms;
  }
  return { prioritySum, victims };
}

/** Kube-scheduler's order of preemption plans: the lowest highest victim priority, the lowest sum, the fewest victims. */
function cheaper(a: PreemptionPlan, b: PreemptionPlan): number {
  const max = (p: PreemptionPlan) => Math.max(...p.victims.map((v) => v.priority));
  const sum = (p: PreemptionPlan) => p.victims.reduce((s, v) => s + v.priority, 0);
  return max(a) - max(b) || sum(a) - sum(b) || a.victims.length - b.victims.length;
}

/**
 * Step 3: the exact plan on each fetched node (victims at or below `level` when given, see preemptionTargets), best
 * first by kube-scheduler's order, the fetch order (step 1's ranking) breaking ties. A node where no eviction makes
 * room, or where the request already fits, has no plan.
 */
export function rankPreemptionPlans(
  snapshot: ClusterSnapshot,
  request: AllocationRequest,
  allocations: ReadonlyMap<NodeId, readonly Allocation[]>,
  level?: number,
  minGap: number = PREEMPTION_PRIORITY_GAP,
): PreemptionPlan[] {
  const plans: PreemptionPlan[] = [];
  for (const [nodeId, list] of allocations) {
    const node = snapshot.get(nodeId);
    if (node === undefined) continue;
    const plan = planPreemption(node, list, request, minGap, level);
    if (plan !== null && plan.victims.length > 0) plans.push(plan);
  }
  // For a request bound to one NUMA node the level is a lower bound (step 1 counts per node at most what the level
  // frees): when no plan stays at it, the fetched nodes are planned with every victim the request may take.
  if (plans.length === 0 && level !== undefined && numaBound(request))
    return rankPreemptionPlans(snapshot, request, allocations, undefined, minGap);
  return plans
    .map((plan, seq) => ({ plan, seq }))
    .sort((a, b) => cheaper(a.plan, b.plan) || a.seq - b.seq)
    .map((p) => p.plan);
}

/** The best of rankPreemptionPlans, or null. */
export function planPreemptionAmong(
  snapshot: ClusterSnapshot,
  request: AllocationRequest,
  allocations: ReadonlyMap<NodeId, readonly Allocation[]>,
  level?: number,
  minGap: number = PREEMPTION_PRIORITY_GAP,
): PreemptionPlan | null {
  return rankPreemptionPlans(snapshot, request, allocations, level, minGap)[0] ?? null;
}
