import {
  coreListLength,
  ownCopy,
  PackedCores,
  packedCoresOf,
  withPackedCores,
  worstHealth,
  type CoreState,
  type Health,
  type NodeLiveness,
  type NodeView,
  type Taint,
  type UsageSnapshot,
} from '@allot/core';
import type { ClusterUsage, NodeState as OperatorNodeState } from '@allot/protocol';
import { ClusterIndex, type ClusterIndexOptions } from '@allot/placement';
import { systemCoordinatorClock, type CoordinatorClock } from './store/clock.ts';

/** A liveness change of one node, as the cluster events stream records it. */
export interface LivenessTransition {
  readonly kind: 'node_suspect' | 'node_lost' | 'node_returned';
  readonly nodeId: string;
  readonly from: NodeLiveness;
  readonly to: NodeLiveness;
  /** The last snapshot seen from the node: with the kind, it makes the event's dedupe id across coordinators. */
  readonly bootId: string;
  readonly snapshotSeq: number;
  readonly lastSeen: number;
  /** How long the node had been silent, on this coordinator's monotonic clock. */
  readonly silentMs: number;
  readonly at: number;
}

/** A node's lease (KV allot_nodes) as this coordinator last saw it: liveness.ts follows the bucket. */
export interface LeaseSeen {
  /** The boot of the agent whose lease it is (for a deletion: whose lease the deletion ended; undefined: unknown). */
  readonly bootId: string | undefined;
  /** When this coordinator received the renewal (or deletion), minus its age on a cold start, on its monotonic clock. */
  readonly at: number;
  /** Deleted (the agent stopped cleanly) rather than renewed. */
  readonly deleted: boolean;
}

/** The node leases the view judges liveness by, besides the reports. */
export interface NodeLeaseSource {
  /** The lease last seen of the node; undefined: none (never held, or expired before this coordinator started). */
  seen(nodeId: string): LeaseSeen | undefined;
  /** False until the leases stored at start have been read: no lease is judged then. */
  current(): boolean;
  /**
   * The monotonic instant up to which renewals are known: now, or, while the feed is blind (its heartbeats missed: a
   * server went away), when it went blind, so a coordinator that cannot see the renewals does not take them as stopped.
   */
  asOf(): number;
  /** A lease not renewed for this long has expired (the bucket's max_age). */
  readonly ttlMs: number;
  /** Its agent renews it this often. */
  readonly renewEveryMs: number;
}

export interface ClusterViewOptions {
  /** Ready -> suspect after this silence of reports; default per node 3 x the heartbeatMs its snapshot announces. */
  readonly suspectAfterMs?: number;
  /** Suspect -> lost after this silence of reports (and, with leases, once the node's lease is gone too). */
  readonly lostAfterMs: number;
  /**
   * The node leases (liveness.ts). A renewal by the boot whose reports the view holds is liveness as much as a report:
   * a node is ready while its reports are fresh (within suspectAfterMs) or, when it announces an idle status
   * (`idleStatusMs` above its heartbeat: it reports seldom by design), its lease is (renewed within max(suspectAfterMs,
   * 2 renewal periods), so one late renewal does not make it suspect); suspect otherwise, and at once when its lease is
   * deleted (a clean stop); lost once its reports are silent past lostAfterMs and its lease is gone (deleted, expired,
   * or held by another boot). While the leases are not read yet, a node silent past
   * lostAfterMs stays suspect until twice lostAfterMs. Absent: the reports' silence alone decides.
   */
  readonly leases?: NodeLeaseSource;
  readonly index?: ClusterIndexOptions;
  /** Silence is measured on `monotonic`; `wall` only stamps lastSeen and events. Default: the system clocks. */
  readonly clock?: CoordinatorClock;
  /** Node ids held at most (default MAX_VIEW_NODES). */
  readonly maxNodes?: number;
  /** Placement intents that count (pending or placed) naming the node: a decommissioned node stays while any does. */
  readonly countingOn?: (nodeId: string) => number;
  /** A removed decommissioned node reported (once per boot of its agent): the coordinator tells that agent it is refused. */
  readonly onRefused?: (nodeId: string, bootId: string) => void;
}

/** What the view needs of a decommission record (node-states.ts). */
export interface Decommissioned {
  readonly at: number;
  /** Nothing of the node remained: out of the view and every count, and its snapshots are refused. */
  readonly removedAt?: number | undefined;
}

/**
 * Bound on the nodes in the view. Node ids come from subjects (an agent may publish only as itself), but a deployment
 * without those permissions, or a bug, could report endless ids. Past the bound a new id takes the place of the node
 * lost longest ago, or is refused (counted in refusedNodes) when no node is lost; known nodes always update.
 */
export const MAX_VIEW_NODES = 20_000;

interface NodeState {
  snapshot: UsageSnapshot;
  /** When this coordinator received the snapshot (minus its age on a cold start), on the monotonic clock. */
  receivedAt: number;
  /** The same instant in this coordinator's wall time, for display. */
  lastSeen: number;
  liveness: NodeLiveness;
  /** A cordon this coordinator forwarded, shown until a newer snapshot (higher seq or a new boot) reports the node's own state. */
  override?: { cordoned: boolean; bootId: string; seq: number };
}

/**
 * The snapshot as the view holds it (docs/benchmarks.md, "Fleet": 4.3 KB a 64-core node instead of 17 KB):
 * - its per-core list packed (@allot/core packed-cores.ts); readers still see `cpu.cores` as the list. A heartbeat
 *   without the list (its cores did not change since the agent sent them, usage-snapshot.ts) shows the list held under
 *   the same digest. Holding none (a cold start replays each node's last message only), it shows none until the
 *   agent's next list: placement counts cores by the snapshot's per-NUMA figures meanwhile;
 * - its strings its own: msgpackr's native string extractor (the sources' decoder; the release's pure build has none)
 *   returns strings as slices of the whole message's text, so one bootId kept the whole report alive. They are copied
 *   when they change and taken from the held snapshot while they do not (a heartbeat: a few comparisons).
 */
function heldForm(snapshot: UsageSnapshot, held: UsageSnapshot | undefined): UsageSnapshot {
  const cpu = snapshot.cpu;
  const sameDigest = cpu.coresDigest !== undefined && held?.cpu.coresDigest === cpu.coresDigest;
  const source = coreListLength(cpu) > 0 ? cpu : sameDigest && coreListLength(held.cpu) > 0 ? held.cpu : undefined;
  const packed = source === undefined ? undefined : (packedCoresOf(source) ?? PackedCores.of(source.cores));
  let own = cpu;
  if (cpu.coresDigest !== undefined)
    own = { ...cpu, coresDigest: sameDigest ? (held?.cpu.coresDigest as string) : ownCopy(cpu.coresDigest) };
  let heldCpu = own;
  if (packed !== undefined) heldCpu = withPackedCores(own, packed);
  else if (source !== undefined && source !== cpu) heldCpu = { ...own, cores: source.cores };
  return {
    ...snapshot,
    nodeId: held?.nodeId ?? ownCopy(snapshot.nodeId),
    bootId: held?.bootId === snapshot.bootId ? held.bootId : ownCopy(snapshot.bootId),
    labels: held !== undefined && sameStrings(held.labels, snapshot.labels) ? held.labels : ownValues(snapshot.labels),
    health: held !== undefined && sameHealth(held.health, snapshot.health) ? held.health : ownHealth(snapshot.health),
    cpu: heldCpu,
  };
}

function sameStrings(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(b);
  if (Object.keys(a).length !== keys.length) return false;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

const ownValues = (r: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, ownCopy(v)]));

const reasonsOf = (h: Health): readonly string[] => (h.status === 'degraded' || h.status === 'unhealthy' ? h.reasons : []);

function sameHealth(a: Health, b: Health): boolean {
  const ra = reasonsOf(a);
  const rb = reasonsOf(b);
  return a.status === b.status && ra.length === rb.length && ra.every((r, i) => r === rb[i]);
}

const ownHealth = (h: Health): Health =>
  h.status === 'degraded' || h.status === 'unhealthy' ? { ...h, reasons: h.reasons.map(ownCopy) } : h;

/** `snapshot` showing `cores` (an agent's answer to a node read), held packed unless they are not the schema's shape. */
function withCores(snapshot: UsageSnapshot, cores: CoreState[]): UsageSnapshot {
  const packed = PackedCores.of(cores);
  return { ...snapshot, cpu: packed === undefined ? { ...snapshot.cpu, cores } : withPackedCores(snapshot.cpu, packed) };
}

/** Health reasons listed one by one before the rest are summarised as a count. */
const MAX_HEALTH_REASONS = 10;

/**
 * The coordinator's soft view of the cluster: each node's latest usage snapshot, when this coordinator received it,
 * and its liveness; the placement index is kept current on every change (O(log n) per snapshot). Derived state only:
 * it chooses candidates, the agents decide. Liveness compares only this process's monotonic readings, never another
 * machine's clock with this one's: a coordinator whose wall clock is off (or steps) judges nodes as well as any other.
 */
export class ClusterView {
  readonly index: ClusterIndex;
  readonly #nodes = new Map<string, NodeState>();
  readonly #options: ClusterViewOptions;
  readonly #clock: CoordinatorClock;
  readonly #maxNodes: number;
  /** Snapshots of new node ids refused because the view was full of live nodes. */
  refusedNodes = 0;
  readonly #decommissioned = new Map<string, Decommissioned>();
  /** The operators' taints per node (node-taints.ts), kept for nodes not yet reported too. */
  readonly #taints = new Map<string, readonly Taint[]>();
  /** Removed decommissioned nodes that reported anyway: their agent's boot and when (monotonic) it was last heard. */
  readonly #refused = new Map<string, { bootId: string; at: number }>();
  /** Snapshots dropped because their node was decommissioned and removed. */
  decommissionedSnapshots = 0;
  /** Told the id of every node whose view may have changed (or left): readers that keep a copy redo only those. */
  readonly #listeners = new Set<(nodeId: string) => void>();

  constructor(options: ClusterViewOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemCoordinatorClock;
    this.#maxNodes = options.maxNodes ?? MAX_VIEW_NODES;
    this.index = new ClusterIndex(options.index);
  }

  get size(): number {
    return this.#nodes.size;
  }

  /**
   * Calls `listener` with the id of each node whose view may have changed or that left the view, as it happens, so a
   * reader that keeps a copy (the dashboard model) redoes those nodes only instead of scanning 10,000 every tick.
   */
  onNodeChanged(listener: (nodeId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(nodeId: string): void {
    for (const listener of this.#listeners) listener(nodeId);
  }

  /**
   * Takes a snapshot received now, or `ageMs` ago: a snapshot replayed on a cold start was stored a while before, and
   * its age is the difference of two JetStream timestamps (usage-feed.ts), never this clock against the server's.
   * A snapshot older than the one held (same boot, lower seq) is ignored. Returns node_returned when a suspect or lost
   * node reported again.
   */
  apply(snapshot: UsageSnapshot, ageMs = 0): LivenessTransition | null {
    if (this.#decommissioned.get(snapshot.nodeId)?.removedAt !== undefined) {
      this.#refuse(snapshot, ageMs);
      return null;
    }
    const old = this.#nodes.get(snapshot.nodeId);
    if (old === undefined && this.#nodes.size >= this.#maxNodes && !this.#forgetLongestLost()) {
      this.refusedNodes += 1;
      return null;
    }
    if (old !== undefined && old.snapshot.bootId === snapshot.bootId && snapshot.seq < old.snapshot.seq) return null;
    snapshot = heldForm(snapshot, old?.snapshot);
    const age = Math.max(0, ageMs);
    let receivedAt = this.#clock.monotonic() - age;
    let lastSeen = this.#clock.wall() - age;
    if (old !== undefined && old.receivedAt > receivedAt) ({ receivedAt, lastSeen } = old);
    const state: NodeState = { snapshot, receivedAt, lastSeen, liveness: 'ready' };
    const o = old?.override;
    if (o !== undefined && o.bootId === snapshot.bootId && snapshot.seq <= o.seq) state.override = o;
    state.liveness = this.#livenessOf(state);
    this.#nodes.set(snapshot.nodeId, state);
    this.index.upsert(this.#viewOf(snapshot.nodeId, state));
    this.#changed(snapshot.nodeId);
    if (old !== undefined && old.liveness !== 'ready' && state.liveness === 'ready')
      return this.#transition(snapshot.nodeId, state, old.liveness);
    return null;
  }

  /**
   * Gives a node held without its per-core list (a heartbeat this coordinator holds no list for) the list of `full`, a
   * snapshot its agent answered, when that is the layout held (same boot and digest). Liveness is left alone: the
   * usage feed alone measures silence. Returns whether the list was taken.
   */
  attachCores(nodeId: string, full: UsageSnapshot): boolean {
    const state = this.#nodes.get(nodeId);
    const held = state?.snapshot;
    if (state === undefined || held === undefined || coreListLength(held.cpu) > 0 || coreListLength(full.cpu) === 0) return false;
    if (full.nodeId !== nodeId || full.bootId !== held.bootId || full.cpu.coresDigest !== held.cpu.coresDigest) return false;
    state.snapshot = withCores(held, full.cpu.cores);
    this.index.upsert(this.#viewOf(nodeId, state));
    this.#changed(nodeId);
    return true;
  }

  /** Re-evaluates every node's liveness now; returns the transitions (suspect, lost). O(n). */
  sweep(): LivenessTransition[] {
    const changes: LivenessTransition[] = [];
    for (const [nodeId, state] of this.#nodes) {
      const next = this.#livenessOf(state);
      if (next === state.liveness) continue;
      const from = state.liveness;
      state.liveness = next;
      this.index.upsert(this.#viewOf(nodeId, state));
      this.#changed(nodeId);
      changes.push(this.#transition(nodeId, state, from));
    }
    return changes;
  }

  /**
   * The operator's word on a node (node-states.ts): decommissioned (record) or not (undefined). A removed node leaves
   * the view and the index at once; a decommissioned one that still holds something stays, shown decommissioned and
   * out of placement's reach, until removable() finds nothing of it left.
   */
  setDecommissioned(nodeId: string, record: Decommissioned | undefined): void {
    if (record === undefined) {
      this.#decommissioned.delete(nodeId);
      this.#refused.delete(nodeId);
    } else {
      this.#decommissioned.set(nodeId, record);
    }
    const state = this.#nodes.get(nodeId);
    if (state === undefined) return;
    if (record?.removedAt !== undefined) {
      this.#nodes.delete(nodeId);
      this.index.remove(nodeId);
      this.#changed(nodeId);
      return;
    }
    this.index.upsert(this.#viewOf(nodeId, state));
    this.#changed(nodeId);
  }

  /** The operators' taints on a node (node-taints.ts); empty: none. Placement reads them from the node's view. */
  setTaints(nodeId: string, taints: readonly Taint[]): void {
    if (taints.length === 0) this.#taints.delete(nodeId);
    else this.#taints.set(nodeId, taints);
    const state = this.#nodes.get(nodeId);
    if (state === undefined) return;
    this.index.upsert(this.#viewOf(nodeId, state));
    this.#changed(nodeId);
  }

  /**
   * Decommissioned nodes of which nothing remains, not yet marked removed: no counting intent names them, and their
   * agent, unless lost, reports no allocation. A lost node's last snapshot is not evidence: decommission gave its
   * placements up on the operator's word. O(decommissioned nodes) plus countingOn for each candidate.
   */
  removable(): string[] {
    const out: string[] = [];
    for (const [nodeId, record] of this.#decommissioned) {
      if (record.removedAt !== undefined) continue;
      const state = this.#nodes.get(nodeId);
      if (state !== undefined && state.liveness !== 'lost' && state.snapshot.allocationCount > 0) continue;
      if ((this.#options.countingOn?.(nodeId) ?? 0) > 0) continue;
      out.push(nodeId);
    }
    return out;
  }

  /** Removed decommissioned nodes heard from within `withinMs` (monotonic): their agents run; the sweep releases their strays. */
  refusedNodesHeard(withinMs: number): string[] {
    const since = this.#clock.monotonic() - withinMs;
    return [...this.#refused].filter(([, r]) => r.at >= since).map(([nodeId]) => nodeId);
  }

  #refuse(snapshot: UsageSnapshot, ageMs: number): void {
    this.decommissionedSnapshots += 1;
    const at = this.#clock.monotonic() - Math.max(0, ageMs);
    const held = this.#refused.get(snapshot.nodeId);
    if (held !== undefined && held.at > at) return;
    this.#refused.set(snapshot.nodeId, { bootId: snapshot.bootId, at });
    if (held?.bootId !== snapshot.bootId) this.#options.onRefused?.(snapshot.nodeId, snapshot.bootId);
  }

  /** Shows the node cordoned (or not) at once, before its agent's next snapshot says so. False for an unknown node. */
  setCordoned(nodeId: string, cordoned: boolean): boolean {
    const state = this.#nodes.get(nodeId);
    if (state === undefined) return false;
    state.override = { cordoned, bootId: state.snapshot.bootId, seq: state.snapshot.seq };
    this.index.upsert(this.#viewOf(nodeId, state));
    this.#changed(nodeId);
    return true;
  }

  get(nodeId: string): NodeView | undefined {
    return this.index.get(nodeId);
  }

  /** Every node, optionally only those of one liveness, of one operator state, and whose labels include all of `labels`. */
  nodes(filter: { liveness?: NodeLiveness; state?: OperatorNodeState; labels?: Record<string, string> } = {}): NodeView[] {
    const out: NodeView[] = [];
    for (const v of this.index.nodes()) {
      if (filter.liveness !== undefined && v.liveness !== filter.liveness) continue;
      if (filter.state !== undefined && v.state !== filter.state) continue;
      if (filter.labels !== undefined && !Object.entries(filter.labels).every(([k, val]) => v.snapshot.labels[k] === val)) continue;
      out.push(v);
    }
    return out.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Cluster totals; capacity counts nodes that are not lost (a lost node's capacity cannot be used). */
  usage(now: number): ClusterUsage {
    const u: ClusterUsage = {
      at: now,
      nodes: { total: 0, ready: 0, suspect: 0, lost: 0, cordoned: 0, draining: 0, decommissioned: 0 },
      memory: { capacity: 0, effectiveCapacity: 0, committed: 0, used: 0 },
      cpu: { capacity: 0, effectiveCapacity: 0, committed: 0, used: 0 },
      allocationCount: 0,
    };
    for (const v of this.index.nodes()) {
      u.nodes.total += 1;
      u.nodes[v.liveness] += 1;
      if (v.snapshot.cordoned) u.nodes.cordoned += 1;
      if (v.state === 'draining') u.nodes.draining = (u.nodes.draining ?? 0) + 1;
      if (v.state === 'decommissioned') {
        // Its allocations still count until they are gone; its capacity is nobody's.
        u.nodes.decommissioned = (u.nodes.decommissioned ?? 0) + 1;
        u.allocationCount += v.snapshot.allocationCount;
        u.memory.committed += v.snapshot.memory.committed;
        u.cpu.committed += v.snapshot.cpu.committed;
        continue;
      }
      // Allocations on a lost node still exist (the agent is the authority); only its capacity is out of reach.
      u.allocationCount += v.snapshot.allocationCount;
      u.memory.committed += v.snapshot.memory.committed;
      u.cpu.committed += v.snapshot.cpu.committed;
      if (v.liveness === 'lost') continue;
      for (const r of ['memory', 'cpu'] as const) {
        u[r].capacity += v.snapshot[r].capacity;
        u[r].effectiveCapacity += v.snapshot[r].effectiveCapacity;
        u[r].used += v.snapshot[r].used;
      }
    }
    return u;
  }

  /**
   * The worst of the nodes' health, each reason prefixed by its node; suspect and lost nodes make the cluster degraded.
   * Past MAX_HEALTH_REASONS reasons the rest are counted, so a sick 1,000-node cluster still gives a readable answer.
   */
  health(): Health {
    const healths: Health[] = [];
    let suspect = 0;
    let lost = 0;
    for (const v of this.index.nodes()) {
      if (v.state === 'decommissioned') continue; // the operator's: not a fault of the cluster
      if (v.liveness === 'suspect') suspect += 1;
      else if (v.liveness === 'lost') lost += 1;
      const h = v.snapshot.health;
      if (h.status === 'degraded' || h.status === 'unhealthy')
        healths.push({ status: h.status, reasons: h.reasons.map((r) => `${v.nodeId}: ${r}`) });
      else if (h.status === 'stopped') healths.push({ status: 'degraded', reasons: [`${v.nodeId}: stopped`] });
    }
    if (suspect + lost > 0) healths.push({ status: 'degraded', reasons: [`${suspect} node(s) suspect, ${lost} lost`] });
    if (this.#nodes.size === 0) healths.push({ status: 'degraded', reasons: ['no node has reported yet'] });
    const worst = worstHealth(healths);
    if (worst.status !== 'degraded' && worst.status !== 'unhealthy') return worst;
    if (worst.reasons.length <= MAX_HEALTH_REASONS) return worst;
    const shown = worst.reasons.slice(0, MAX_HEALTH_REASONS);
    shown.push(`and ${worst.reasons.length - MAX_HEALTH_REASONS} more`);
    return { status: worst.status, reasons: shown };
  }

  /** Forgets the node lost longest ago, if any node is lost: O(n), only when the view is full. */
  #forgetLongestLost(): boolean {
    let oldest: [string, NodeState] | undefined;
    for (const entry of this.#nodes) {
      if (entry[1].liveness === 'lost' && (oldest === undefined || entry[1].receivedAt < oldest[1].receivedAt)) oldest = entry;
    }
    if (oldest === undefined) return false;
    this.#nodes.delete(oldest[0]);
    this.index.remove(oldest[0]);
    this.#changed(oldest[0]);
    return true;
  }

  #livenessOf(state: NodeState): NodeLiveness {
    const idle = state.snapshot.idleStatusMs;
    const announcesIdle = idle !== undefined && idle > state.snapshot.heartbeatMs;
    // Once lost, a node comes back with its next report; one that reports seldom by design also with a renewal by its
    // boot (its status is the last it sent: the agent sends every change, again after a failed publish).
    if (state.liveness === 'lost' && !announcesIdle) return 'lost';
    const now = this.#clock.monotonic();
    const silence = now - state.receivedAt;
    const lostAfter = this.#options.lostAfterMs;
    const suspectAfter = this.#options.suspectAfterMs ?? 3 * state.snapshot.heartbeatMs;
    const lease = this.#leaseOf(state);
    if (lease === 'none') return silence >= lostAfter ? 'lost' : silence >= suspectAfter ? 'suspect' : 'ready';
    if (lease === 'unknown') return silence >= 2 * lostAfter ? 'lost' : silence >= suspectAfter ? 'suspect' : 'ready';
    if (silence >= lostAfter && (lease === 'gone' || lease === 'deleted')) return 'lost';
    if (lease === 'deleted') return 'suspect';
    if (silence < suspectAfter) return 'ready';
    // A node that reports every heartbeat is suspect after 3 missed ones (a frozen agent seen in 6 s, not 10); one that
    // announces an idle status judges by its lease: two renewal periods, so one late renewal does not flap it.
    if (lease === 'gone' || !announcesIdle) return 'suspect';
    const leases = this.#options.leases as NodeLeaseSource;
    return leases.asOf() - lease.at < Math.max(suspectAfter, 2 * leases.renewEveryMs) ? 'ready' : 'suspect';
  }

  /**
   * The node's lease as liveness of the agent whose reports the view holds: held (its boot renewed it within the TTL),
   * deleted (it stopped cleanly), gone (expired, never seen, or held by another boot: not this agent's liveness),
   * unknown (the leases not read yet), none (leases not followed).
   */
  #leaseOf(state: NodeState): LeaseSeen | 'deleted' | 'gone' | 'unknown' | 'none' {
    const leases = this.#options.leases;
    if (leases === undefined) return 'none';
    if (!leases.current()) return 'unknown';
    const seen = leases.seen(state.snapshot.nodeId);
    if (seen === undefined) return 'gone';
    if (seen.deleted) return seen.bootId === undefined || seen.bootId === state.snapshot.bootId ? 'deleted' : 'gone';
    if (seen.bootId !== state.snapshot.bootId) return 'gone';
    return leases.asOf() - seen.at < leases.ttlMs ? seen : 'gone';
  }

  /** The node's last sign of life on the monotonic clock: its last report, or its agent's last lease renewal if newer. */
  #aliveAt(state: NodeState): number {
    const seen = this.#options.leases?.seen(state.snapshot.nodeId);
    const renewed = seen !== undefined && !seen.deleted && seen.bootId === state.snapshot.bootId;
    return renewed ? Math.max(state.receivedAt, seen.at) : state.receivedAt;
  }

  #viewOf(nodeId: string, state: NodeState): NodeView {
    const decommissioned = this.#decommissioned.get(nodeId);
    // A decommissioned node is shown cordoned, so placement never offers it whatever its agent says.
    const cordoned = decommissioned !== undefined || (state.override?.cordoned ?? state.snapshot.cordoned);
    const snapshot = cordoned === state.snapshot.cordoned ? state.snapshot : { ...state.snapshot, cordoned };
    const operatorState: OperatorNodeState =
      decommissioned !== undefined ? 'decommissioned' : state.liveness !== 'ready' ? state.liveness : cordoned ? 'draining' : 'ready';
    const taints = this.#taints.get(nodeId);
    return {
      nodeId,
      liveness: state.liveness,
      state: operatorState,
      ...(decommissioned === undefined ? {} : { decommissionedAt: decommissioned.at }),
      ...(taints === undefined ? {} : { taints: [...taints] }),
      lastSeen: state.lastSeen,
      snapshot,
    };
  }

  #transition(nodeId: string, state: NodeState, from: NodeLiveness): LivenessTransition {
    const to = state.liveness;
    const kind = to === 'ready' ? 'node_returned' : to === 'suspect' ? 'node_suspect' : 'node_lost';
    const silentMs = Math.max(0, Math.round(this.#clock.monotonic() - this.#aliveAt(state)));
    return {
      kind,
      nodeId,
      from,
      to,
      bootId: state.snapshot.bootId,
      snapshotSeq: state.snapshot.seq,
      lastSeen: state.lastSeen,
      silentMs,
      at: this.#clock.wall(),
    };
  }
}
