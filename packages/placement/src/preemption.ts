import {
  holdsCapacity,
  preemptibleShare,
  PREEMPTION_PRIORITY_GAP,
  type Allocation,
  type AllocationRequest,
  type NodeView,
} from '@allot/core';
import { nodeStateReason, roomAfter, type Freed } from './node-capacity.ts';
import { cellsFreedBy, fitsNumaAfter, homedLoad, numaBound, wholeUnitsAfter, type HomedLoad } from './numa-room.ts';

/** Allocations to release on one node so that a request fits there. */
export interface PreemptionPlan {
  readonly nodeId: string;
  /** Fewest first, then lowest priorities; ordered by priority ascending. */
  readonly victims: readonly Allocation[];
  /** What their release frees, as the snapshot accounts it. */
  readonly freed: { readonly memoryMiB: number; readonly sharedVcpus: number; readonly exclusiveCores: number };
  /** False when the search hit its budget and fell back to a greedy choice (may not be the fewest). */
  readonly optimal: boolean;
}

/** Subsets examined before falling back to greedy: keeps one call in the low milliseconds on a busy node. */
export const PREEMPTION_SEARCH_BUDGET = 100_000;

/**
 * Whether the request fits on the node once `f` is released, by the same snapshot arithmetic as the filters and the
 * index (node-capacity.ts, roomAfter).
 */
export function fitsAfter(node: NodeView, request: AllocationRequest, f: Freed): boolean {
  const room = roomAfter(node, f);
  if (room.freeMemoryMiB < request.resources.memoryMiB) return false;
  return (request.cpu.exclusive ? room.idleCores : room.sharedVcpuFit) >= request.resources.vcpus;
}

/** Whether the request would fit on the node with every allocation there released: no eviction can do better. */
export function fitsWhenEmptied(node: NodeView, request: AllocationRequest): boolean {
  const cpu = node.snapshot.cpu;
  return fitsAfter(node, request, {
    memoryMiB: node.snapshot.memory.committed,
    sharedVcpus: cpu.sharedVcpusCommitted,
    exclusiveCores: cpu.exclusiveCores,
  });
}

/**
 * Whether the request fits once these allocations are released: by the totals (fitsAfter) and, for a request bound to
 * one NUMA node or to whole physical cores, in one node (or core) by what each victim gives back there (numa-room.ts).
 */
function fitsReleasing(node: NodeView, request: AllocationRequest, victims: readonly Allocation[], homed?: HomedLoad): boolean {
  const freed = sum(victims);
  if (!fitsAfter(node, request, freed)) return false;
  if (!numaBound(request)) return true;
  const whole = wholeUnitsAfter(node, request, victims, homed, freed);
  return fitsNumaAfter(node, request, cellsFreedBy(node, victims, homed), freed.memoryMiB, whole);
}

function sum(victims: readonly Allocation[]): Freed {
  const total = { memoryMiB: 0, sharedVcpus: 0, exclusiveCores: 0 };
  for (const v of victims) {
    const f = preemptibleShare(v);
    total.memoryMiB += f.memoryMiB;
    total.sharedVcpus += f.sharedVcpus;
    total.exclusiveCores += f.exclusiveCores;
  }
  return total;
}

/**
 * Choice among sets of the same size: the lowest highest-priority, then the lowest priority sum, then the least
 * capacity freed (the least collateral damage), then allocation ids in order (so the answer is deterministic).
 */
function better(a: readonly Allocation[], b: readonly Allocation[]): boolean {
  const maxA = Math.max(...a.map((x) => x.priority));
  const maxB = Math.max(...b.map((x) => x.priority));
  if (maxA !== maxB) return maxA < maxB;
  const sumA = a.reduce((s, x) => s + x.priority, 0);
  const sumB = b.reduce((s, x) => s + x.priority, 0);
  if (sumA !== sumB) return sumA < sumB;
  const fa = sum(a);
  const fb = sum(b);
  const sizeA = fa.memoryMiB + fa.sharedVcpus + fa.exclusiveCores;
  const sizeB = fb.memoryMiB + fb.sharedVcpus + fb.exclusiveCores;
  if (sizeA !== sizeB) return sizeA < sizeB;
  return a.map((x) => x.id).join(',') < b.map((x) => x.id).join(',');
}

/**
 * The fewest, then lowest-priority, live allocations of one node whose release makes the request fit there; only
 * allocations at least `minGap` priority points below the request, and at or below `maxVictimPriority` when given (the
 * post-filter's bound: the lowest level at which the node makes room), are eligible. Pure; the post-filter
 * (post-filter.ts) calls it for each node it named. Returns null when no eligible set helps
 * (the node is not schedulable, NUMA cannot be satisfied, or even releasing every eligible allocation is not enough).
 *
 * Search: sizes 1, 2, ... are tried in turn over every subset of that size, so the first size that works is the fewest;
 * past PREEMPTION_SEARCH_BUDGET subsets it falls back to greedy (lowest priority first, then drops victims that are not
 * needed) and says so with `optimal: false`.
 */
export function planPreemption(
  node: NodeView,
  allocations: readonly Allocation[],
  request: AllocationRequest,
  minGap: number = PREEMPTION_PRIORITY_GAP,
  maxVictimPriority: number = request.priority - minGap,
): PreemptionPlan | null {
  if (nodeStateReason(node) !== null) return null;
  const bound = Math.min(maxVictimPriority, request.priority - minGap);
  // For exclusive cores on one node: which cores shared allocations are homed on, so a shared victim whose release
  // leaves its cores empty frees idle cores there (the node's whole allocation list is at hand).
  const homed = numaBound(request) && request.cpu.exclusive ? homedLoad(allocations) : undefined;
  const fits = (victims: readonly Allocation[]): boolean => fitsReleasing(node, request, victims, homed);
  const plan = (victims: Allocation[], optimal: boolean): PreemptionPlan => ({
    nodeId: node.nodeId,
    victims: [...victims].sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : 1)),
    freed: sum(victims),
    optimal,
  });
  if (fits([])) return plan([], true);

  const eligible = allocations
    .filter(
      (a) =>
        a.nodeId === node.nodeId && (a.status === 'active' || a.status === 'reserved') && holdsCapacity(a.status) && a.priority <= bound,
    )
    .sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : 1));
  if (!fits(eligible)) return null;

  let budget = PREEMPTION_SEARCH_BUDGET;
  for (let size = 1; size <= eligible.length; size += 1) {
    let best: Allocation[] | null = null;
    let exceeded = false;
    forEachSubset(eligible, size, (subset) => {
      budget -= 1;
      if (budget < 0) {
        exceeded = true;
        return false;
      }
      if (fits(subset) && (best === null || better(subset, best))) best = [...subset];
      return true;
    });
    if (best !== null) return plan(best, !exceeded);
    if (exceeded) return plan(greedy(node, request, eligible, homed), false);
  }
  return null; // unreachable: releasing every eligible allocation fits, checked above
}

/** Lowest priority first until it fits, then drops, highest priority first, every victim the fit does not need. */
function greedy(node: NodeView, request: AllocationRequest, eligible: readonly Allocation[], homed?: HomedLoad): Allocation[] {
  const chosen: Allocation[] = [];
  for (const a of eligible) {
    chosen.push(a);
    if (fitsReleasing(node, request, chosen, homed)) break;
  }
  for (let i = chosen.length - 1; i >= 0; i -= 1) {
    const without = chosen.filter((_, j) => j !== i);
    if (fitsReleasing(node, request, without, homed)) chosen.splice(i, 1);
  }
  return chosen;
}

/** Calls visit with every subset of `size` items in lexicographic index order; stops when visit returns false. */
function forEachSubset<T>(items: readonly T[], size: number, visit: (subset: readonly T[]) => boolean): void {
  const idx = Array.from({ length: size }, (_, i) => i);
  const subset: T[] = idx.map((i) => items[i] as T);
  for (;;) {
    if (!visit(subset)) return;
    let i = size - 1;
    while (i >= 0 && idx[i] === items.length - size + i) i -= 1;
    if (i < 0) return;
    idx[i] = (idx[i] as number) + 1;
    for (let j = i + 1; j < size; j += 1) idx[j] = (idx[j - 1] as number) + 1;
    for (let j = i; j < size; j += 1) subset[j] = items[idx[j] as number] as T;
  }
}
