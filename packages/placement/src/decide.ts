import { err, ok, type AllocationRequest, type NodeView, type PlacementOptions, type PlacementStrategy, type Result } from '@allot/core';
import type { CandidateSource, CapacityNeed } from './capacity-tree.ts';
import type { ClusterSnapshot } from './cluster-index.ts';
import {
  ALREADY_TRIED,
  filtersFor,
  firstFailure,
  INDEXED_FILTERS,
  INSUFFICIENT_CPU,
  INSUFFICIENT_IDLE_CORES,
  INSUFFICIENT_MEMORY,
  NOT_EXAMINED,
  NOT_THE_NAMED_NODE,
} from './filters.ts';
import { RejectionTally, unavailableMessage } from './rejections.ts';
import { binpackScore, roundRobinScore, spreadDomainScore, spreadScore } from './scorers.ts';
import type { Demand, DomainLoad, Filter, NodeId, PlacementContext, PlacementDecision, Scorer, StepContext } from './types.ts';

export const DEFAULT_MAX_CANDIDATES = 5;
export const DEFAULT_MAX_VISITS = 10_000;
export const DEFAULT_DOMAIN_LABEL = 'zone';

/**
 * How many feasible nodes to look at before taking the best: about log2(n), at least 2 (the power of two choices, after
 * Nomad's limit iterator), and at least as many as the candidates returned so the coordinator has retries.
 */
export function sampleLimit(schedulable: number, maxCandidates: number): number {
  return Math.max(2, Math.ceil(Math.log2(Math.max(1, schedulable))), maxCandidates);
}

/** The request's needs of one node. */
export function demandOf(request: AllocationRequest): Demand {
  return { memoryMiB: request.resources.memoryMiB, vcpus: request.resources.vcpus, exclusive: request.cpu.exclusive, numa: request.cpu.numa };
}

interface Visited {
  readonly node: NodeView;
  /** Scores compared lexicographically, first one most significant. */
  readonly scores: number[];
  /** Visit order, the last tie-breaker (it carries the index's random salt). */
  readonly seq: number;
}

/**
 * Chooses where a request should go, without committing anything: the candidates to ask in order (best first), and
 * per-reason rejection counts. Pure: reads the snapshot and the context, changes nothing; the same inputs (and the same
 * random source state) give the same answer. Used for both `place` and `check`.
 *
 * Typical cost O(log n + k log n) for k ~ log2(n) nodes examined; see README.md for the worst cases.
 */
export function place(snapshot: ClusterSnapshot, request: AllocationRequest, options: PlacementOptions, ctx: PlacementContext): Result<PlacementDecision> {
  const strategy: PlacementStrategy = options.strategy ?? ctx.strategy ?? 'binpack';
  if (strategy === 'manual' && options.nodeId === undefined) {
    return err('invalid_request', 'placement.nodeId: strategy manual needs the node to use', { field: 'placement.nodeId' });
  }
  const weights = options.weights ?? { cpu: 1, memory: 1 };
  if (weights.cpu + weights.memory === 0) {
    return err('invalid_request', 'placement.weights: at least one weight must be above 0', { field: 'placement.weights', weights });
  }
  const maxCandidates = Math.max(1, ctx.maxCandidates ?? DEFAULT_MAX_CANDIDATES);
  const demand = demandOf(request);
  const base: StepContext = { request, options, demand, weights, ...(ctx.maxVmsPerNode === undefined ? {} : { maxVmsPerNode: ctx.maxVmsPerNode }) };
  const run = new Run(snapshot, base, ctx, strategy, maxCandidates);
  return ok(strategy === 'manual' ? run.manual(options.nodeId as NodeId) : run.search());
}

/** One placement's working state. */
class Run {
  readonly #snapshot: ClusterSnapshot;
  readonly #ctx: PlacementContext;
  readonly #strategy: PlacementStrategy;
  readonly #maxCandidates: number;
  readonly #need: CapacityNeed;
  readonly #rejected = new RejectionTally();
  #step: StepContext;
  /** The filters the index already answers for visited nodes, and the ones only a visit can answer. */
  readonly #indexedFilters: Filter[];
  readonly #visitFilters: Filter[];

  constructor(snapshot: ClusterSnapshot, step: StepContext, ctx: PlacementContext, strategy: PlacementStrategy, maxCandidates: number) {
    this.#snapshot = snapshot;
    this.#ctx = ctx;
    this.#strategy = strategy;
    this.#maxCandidates = maxCandidates;
    this.#step = step;
    const filters = filtersFor(step);
    this.#indexedFilters = filters.slice(0, INDEXED_FILTERS);
    this.#visitFilters = filters.slice(INDEXED_FILTERS);
    this.#need = { memoryMiB: step.demand.memoryMiB, vcpus: step.demand.vcpus, exclusive: step.demand.exclusive };
  }

  /**
   * Why this node cannot take the request, or null. Precedence: what the index knows (state, memory, CPU), then
   * already tried, then the rest; so a node the index never visits is counted under the same reason as a visited one.
   */
  #reasonFor(node: NodeView): string | null {
    const indexed = firstFailure(this.#indexedFilters, this.#step, node);
    if (indexed !== null) return indexed;
    if (this.#ctx.exclude?.has(node.nodeId)) return ALREADY_TRIED;
    return firstFailure(this.#visitFilters, this.#step, node);
  }

  /** manual: the named node or nothing; every other node is counted as not the named node without being visited. */
  manual(nodeId: NodeId): PlacementDecision {
    const total = this.#snapshot.size;
    const node = this.#snapshot.get(nodeId);
    if (node === undefined) {
      this.#rejected.add(NOT_THE_NAMED_NODE, total);
      const message = `${unavailableMessage(total, this.#rejected.counts)} Node ${nodeId} is not in the cluster view.`;
      return this.#decision([], message, 0, true);
    }
    this.#rejected.add(NOT_THE_NAMED_NODE, total - 1);
    const reason = this.#reasonFor(node);
    if (reason !== null) {
      this.#rejected.add(reason);
      return this.#decision([], `${unavailableMessage(total, this.#rejected.counts)} Node ${nodeId}: ${reason}.`, 1, true);
    }
    return this.#decision([nodeId], `Node ${nodeId} (named) fits.`, 1, true);
  }

  /** Every other strategy: visit capacity-fitting nodes from the index, filter, keep a bounded sample, rank it. */
  search(): PlacementDecision {
    const scorers = this.#prepareScoring();
    const limit = this.#strategy === 'round-robin' ? this.#maxCandidates : sampleLimit(this.#snapshot.schedulableCount, this.#maxCandidates);
    const maxVisits = Math.max(limit, this.#ctx.maxVisits ?? DEFAULT_MAX_VISITS);
    const source = this.#source();
    const feasible: Visited[] = [];
    let yielded = 0;
    let exhausted = false;
    while (feasible.length < limit && yielded < maxVisits) {
      const entry = source.next();
      if (entry === undefined) {
        exhausted = true;
        break;
      }
      yielded += 1;
      const node = this.#snapshot.get(entry.nodeId);
      if (node === undefined) continue; // the index and the map are updated together; defensive only
      const reason = this.#reasonFor(node);
      if (reason !== null) {
        this.#rejected.add(reason);
        continue;
      }
      feasible.push({ node, scores: scorers.map((s) => s(this.#step, node)), seq: feasible.length });
    }
    if (feasible.length > 0) {
      feasible.sort(compareVisited);
      const candidates = feasible.slice(0, this.#maxCandidates).map((v) => v.node.nodeId);
      const message = `${candidates.length} candidate(s), best ${candidates[0]}; examined ${yielded} of ${this.#snapshot.size} nodes (${this.#strategy}).`;
      return this.#decision(candidates, message, yielded, false);
    }
    return this.#refusal(yielded, exhausted);
  }

  /**
   * Nothing fit. The nodes never visited are counted from the index: not schedulable (per state), short of memory
   * (a rank query), and the remaining non-visited schedulable nodes are short of CPU, which is certain only when the
   * walk was exhausted; otherwise they are reported as not examined.
   */
  #refusal(yielded: number, exhausted: boolean): PlacementDecision {
    const snap = this.#snapshot;
    for (const [reason, n] of Object.entries(snap.stateCounts())) this.#rejected.add(reason, n);
    const shortOfMemory = snap.countShortOfMemory(this.#need.memoryMiB);
    this.#rejected.add(INSUFFICIENT_MEMORY, shortOfMemory);
    const rest = snap.schedulableCount - shortOfMemory - yielded;
    this.#rejected.add(exhausted ? (this.#need.exclusive ? INSUFFICIENT_IDLE_CORES : INSUFFICIENT_CPU) : NOT_EXAMINED, rest);
    return this.#decision([], unavailableMessage(snap.size, this.#rejected.counts), yielded, exhausted);
  }

  #decision(candidates: NodeId[], message: string, examined: number, exhaustive: boolean): PlacementDecision {
    return { candidates, rejected: this.#rejected.counts, message, examined, exhaustive, strategy: this.#strategy };
  }

  /** The scorers of the strategy, after adding what they need to the step context. */
  #prepareScoring(): Scorer[] {
    switch (this.#strategy) {
      case 'binpack':
        return [binpackScore];
      case 'spread':
        return [spreadScore];
      case 'spread-domain':
        this.#step = { ...this.#step, domainLoad: this.#domainLoad() };
        return [spreadDomainScore, spreadScore];
      case 'round-robin': {
        const snap = this.#snapshot;
        const cursor = this.#ctx.roundRobinCursor;
        this.#step = {
          ...this.#step,
          stableRank: (id) => snap.stableRank(id),
          cursorRank: cursor === undefined ? -1 : snap.stableRank(cursor, true) - 1,
          stableCount: snap.schedulableCount,
        };
        return [roundRobinScore];
      }
      case 'manual':
        return [];
    }
  }

  /** The group's allocations per domain when the request has a group, else the tenant's VMs per domain. */
  #domainLoad(): DomainLoad {
    const label = this.#step.options.domainLabel ?? DEFAULT_DOMAIN_LABEL;
    const group = this.#step.options.group?.name;
    const counts = new Map<string | null, number>();
    let min = Infinity;
    let max = -Infinity;
    for (const [value, tally] of this.#snapshot.domains(label)) {
      const n = group !== undefined ? (tally.groups.get(group) ?? 0) : (tally.tenants.get(this.#step.request.tenantId) ?? 0);
      counts.set(value, n);
      if (n < min) min = n;
      if (n > max) max = n;
    }
    if (counts.size === 0) min = max = 0;
    return { label, counts, min, max };
  }

  /** Where the walk starts and in which order it goes. */
  #source(): CandidateSource {
    const snap = this.#snapshot;
    switch (this.#strategy) {
      case 'binpack':
        return snap.byFreeMemory(this.#need, 'ascending');
      case 'spread':
        return snap.byFreeMemory(this.#need, 'descending');
      case 'round-robin':
        return snap.inStableOrder(this.#need, this.#ctx.roundRobinCursor);
      case 'spread-domain':
        return this.#domainSource();
      case 'manual':
        return { next: () => undefined };
    }
  }

  /** Domains from the least loaded by this group or tenant; within each, the emptiest nodes first. */
  #domainSource(): CandidateSource {
    const load = this.#step.domainLoad as DomainLoad;
    const order = [...load.counts.entries()].sort(([a, x], [b, y]) => x - y || compareDomain(a, b)).map(([value]) => value);
    let i = 0;
    let current: CandidateSource | null = null;
    const snap = this.#snapshot;
    const need = this.#need;
    return {
      next: () => {
        for (;;) {
          if (current === null) {
            const value = order[i];
            if (i >= order.length) return undefined;
            i += 1;
            current = snap.byFreeMemoryInDomain(load.label, value ?? null, need, 'descending');
          }
          const e = current.next();
          if (e !== undefined) return e;
          current = null;
        }
      },
    };
  }
}

function compareDomain(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1; // unlabelled nodes last among equals
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

function compareVisited(a: Visited, b: Visited): number {
  for (let i = 0; i < a.scores.length; i += 1) {
    const d = (b.scores[i] ?? 0) - (a.scores[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.seq - b.seq;
}
