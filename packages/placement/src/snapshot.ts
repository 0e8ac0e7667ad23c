// The read side of the cluster that placement decides over, as types only: the snapshot, the index's entries and
// the walks over them. A leaf, so the decision's types, the index and the scorers can all name it.
import type { NodeView } from '@allot/core';
import type { RandomSource } from './random.ts';

export type NodeId = string;

/** Why a node takes nothing whatever the request (the constants are in node-capacity.ts, which decides it). */
export type NodeStateReason = 'node not ready' | 'node cordoned' | 'node unhealthy';

/** One schedulable node as the index keys it: its free capacity, read once from its snapshot. */
export interface CapacityEntry {
  readonly nodeId: NodeId;
  readonly freeMemoryMiB: number;
  /** Largest shared-mode request that fits (vCPUs). */
  readonly sharedVcpuFit: number;
  /** Shared cores that could become exclusive (approximate; see node-capacity.ts). */
  readonly idleCores: number;
  /** A random tie-breaker fixed when the node is first seen, so equal nodes are visited in an arbitrary order. */
  readonly salt: number;
}

/** What a request needs, as far as the index can tell: memory and either shared vCPUs or idle cores. */
export interface CapacityNeed {
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly exclusive: boolean;
}

/** A pull-based stream of entries; `next()` returns undefined when there are no more. */
export interface CandidateSource {
  next(): CapacityEntry | undefined;
}

/** Allocation counts in one failure domain, kept current on every upsert. */
export interface DomainTally {
  /** Live allocations per anti-affinity group, keyed per tenant (tenantGroupKey). */
  readonly groups: ReadonlyMap<string, number>;
  /** VMs per tenant. */
  readonly tenants: ReadonlyMap<string, number>;
}

/**
 * The read side of the cluster view that placement needs. ClusterIndex implements it; place() depends on nothing else,
 * so a placement is a pure function of this snapshot.
 */
export interface ClusterSnapshot {
  /** Every node known, schedulable or not. */
  readonly size: number;
  /** Ready, not cordoned, not unhealthy. */
  readonly schedulableCount: number;
  get(nodeId: NodeId): NodeView | undefined;
  nodes(): IterableIterator<NodeView>;
  /** Nodes that are not schedulable, per reason. O(1). */
  stateCounts(): Readonly<Record<NodeStateReason, number>>;
  /** Schedulable nodes with less free memory than this. O(log n). */
  countShortOfMemory(memoryMiB: number): number;
  /** Schedulable nodes that fit the need, by free memory: ascending (tightest first), descending, or random start. */
  byFreeMemory(need: CapacityNeed, order: 'ascending' | 'descending' | 'random', random?: RandomSource): CandidateSource;
  /** Schedulable nodes that fit the need, in node-id order starting after `after`, wrapping around. */
  inStableOrder(need: CapacityNeed, after?: NodeId): CandidateSource;
  /** How many schedulable node ids sort before (or, inclusive, at or before) this id. O(log n). */
  stableRank(nodeId: NodeId, inclusive?: boolean): number;
  /** The failure domains of this label with their allocation tallies (starts tracking the label if it was not). */
  domains(label: string): ReadonlyMap<string | null, DomainTally>;
  /** The domains of this label holding at least one schedulable node (`null`: nodes without the label). */
  schedulableDomains(label: string): IterableIterator<string | null>;
  /** Schedulable nodes of one domain that fit the need, by free memory. */
  byFreeMemoryInDomain(label: string, value: string | null, need: CapacityNeed, order: 'ascending' | 'descending'): CandidateSource;
  /** The priority levels of preemptible allocations on schedulable nodes (their snapshots' `priorities`), ascending. */
  preemptionLevels(): number[];
  /**
   * Schedulable nodes that fit the need once every preemptible allocation of priority `level` or below is evicted, by
   * that room (memory first). A node whose room cannot fit is never visited. O(log n) per node yielded, plus O(n log n)
   * once when the level was not indexed yet (see ClusterIndex, MAX_EVICTION_TREES).
   */
  byRoomEvicting(level: number, need: CapacityNeed, order: 'ascending' | 'descending'): CandidateSource;
}
