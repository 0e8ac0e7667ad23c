import { err, ok, type AllocationRequest, type NodeView, type PlacementOptions, type PlacementStrategy, type Result } from '@allot/core';
import { hasPreferredAffinity, PREFERRED_AFFINITY, preferredAffinityWeight } from './affinity.ts';
import {
  filtersFor,
  FILTER_PLUGINS,
  firstFailure,
  INSUFFICIENT_CPU,
  INSUFFICIENT_IDLE_CORES,
  INSUFFICIENT_MEMORY,
  NOT_EXAMINED,
  NOT_THE_NAMED_NODE,
} from './filters.ts';
import { RejectionTally, unavailableMessage } from './rejections.ts';
import type { CapacityNeed, ClusterSnapshot, NodeId } from './snapshot.ts';
import { STRATEGIES } from './strategies.ts';
import type { Demand, FilterPlugin, PlacementContext, PlacementDecision, StepContext, Strategy } from './types.ts';

export const DEFAULT_MAX_CANDIDATES = 5;
export const DEFAULT_MAX_VISITS = 10_000;

/** The request's needs of one node. */
export function demandOf(request: AllocationRequest): Demand {
  return {
    memoryMiB: request.resources.memoryMiB,
    vcpus: request.resources.vcpus,
    exclusive: request.cpu.exclusive,
    numa: request.cpu.numa,
  };
}

interface Visited {
  readonly node: NodeView;
  /** Raw scores, one per score plugin of the strategy; then the weighted sum of their normalised values. */
  readonly scores: number[];
  total: number;
  /** Visit order, the last tie-breaker (it carries the index's random salt). */
  readonly seq: number;
}

/** The strategy named by the options, else the context's default, else binpack; and the step context every plugin reads. */
export function stepContext(
  request: AllocationRequest,
  options: PlacementOptions,
  ctx: PlacementContext,
): Result<{ strategy: Strategy; step: StepContext }> {
  const name: PlacementStrategy = options.strategy ?? ctx.strategy ?? 'binpack';
  if (name === 'manual' && options.nodeId === undefined) {
    return err('invalid_request', 'placement.nodeId: strategy manual needs the node to use', { field: 'placement.nodeId' });
  }
  const weights = options.weights ?? { cpu: 1, memory: 1 };
  if (weights.cpu + weights.memory === 0) {
    return err('invalid_request', 'placement.weights: at least one weight must be above 0', { field: 'placement.weights', weights });
  }
  const step: StepContext = {
    request,
    options,
    demand: demandOf(request),
    weights,
    ...(ctx.maxVmsPerNode === undefined ? {} : { maxVmsPerNode: ctx.maxVmsPerNode }),
    ...(ctx.exclude === undefined ? {} : { exclude: ctx.exclude }),
  };
  return ok({ strategy: STRATEGIES[name], step });
}

/**
 * PreFilter: the filters that apply to this request under this strategy, in precedence order, and the step context
 * with the figures they prepare once (domain tallies for topology spread and affinity).
 */
export function requestFilters(
  snapshot: ClusterSnapshot,
  strategy: Strategy,
  step: StepContext,
): { filters: FilterPlugin[]; step: StepContext } {
  const filters = filtersFor(step, strategy.filters === undefined ? FILTER_PLUGINS : [...FILTER_PLUGINS, ...strategy.filters]);
  let prepared = step;
  for (const f of filters) if (f.prepare !== undefined) prepared = { ...prepared, ...f.prepare(snapshot, prepared) };
  return { filters, step: prepared };
}

/** The strategy's scorers, plus the request's preferred affinity (see preferredAffinityWeight). */
export function requestScorers(strategy: Strategy, step: StepContext): Strategy['scorers'] {
  if (!hasPreferredAffinity(step)) return strategy.scorers;
  return [...strategy.scorers, { plugin: PREFERRED_AFFINITY, weight: preferredAffinityWeight(strategy.scorers) }];
}

/**
 * Decides where a request should go, without committing anything: the candidates to ask in order (best first), and
 * per-reason rejection counts. Pure: reads the snapshot and the context, changes nothing; the same inputs (and the same
 * random source state) give the same answer. The coordinator's place and check both call it.
 *
 * The cycle, after kube-scheduler's framework and Nomad's stack: PreFilter (the plugins that apply), a walk of the
 * free-capacity index in the strategy's order (source), Filter on each visited node until the sample is full (limit),
 * PreScore, Score, NormalizeScore, and the weighted sum ranks the sample.
 * Typical cost O(log n + k log n) for k ~ log2(n) nodes examined; see README.md for the worst cases.
 */
export function decide(
  snapshot: ClusterSnapshot,
  request: AllocationRequest,
  options: PlacementOptions,
  ctx: PlacementContext,
): Result<PlacementDecision> {
  const prepared = stepContext(request, options, ctx);
  if (!prepared.ok) return prepared;
  const { strategy, step } = prepared.value;
  const maxCandidates = Math.max(1, ctx.maxCandidates ?? DEFAULT_MAX_CANDIDATES);
  const run = new Run(snapshot, step, ctx, strategy, maxCandidates);
  return ok(strategy.namesNode === true ? run.named(options.nodeId as NodeId) : run.search());
}

/** One placement's working state. */
class Run {
  readonly #snapshot: ClusterSnapshot;
  readonly #ctx: PlacementContext;
  readonly #strategy: Strategy;
  readonly #maxCandidates: number;
  readonly #need: CapacityNeed;
  readonly #rejected = new RejectionTally();
  #step: StepContext;
  readonly #filters: FilterPlugin[];
  readonly #scorers: Strategy['scorers'];

  constructor(snapshot: ClusterSnapshot, step: StepContext, ctx: PlacementContext, strategy: Strategy, maxCandidates: number) {
    this.#snapshot = snapshot;
    this.#ctx = ctx;
    this.#strategy = strategy;
    this.#maxCandidates = maxCandidates;
    const prepared = requestFilters(snapshot, strategy, step);
    this.#step = prepared.step;
    this.#filters = prepared.filters;
    this.#scorers = requestScorers(strategy, prepared.step);
    this.#need = { memoryMiB: step.demand.memoryMiB, vcpus: step.demand.vcpus, exclusive: step.demand.exclusive };
  }

  /**
   * Why this node cannot take the request, or null: the first filter plugin it fails, in precedence order (the index's
   * own first), so a node the index never visits is counted under the same reason as a visited one.
   */
  #reasonFor(node: NodeView): string | null {
    return firstFailure(this.#filters, this.#step, node);
  }

  /** A strategy that names its node (manual): that node or nothing; every other node is counted as not the named node. */
  named(nodeId: NodeId): PlacementDecision {
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

  /** Visit capacity-fitting nodes from the index in the strategy's order, filter, keep a bounded sample, rank it. */
  search(): PlacementDecision {
    const strategy = this.#strategy;
    // PreScore: what the score plugins (and the source, e.g. spread-domain's domain order) need, computed once.
    for (const { plugin } of this.#scorers)
      if (plugin.preScore !== undefined) this.#step = { ...this.#step, ...plugin.preScore(this.#snapshot, this.#step, this.#ctx) };
    const limit = strategy.sampleSize(this.#snapshot.schedulableCount, this.#maxCandidates);
    const maxVisits = Math.max(limit, this.#ctx.maxVisits ?? DEFAULT_MAX_VISITS);
    const source = strategy.source(this.#snapshot, this.#step, this.#ctx);
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
      feasible.push({ node, scores: this.#scorers.map(({ plugin }) => plugin.score(this.#step, node)), total: 0, seq: feasible.length });
    }
    if (feasible.length > 0) {
      this.#rank(feasible);
      const candidates = feasible.slice(0, this.#maxCandidates).map((v) => v.node.nodeId);
      const message = `${candidates.length} candidate(s), best ${candidates[0]}; examined ${yielded} of ${this.#snapshot.size} nodes (${strategy.name}).`;
      return this.#decision(candidates, message, yielded, false);
    }
    return this.#refusal(yielded, exhausted);
  }

  /** NormalizeScore per plugin over the sample, then the weighted sum; best first, visit order breaking ties. */
  #rank(feasible: Visited[]): void {
    this.#scorers.forEach(({ plugin, weight }, i) => {
      const column = feasible.map((v) => v.scores[i] as number);
      plugin.normalize?.(column);
      feasible.forEach((v, j) => (v.total += weight * (column[j] as number)));
    });
    feasible.sort((a, b) => b.total - a.total || a.seq - b.seq);
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
    return { candidates, rejected: this.#rejected.counts, message, examined, exhaustive, strategy: this.#strategy.name };
  }
}
