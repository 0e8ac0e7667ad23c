import { randomInt } from 'node:crypto';
import type { NodeView } from '@allot/core';
import { CapacityTree, type EntryOrder } from './capacity-tree.ts';
import {
  evictableUpTo,
  freeMemoryMiB,
  idleSharedCores,
  roomAfter,
  nodeStateReason,
  sharedVcpuFit,
  type NodeStateReason,
  NODE_CORDONED,
  NODE_NOT_READY,
  NODE_UNHEALTHY,
} from './node-capacity.ts';
import { seededRandom, type RandomSource } from './random.ts';
import { domainOf } from './scorers.ts';
import type { CandidateSource, CapacityEntry, CapacityNeed, ClusterSnapshot, DomainTally, NodeId } from './snapshot.ts';

/**
 * Bound on the failure-domain labels indexed at once. A `check` or `place` may name any domainLabel (up to 64
 * characters); each label tracked costs a tree per value and O(log n) on every upsert, so without a bound a caller
 * cycling through labels would grow the index and slow every snapshot. Past the bound, the least recently used label
 * (never a configured one) is dropped, and rebuilt in O(n log n) if asked for again.
 */
export const MAX_DOMAIN_LABELS = 16;

/**
 * Bound on the eviction trees kept at once (one per priority level a preemption asked about, see byRoomEvicting). Each
 * costs O(log n) on every upsert; past the bound the least recently used one is dropped and rebuilt in O(n log n) if
 * asked for again. Clusters use a handful of priority levels, and one preemption asks about O(log levels) of them.
 */
export const MAX_EVICTION_TREES = 16;

export interface ClusterIndexOptions {
  /** Tie-breaking salts and treap priorities. Default: seeded from the OS, so coordinators break ties differently. */
  readonly random?: RandomSource;
  /** Failure-domain labels to index from the start (default `zone`); others are indexed on first use. */
  readonly domainLabels?: readonly string[];
}

interface NodeRecord {
  /** Replaced in place by a snapshot that moves nothing (#unmoved). */
  view: NodeView;
  /** Present when the node is schedulable. */
  entry: CapacityEntry | null;
  state: NodeStateReason | null;
  salt: number;
  /** Per tracked eviction tree (by priority level), the entry inserted there: the room once that level is evicted. */
  readonly evictionEntries: Map<number, CapacityEntry>;
}

const byFreeMemoryOrder: EntryOrder = (a, b) =>
  a.freeMemoryMiB - b.freeMemoryMiB || a.salt - b.salt || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0);
const byNodeIdOrder: EntryOrder = (a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0);
const nothing: CandidateSource = { next: () => undefined };

interface DomainIndex {
  readonly trees: Map<string | null, CapacityTree>;
  readonly tallies: Map<string | null, { groups: Map<string, number>; tenants: Map<string, number> }>;
}

/**
 * The coordinator's cluster view, indexed by free capacity so a placement visits only nodes that can fit.
 * - a tree by free memory (tie: a per-node random salt) with subtree maxima of free shared vCPUs and idle cores;
 * - a tree by node id with the same maxima, for round-robin;
 * - per tracked failure-domain label, one tree per domain value and the domain's group/tenant tallies.
 * upsert and remove cost O((1 + D) log n) for D tracked domain labels, plus the node's group and tenant entries.
 */
export class ClusterIndex implements ClusterSnapshot {
  readonly #nodes = new Map<NodeId, NodeRecord>();
  readonly #byFree: CapacityTree;
  readonly #byId: CapacityTree;
  readonly #domains = new Map<string, DomainIndex>();
  /** Priority level -> schedulable nodes whose snapshot lists preemptible allocations at that level. */
  readonly #levels = new Map<number, number>();
  /** Priority level -> schedulable nodes by the room evicting every preemptible allocation at or below it frees. */
  readonly #evictionTrees = new Map<number, CapacityTree>();
  readonly #states: Record<NodeStateReason, number> = { [NODE_NOT_READY]: 0, [NODE_CORDONED]: 0, [NODE_UNHEALTHY]: 0 };
  readonly #random: RandomSource;
  /** The configured labels: never evicted. */
  readonly #pinned: ReadonlySet<string>;

  constructor(options: ClusterIndexOptions = {}) {
    this.#random = options.random ?? seededRandom(randomInt(2 ** 32));
    this.#byFree = new CapacityTree(byFreeMemoryOrder, this.#random);
    this.#byId = new CapacityTree(byNodeIdOrder, this.#random);
    this.#pinned = new Set(options.domainLabels ?? ['zone']);
    for (const label of this.#pinned) this.#domains.set(label, { trees: new Map(), tallies: new Map() });
  }

  /** Failure-domain labels indexed now (at most max(MAX_DOMAIN_LABELS, configured labels)). */
  get trackedDomainLabels(): number {
    return this.#domains.size;
  }

  /** Builds an index from a list of views (tests, benchmarks, a coordinator rebuilding its view). */
  static of(views: Iterable<NodeView>, options: ClusterIndexOptions = {}): ClusterIndex {
    const index = new ClusterIndex(options);
    for (const v of views) index.upsert(v);
    return index;
  }

  get size(): number {
    return this.#nodes.size;
  }

  get schedulableCount(): number {
    return this.#byFree.size;
  }

  get(nodeId: NodeId): NodeView | undefined {
    return this.#nodes.get(nodeId)?.view;
  }

  *nodes(): IterableIterator<NodeView> {
    for (const r of this.#nodes.values()) yield r.view;
  }

  /**
   * Adds or replaces a node's view. A snapshot older (lower seq, same boot) than the one held is ignored, so usage
   * messages arriving out of order cannot roll the view back; returns whether the view was applied.
   */
  upsert(view: NodeView): boolean {
    const old = this.#nodes.get(view.nodeId);
    if (old !== undefined && old.view.snapshot.bootId === view.snapshot.bootId && view.snapshot.seq < old.view.snapshot.seq) return false;
    if (old !== undefined && this.#unmoved(old, view)) {
      old.view = view;
      return true;
    }
    const salt = old?.salt ?? this.#random();
    if (old !== undefined) this.#unlink(old);
    const state = nodeStateReason(view);
    const entry: CapacityEntry | null =
      state === null
        ? {
            nodeId: view.nodeId,
            freeMemoryMiB: freeMemoryMiB(view),
            sharedVcpuFit: sharedVcpuFit(view),
            idleCores: idleSharedCores(view),
            salt,
          }
        : null;
    const record: NodeRecord = { view, entry, state, salt, evictionEntries: new Map() };
    this.#nodes.set(view.nodeId, record);
    this.#link(record);
    this.#relinkEviction(old, record);
    return true;
  }

  /**
   * Whether `view` leaves every tree, tally and count where `old` put it: the same ledger state (boot and seq: the same
   * tenants, groups and priorities), schedulability, free figures and failure domains. The heartbeat of an unchanged
   * host is that case, and then only its view is replaced: re-inserting it in every tree was most of what a
   * coordinator spent on each heartbeat (docs/benchmarks.md, "Fleet").
   */
  #unmoved(old: NodeRecord, view: NodeView): boolean {
    const was = old.view;
    if (was.snapshot.bootId !== view.snapshot.bootId || was.snapshot.seq !== view.snapshot.seq) return false;
    if (nodeStateReason(view) !== old.state) return false;
    const e = old.entry;
    if (
      e !== null &&
      (e.freeMemoryMiB !== freeMemoryMiB(view) || e.sharedVcpuFit !== sharedVcpuFit(view) || e.idleCores !== idleSharedCores(view))
    )
      return false;
    for (const label of this.#domains.keys()) if (domainOf(was, label) !== domainOf(view, label)) return false;
    return true;
  }

  remove(nodeId: NodeId): boolean {
    const old = this.#nodes.get(nodeId);
    if (old === undefined) return false;
    this.#unlink(old);
    for (const [level, entry] of old.evictionEntries) this.#evictionTrees.get(level)?.remove(entry);
    this.#nodes.delete(nodeId);
    return true;
  }

  #link(r: NodeRecord): void {
    if (r.state !== null) this.#states[r.state] += 1;
    if (r.entry !== null) {
      this.#byFree.insert(r.entry);
      this.#byId.insert(r.entry);
      for (const p of r.view.snapshot.priorities ?? []) addTo(this.#levels, p.priority, 1);
    }
    for (const [label, d] of this.#domains) this.#linkDomain(label, d, r, 1);
  }

  /**
   * Moves a node's entries in the eviction trees from its old record to its new one. An entry whose room did not change
   * (a heartbeat, or a change above every tracked level) stays where it is: no tree operation.
   */
  #relinkEviction(old: NodeRecord | undefined, r: NodeRecord): void {
    for (const [level, tree] of this.#evictionTrees) {
      const before = old?.evictionEntries.get(level);
      if (r.entry === null) {
        if (before !== undefined) tree.remove(before);
        continue;
      }
      const room = roomAfter(r.view, evictableUpTo(r.view, level));
      if (
        before !== undefined &&
        before.freeMemoryMiB === room.freeMemoryMiB &&
        before.sharedVcpuFit === room.sharedVcpuFit &&
        before.idleCores === room.idleCores
      ) {
        r.evictionEntries.set(level, before);
        continue;
      }
      if (before !== undefined) tree.remove(before);
      const entry: CapacityEntry = { nodeId: r.view.nodeId, salt: r.salt, ...room };
      r.evictionEntries.set(level, entry);
      tree.insert(entry);
    }
  }

  #unlink(r: NodeRecord): void {
    if (r.state !== null) this.#states[r.state] -= 1;
    if (r.entry !== null) {
      this.#byFree.remove(r.entry);
      this.#byId.remove(r.entry);
      for (const p of r.view.snapshot.priorities ?? []) addTo(this.#levels, p.priority, -1);
    }
    for (const [label, d] of this.#domains) this.#linkDomain(label, d, r, -1);
  }

  /** Adds (sign 1) or takes away (sign -1) a node's share of one domain label's trees and tallies. */
  #linkDomain(label: string, d: DomainIndex, r: NodeRecord, sign: 1 | -1): void {
    const value = domainOf(r.view, label);
    if (r.entry !== null) {
      let tree = d.trees.get(value);
      if (tree === undefined) {
        tree = new CapacityTree(byFreeMemoryOrder, this.#random);
        d.trees.set(value, tree);
      }
      if (sign > 0) tree.insert(r.entry);
      else {
        tree.remove(r.entry);
        if (tree.size === 0) d.trees.delete(value);
      }
    }
    let tally = d.tallies.get(value);
    if (tally === undefined) {
      tally = { groups: new Map(), tenants: new Map() };
      d.tallies.set(value, tally);
    }
    for (const [group, n] of Object.entries(r.view.snapshot.groups)) addTo(tally.groups, group, sign * n);
    for (const [tenant, usage] of Object.entries(r.view.snapshot.tenants)) addTo(tally.tenants, tenant, sign * usage.vms);
  }

  stateCounts(): Readonly<Record<NodeStateReason, number>> {
    return this.#states;
  }

  countShortOfMemory(memoryMiB: number): number {
    return this.#byFree.countBefore((e) => e.freeMemoryMiB >= memoryMiB);
  }

  byFreeMemory(need: CapacityNeed, order: 'ascending' | 'descending' | 'random', random?: RandomSource): CandidateSource {
    const from = (e: CapacityEntry) => e.freeMemoryMiB >= need.memoryMiB;
    if (order === 'random') return this.#byFree.walkFromRandom(need, from, random ?? this.#random);
    return this.#byFree.walk(need, order, from);
  }

  inStableOrder(need: CapacityNeed, after?: NodeId): CandidateSource {
    if (after === undefined) return this.#byId.walk(need, 'ascending');
    const pastCursor = (e: CapacityEntry) => e.nodeId > after;
    const first = this.#byId.walk(need, 'ascending', pastCursor);
    const wrapped = this.#byId.walk(need, 'ascending', () => true, pastCursor);
    let onWrapped = false;
    return {
      next: () => {
        if (!onWrapped) {
          const e = first.next();
          if (e !== undefined) return e;
          onWrapped = true;
        }
        return wrapped.next();
      },
    };
  }

  stableRank(nodeId: NodeId, inclusive = false): number {
    return this.#byId.countBefore(inclusive ? (e) => e.nodeId > nodeId : (e) => e.nodeId >= nodeId);
  }

  domains(label: string): ReadonlyMap<string | null, DomainTally> {
    return this.#domain(label).tallies;
  }

  schedulableDomains(label: string): IterableIterator<string | null> {
    return this.#domain(label).trees.keys();
  }

  byFreeMemoryInDomain(label: string, value: string | null, need: CapacityNeed, order: 'ascending' | 'descending'): CandidateSource {
    const tree = this.#domain(label).trees.get(value);
    if (tree === undefined) return nothing;
    return tree.walk(need, order, (e) => e.freeMemoryMiB >= need.memoryMiB);
  }

  preemptionLevels(): number[] {
    return [...this.#levels.keys()].sort((a, b) => a - b);
  }

  byRoomEvicting(level: number, need: CapacityNeed, order: 'ascending' | 'descending'): CandidateSource {
    return this.#evictionTree(level).walk(need, order, (e) => e.freeMemoryMiB >= need.memoryMiB);
  }

  /** The eviction tree of a priority level, built on first use in O(n log n), then maintained by every upsert. */
  #evictionTree(level: number): CapacityTree {
    let tree = this.#evictionTrees.get(level);
    if (tree !== undefined) {
      this.#evictionTrees.delete(level); // most recently used last: the Map's order is the eviction order
      this.#evictionTrees.set(level, tree);
      return tree;
    }
    if (this.#evictionTrees.size >= MAX_EVICTION_TREES) {
      const [oldest] = this.#evictionTrees.keys();
      if (oldest !== undefined) {
        this.#evictionTrees.delete(oldest);
        for (const r of this.#nodes.values()) r.evictionEntries.delete(oldest);
      }
    }
    tree = new CapacityTree(byFreeMemoryOrder, this.#random);
    this.#evictionTrees.set(level, tree);
    for (const r of this.#nodes.values()) {
      if (r.entry === null) continue;
      const entry: CapacityEntry = { nodeId: r.view.nodeId, salt: r.salt, ...roomAfter(r.view, evictableUpTo(r.view, level)) };
      r.evictionEntries.set(level, entry);
      tree.insert(entry);
    }
    return tree;
  }

  /** The domain index of a label, built on first use in O(n log n) and then maintained by every upsert. */
  #domain(label: string): DomainIndex {
    let d = this.#domains.get(label);
    if (d !== undefined) {
      // Most recently used last: the Map's insertion order is the eviction order.
      if (!this.#pinned.has(label)) {
        this.#domains.delete(label);
        this.#domains.set(label, d);
      }
      return d;
    }
    if (this.#domains.size >= Math.max(MAX_DOMAIN_LABELS, this.#pinned.size + 1)) {
      for (const old of this.#domains.keys()) {
        if (this.#pinned.has(old)) continue;
        this.#domains.delete(old);
        break;
      }
    }
    d = { trees: new Map(), tallies: new Map() };
    this.#domains.set(label, d);
    for (const r of this.#nodes.values()) this.#linkDomain(label, d, r, 1);
    return d;
  }
}

function addTo<K>(map: Map<K, number>, key: K, delta: number): void {
  const n = (map.get(key) ?? 0) + delta;
  if (n === 0) map.delete(key);
  else map.set(key, n);
}
