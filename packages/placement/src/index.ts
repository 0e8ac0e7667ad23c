/** @allot/placement: pure placement decisions over a cluster snapshot, and the free-capacity index behind them. */
export * from './types.ts';
export { seededRandom, type RandomSource } from './random.ts';
export type { CandidateSource, CapacityEntry, CapacityNeed, ClusterSnapshot, DomainTally, NodeId } from './snapshot.ts';
export { ClusterIndex, MAX_DOMAIN_LABELS, MAX_EVICTION_TREES, type ClusterIndexOptions } from './cluster-index.ts';
export * from './filters.ts';
export { tolerates, taintReason, untoleratedTaint } from './taints.ts';
export { maxCpuOvercommitPercent, overcommitReason } from './overcommit.ts';
export { maxSkewReason, missingLabelReason, spreadLoad } from './topology-spread.ts';
export { affinityReason, affinityLoads, PREFERRED_AFFINITY } from './affinity.ts';
export * from './scorers.ts';
export { STRATEGIES, SPREAD_DOMAIN_WEIGHT, sampleLimit } from './strategies.ts';
export { decide, demandOf, DEFAULT_MAX_CANDIDATES, DEFAULT_MAX_VISITS } from './decide.ts';
export { decideBatch, type BatchDecision } from './batch.ts';
export { unavailableMessage, sortedReasons } from './rejections.ts';
export { planPreemption, fitsAfter, fitsWhenEmptied, PREEMPTION_SEARCH_BUDGET, type PreemptionPlan } from './preemption.ts';
export { preemptionTargets, rankPreemptionPlans, planPreemptionAmong, PREEMPTION_SAMPLE, type PreemptionTargets } from './post-filter.ts';
export {
  freeMemoryMiB,
  sharedVcpuFit,
  idleSharedCores,
  largestNumaSharedCores,
  nodeStateReason,
  roomAfter,
  evictableUpTo,
  type Freed,
} from './node-capacity.ts';
