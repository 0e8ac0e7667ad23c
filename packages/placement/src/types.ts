import type { AllocationRequest, NodeView, PlacementOptions, PlacementStrategy } from '@allot/core';
import type { CandidateSource, ClusterSnapshot, NodeId } from './snapshot.ts';
import type { RandomSource } from './random.ts';

/** What a request asks of one node, read once from the AllocationRequest. */
export interface Demand {
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly exclusive: boolean;
  readonly numa: 'any' | 'prefer' | 'require';
}

/** Per-domain counts for spread-domain: allocations of this request's group (or tenant) in each failure domain. */
export interface DomainLoad {
  readonly label: string;
  /** Domain value -> allocations of the group or tenant there; nodes without the label form the `null` domain. */
  readonly counts: ReadonlyMap<string | null, number>;
  readonly min: number;
  readonly max: number;
}

/** One affinity term's figures, computed once per decision. */
export interface AffinityLoad {
  /** Allocations of the term's group per domain of its topologyKey (absent for a per-node term). */
  readonly counts?: ReadonlyMap<string | null, number>;
  /** Allocations of the term's group in the whole cluster view. */
  readonly total: number;
}

/**
 * Everything a filter or scorer may read besides the node: the request, its options, and the figures one placement
 * computes once. Steps are pure functions of (StepContext, NodeView).
 */
export interface StepContext {
  readonly request: AllocationRequest;
  readonly options: PlacementOptions;
  readonly demand: Demand;
  /** The tenant's per-node VM limit (from its quota), when it has one. */
  readonly maxVmsPerNode?: number;
  /** Nodes already tried for this request. */
  readonly exclude?: ReadonlySet<NodeId>;
  /** Weights of the CPU and memory dimensions in the resource scorers, default 1:1. */
  readonly weights: { readonly cpu: number; readonly memory: number };
  /** For spread-domain. */
  readonly domainLoad?: DomainLoad;
  /** For a topology spread: the group's (or tenant's) allocations per labelled domain with a schedulable node. */
  readonly spreadLoad?: DomainLoad;
  /** For affinity terms, in the options' order: the group's allocations per domain (per-domain terms) and in the cluster. */
  readonly affinityLoads?: readonly AffinityLoad[];
  /** For round-robin: position of a node in the stable order, the cursor's position, and how many nodes are ordered. */
  readonly stableRank?: (nodeId: NodeId) => number;
  readonly cursorRank?: number;
  readonly stableCount?: number;
}

/** One feasibility question about one node: null when it passes, else a reason a person reads (and that is counted). */
export type Filter = (ctx: StepContext, node: NodeView) => null | { readonly reason: string };

/** A preference (higher is better) for placing the request on this node; 0..100 unless its plugin normalises it. */
export type Scorer = (ctx: StepContext, node: NodeView) => number;

/** A registered filter (kube-scheduler's Filter extension point, with its PreFilter as `appliesTo`). */
export interface FilterPlugin {
  readonly name: string;
  /** PreFilter: false when the plugin has nothing to say about this request; it is then not run. Default: always. */
  readonly appliesTo?: (ctx: StepContext) => boolean;
  /** PreFilter's figures, computed once per decision when the plugin applies (domain tallies). */
  readonly prepare?: (snapshot: ClusterSnapshot, ctx: StepContext) => Partial<StepContext>;
  /** The free-capacity index answers it for the nodes a walk never visits (node state, memory, CPU). */
  readonly answeredByIndex?: boolean;
  /** A capacity question that evicting allocations can change: the preemption post-filter leaves it to its plan. */
  readonly capacity?: boolean;
  readonly filter: Filter;
}

/** A registered scorer (kube-scheduler's PreScore, Score and NormalizeScore extension points). */
export interface ScorePlugin {
  readonly name: string;
  /** PreScore: figures computed once per decision (a domain's load, the round-robin cursor's rank). */
  readonly preScore?: (snapshot: ClusterSnapshot, ctx: StepContext, placement: PlacementContext) => Partial<StepContext>;
  readonly score: Scorer;
  /** NormalizeScore: maps the sampled nodes' scores into 0..100, in place. Absent when the score already is 0..100. */
  readonly normalize?: (scores: number[]) => void;
}

/** A strategy is a set of score plugins with weights, a source that orders the walk, and a sample size. */
export interface Strategy {
  readonly name: PlacementStrategy;
  /** A node's score is the sum of weight x normalised score over these (kube-scheduler's weighted sum). */
  readonly scorers: readonly { readonly plugin: ScorePlugin; readonly weight: number }[];
  /** Filters only this strategy adds (manual: the named node). */
  readonly filters?: readonly FilterPlugin[];
  /** Which nodes the walk visits and in which order (Nomad's source iterator), given the prepared step context. */
  readonly source: (snapshot: ClusterSnapshot, ctx: StepContext, placement: PlacementContext) => CandidateSource;
  /** Feasible nodes to look at before taking the best (Nomad's limit iterator). */
  readonly sampleSize: (schedulable: number, maxCandidates: number) => number;
  /** The strategy names one node itself (manual): that node is checked, every other one counted as not named. */
  readonly namesNode?: boolean;
}

/** What the caller (the coordinator) supplies besides the request: defaults, chance, memory between placements. */
export interface PlacementContext {
  /** Used when the options name no strategy; default binpack. */
  readonly strategy?: PlacementStrategy;
  /** Seeded in tests; the coordinator may pass Math.random. */
  readonly random: RandomSource;
  /** The node chosen by the previous round-robin placement. */
  readonly roundRobinCursor?: NodeId;
  /** The tenant's maxVmsPerNode quota, when set. */
  readonly maxVmsPerNode?: number;
  /** Nodes already tried for this request (they refused or timed out); never returned again. */
  readonly exclude?: ReadonlySet<NodeId>;
  /** How many candidates to return, best first (default 5). */
  readonly maxCandidates?: number;
  /** Upper bound on capacity-fitting nodes examined when the first sample finds nothing (default 10,000). */
  readonly maxVisits?: number;
}

/** The answer to decide (a place or a check). */
export interface PlacementDecision {
  /** Nodes to try, best first; empty when nothing fits. */
  readonly candidates: NodeId[];
  /** Nodes rejected per reason. Exact over the whole cluster when `exhaustive`; else only what was examined. */
  readonly rejected: Record<string, number>;
  /** `0/5 nodes are available: 3 Insufficient memory, 2 node cordoned.` or a summary of the choice. */
  readonly message: string;
  /** Nodes whose filters were evaluated (the rest were decided by the index's own counts or not looked at). */
  readonly examined: number;
  /** True when every node was accounted for (a refusal is then certain for this view). */
  readonly exhaustive: boolean;
  readonly strategy: PlacementStrategy;
}
