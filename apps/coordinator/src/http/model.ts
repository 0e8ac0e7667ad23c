import type { NodeView, ResourceUsage, TenantQuota, UsageSnapshot } from '@allot/core';
import type { ClusterView } from '../view.ts';
import type { ClusterSummary, DeltaMessage, FeedEvent, NodeRow, SeriesPoint, SnapshotMessage, TenantRow } from '@allot/protocol/http';
import { Ring, SeriesRing } from './ring.ts';

/** What the model needs of the quota service: every tenant with a quota, as last seen by its watch. */
export interface QuotaSource {
  list(): { quota: TenantQuota; usage: { vms: number; vcpus: number; memoryMiB: number } }[];
}

export interface DashboardModelOptions {
  /** One series point every this many ms (default 5,000). */
  readonly seriesEveryMs?: number;
  /** Points kept (default 720: one hour at 5 s). */
  readonly seriesPoints?: number;
  /** Events kept for a newly connected page (default 200). */
  readonly eventsKept?: number;
  /** Events sent in one delta at most; the rest are counted as dropped (default 200). */
  readonly maxEventsPerDelta?: number;
  /** The cluster summary and the tenants (O(nodes) each) are recomputed at most this often (default 1,000 ms). */
  readonly summaryEveryMs?: number;
}

interface Tracked {
  /** The snapshot object the row was built from: a new object means a new snapshot arrived. */
  snapshot: UsageSnapshot;
  liveness: NodeView['liveness'];
  state: NodeView['state'];
  /** The view's taints array as last seen: the view makes a new one whenever a node's taints change. */
  taints: NodeView['taints'];
  row: NodeRow;
  /**
   * The row without lastSeen, serialised: a row is sent again only when this changes, and a page's snapshot is these
   * strings with lastSeen put in front (no row rebuilt or serialised again for a page that connects).
   */
  key: string;
  /** lastSeen as last sent. */
  sentSeen: number;
}

/** A node's table row: its snapshot without the per-core list and the per-tenant figures. */
export function rowOf(v: NodeView): NodeRow {
  const s = v.snapshot;
  const figures = (r: ResourceUsage) => ({
    capacity: r.capacity,
    systemReserve: r.systemReserve,
    effectiveCapacity: r.effectiveCapacity,
    committed: r.committed,
    used: r.used,
    reserved: r.reserved,
  });
  return {
    nodeId: v.nodeId,
    liveness: v.liveness,
    ...(v.state === undefined ? {} : { state: v.state }),
    lastSeen: v.lastSeen,
    bootId: s.bootId,
    seq: s.seq,
    labels: s.labels,
    cordoned: s.cordoned,
    health: s.health,
    memory: figures(s.memory),
    cpu: {
      ...figures(s.cpu),
      sharedCores: s.cpu.sharedCores,
      exclusiveCores: s.cpu.exclusiveCores,
      reservedCores: s.cpu.reservedCores,
      // The role counts, not the list's length: a view may hold no list yet (a heartbeat without it, view.ts).
      cores: s.cpu.sharedCores + s.cpu.exclusiveCores + s.cpu.reservedCores,
    },
    overcommit: s.overcommit,
    tenants: Object.keys(s.tenants).sort(),
    allocationCount: s.allocationCount,
    heartbeatMs: s.heartbeatMs,
    ...(v.taints === undefined || v.taints.length === 0 ? {} : { taints: v.taints }),
  };
}

const FIGURES = ['capacity', 'systemReserve', 'effectiveCapacity', 'committed', 'used', 'reserved'] as const;

function sameKeys(a: Record<string, unknown>, b: Record<string, unknown>, values: boolean): boolean {
  let n = 0;
  for (const k in a) {
    if (!Object.hasOwn(b, k) || (values && a[k] !== b[k])) return false;
    n += 1;
  }
  for (const _ in b) n -= 1;
  return n === 0;
}

/**
 * Two snapshots give the same row (rowOf) but for lastSeen: compared field by field, without building and serialising
 * the row, so a heartbeat that moved nothing a row shows costs ~1 µs instead of a row and its JSON. Stricter is safe
 * (a row is then built and its key compared); model.test.ts holds it to rowOf.
 */
export function sameRowFields(a: UsageSnapshot, b: UsageSnapshot): boolean {
  if (
    a.bootId !== b.bootId ||
    a.seq !== b.seq ||
    a.cordoned !== b.cordoned ||
    a.allocationCount !== b.allocationCount ||
    a.heartbeatMs !== b.heartbeatMs ||
    a.overcommit.memory !== b.overcommit.memory ||
    a.overcommit.cpu !== b.overcommit.cpu ||
    a.cpu.sharedCores !== b.cpu.sharedCores ||
    a.cpu.exclusiveCores !== b.cpu.exclusiveCores ||
    a.cpu.reservedCores !== b.cpu.reservedCores ||
    a.health.status !== b.health.status
  )
    return false;
  for (const f of FIGURES) if (a.memory[f] !== b.memory[f] || a.cpu[f] !== b.cpu[f]) return false;
  const ra = 'reasons' in a.health ? a.health.reasons : [];
  const rb = 'reasons' in b.health ? b.health.reasons : [];
  if (ra.length !== rb.length || ra.some((r, i) => r !== rb[i])) return false;
  return sameKeys(a.labels, b.labels, true) && sameKeys(a.tenants, b.tenants, false);
}

function keyOf(row: NodeRow): string {
  const { lastSeen: _, ...rest } = row;
  return JSON.stringify(rest);
}

/** A tracked row as JSON: its key with lastSeen as last sent. */
function rowJson(t: Tracked): string {
  return `{"lastSeen":${t.sentSeen},${t.key.slice(1)}`;
}

/**
 * What one slow page missed while its socket was full (SseHub's catch-up), folded as it happens: the ids of the rows
 * that changed or left and of the nodes only heard from, whether the summary or the tenants changed, the series points
 * and the events. Bounded: at most `maxRows` row ids (past it a snapshot is cheaper, and the page gets one), ids of
 * nodes in the view for `seen`, the series' capacity in points and maxEventsPerDelta events (the rest counted).
 */
export interface Backlog {
  readonly rows: Set<string>;
  readonly seen: Set<string>;
  cluster: boolean;
  tenants: boolean;
  readonly points: SeriesPoint[];
  readonly events: FeedEvent[];
  eventsDropped: number;
}

/**
 * What the dashboard shows, derived from the coordinator's ClusterView, its quota watch and the events feed, and the
 * deltas between two ticks. The server calls tick() on a fixed cadence (250 ms): everything that changed in between is
 * coalesced into one delta (a node that sent ten snapshots is one row, its latest), so a churning cluster costs a page
 * at most four messages a second whatever the rate of change. A tick is O(nodes that reported since the last), plus
 * a pass over every node at most once a second for the cluster summary and the tenants: at 10,000 nodes three sorted
 * passes every 250 ms took a fifth of a core, connected page or not (docs/benchmarks.md, "Fleet").
 */
export class DashboardModel {
  readonly series: SeriesRing;
  readonly #view: ClusterView;
  readonly #quotas: QuotaSource | undefined;
  readonly #tracked = new Map<string, Tracked>();
  readonly #events: Ring<FeedEvent>;
  readonly #maxEventsPerDelta: number;
  #pendingEvents: FeedEvent[] = [];
  #eventsDropped = 0;
  #clusterKey = '';
  #tenantsKey = '';
  /** The summary and the tenants as last sent (a slow page's catch-up sends these). */
  #lastCluster: ClusterSummary | undefined;
  #lastTenants: TenantRow[] | undefined;
  /** Ticks so far, and the snapshot JSON built since the last one. */
  #ticks = 0;
  #snapshotCache: { ticks: number; json: string } | undefined;
  #lastSampleAt = Number.NEGATIVE_INFINITY;
  /** Nodes whose view changed (or left) since the last tick: a tick looks at these only. */
  #dirty = new Set<string>();
  readonly #summaryEveryMs: number;
  #lastSummaryAt = Number.NEGATIVE_INFINITY;
  /** A node row changed or left since the summary was last computed. */
  #summaryDue = true;

  constructor(view: ClusterView, quotas: QuotaSource | undefined, options: DashboardModelOptions = {}) {
    this.#view = view;
    this.#quotas = quotas;
    this.series = new SeriesRing(options.seriesPoints ?? 720, options.seriesEveryMs ?? 5_000);
    this.#events = new Ring(options.eventsKept ?? 200);
    this.#maxEventsPerDelta = options.maxEventsPerDelta ?? 200;
    this.#summaryEveryMs = options.summaryEveryMs ?? 1_000;
    for (const v of view.index.nodes()) this.#dirty.add(v.nodeId);
    view.onNodeChanged((nodeId) => this.#dirty.add(nodeId));
  }

  /** An event read from ALLOT_EVENTS: kept for new pages, sent with the next delta. */
  addEvent(e: FeedEvent): void {
    this.#events.push(e);
    if (this.#pendingEvents.length < this.#maxEventsPerDelta) this.#pendingEvents.push(e);
    else this.#eventsDropped += 1;
  }

  /** Every node's current row, by node id. */
  rows(): NodeRow[] {
    return this.#view.nodes().map(rowOf);
  }

  cluster(now: number): ClusterSummary {
    const usage = this.#view.usage(now);
    const physical = { memory: 0, cpu: 0 };
    const byHealth = { healthy: 0, degraded: 0, unhealthy: 0, stopped: 0 };
    for (const v of this.#view.index.nodes()) {
      byHealth[v.snapshot.health.status] += 1;
      if (v.liveness === 'lost') continue;
      physical.memory += v.snapshot.memory.capacity - v.snapshot.memory.systemReserve;
      physical.cpu += v.snapshot.cpu.capacity - v.snapshot.cpu.systemReserve;
    }
    const ratio = (committed: number, base: number) => (base > 0 ? Math.round((committed / base) * 1000) / 1000 : 0);
    return {
      usage,
      overcommitInUse: { memory: ratio(usage.memory.committed, physical.memory), cpu: ratio(usage.cpu.committed, physical.cpu) },
      byHealth,
      health: this.#view.health(),
    };
  }

  /** Tenants seen on nodes or holding a quota, by id; usage summed over the nodes' snapshots. */
  tenants(): TenantRow[] {
    const rows = new Map<string, TenantRow>();
    const rowFor = (tenantId: string): TenantRow => {
      let r = rows.get(tenantId);
      if (r === undefined) {
        r = { tenantId, usage: { vms: 0, vcpus: 0, memoryMiB: 0, nodes: 0 } };
        rows.set(tenantId, r);
      }
      return r;
    };
    for (const v of this.#view.index.nodes()) {
      for (const [tenantId, u] of Object.entries(v.snapshot.tenants)) {
        if (u.vms === 0 && u.vcpus === 0 && u.memoryMiB === 0) continue;
        const r = rowFor(tenantId);
        r.usage.vms += u.vms;
        r.usage.vcpus += u.vcpus;
        r.usage.memoryMiB += u.memoryMiB;
        r.usage.nodes += 1;
      }
    }
    for (const q of this.#quotas?.list() ?? []) {
      const r = rowFor(q.quota.tenantId);
      r.quota = q.quota;
      r.quotaUsage = { vms: q.usage.vms, vcpus: q.usage.vcpus, memoryMiB: q.usage.memoryMiB };
    }
    return [...rows.values()].sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));
  }

  /**
   * Everything, for a page that just connected (or fell too far behind), as JSON: the rows as of the last tick (each
   * row's JSON kept since it last changed, so a page connecting to 10,000 nodes costs one string join, not 10,000
   * rows built and serialised), so the next delta is exactly what changed after it. Rows in no particular order.
   */
  snapshotJson(now: number): string {
    // One per tick at most, whatever the pages that connect meanwhile (a reconnect loop costs no more than 4 a second).
    if (this.#snapshotCache?.ticks === this.#ticks) return this.#snapshotCache.json;
    const json = this.#buildSnapshotJson(now);
    this.#snapshotCache = { ticks: this.#ticks, json };
    return json;
  }

  #buildSnapshotJson(now: number): string {
    const rows: string[] = [];
    for (const t of this.#tracked.values()) rows.push(rowJson(t));
    const rest = JSON.stringify({
      cluster: this.cluster(now),
      tenants: this.tenants(),
      series: this.series.toSeries(),
      events: this.#events.toArray(),
    });
    return `{"now":${now},"nodes":[${rows.join(',')}],${rest.slice(1)}`;
  }

  /** snapshotJson() as an object (tests, and readers that want one). */
  snapshot(now: number): SnapshotMessage {
    return JSON.parse(this.snapshotJson(now)) as SnapshotMessage;
  }

  /** An empty backlog for a page whose socket just filled. */
  newBacklog(): Backlog {
    return { rows: new Set(), seen: new Set(), cluster: false, tenants: false, points: [], events: [], eventsDropped: 0 };
  }

  /**
   * Folds a delta a page missed into its backlog; false when the backlog would pass its bound (half the rows: a
   * snapshot is then about as large as the catch-up, and the page gets one instead).
   */
  addToBacklog(b: Backlog, d: DeltaMessage): boolean {
    for (const r of d.nodes ?? []) b.rows.add(r.nodeId);
    for (const id of d.removed ?? []) b.rows.add(id);
    if (d.seen !== undefined) for (const id of Object.keys(d.seen)) b.seen.add(id);
    if (d.cluster !== undefined) b.cluster = true;
    if (d.tenants !== undefined) b.tenants = true;
    if (d.point !== undefined) {
      b.points.push(d.point);
      if (b.points.length > this.series.capacity) b.points.shift();
    }
    for (const e of d.events ?? []) {
      if (b.events.length < this.#maxEventsPerDelta) b.events.push(e);
      else b.eventsDropped += 1;
    }
    b.eventsDropped += d.eventsDropped ?? 0;
    return b.rows.size <= Math.max(100, this.#tracked.size / 2);
  }

  /**
   * What brings a page that missed deltas up to date, as SSE frames: each missed series point but the last as a delta
   * of its own, then one delta with the current row of every node that changed (removed if it left), lastSeen of the
   * nodes only heard from, the summary and the tenants as last sent, and the missed events. As of the last tick, like
   * every delta, so the page's next delta follows on from it.
   */
  catchUpDeltas(b: Backlog, now: number): DeltaMessage[] {
    const out: DeltaMessage[] = b.points.slice(0, -1).map((point) => ({ now, point }));
    const delta: DeltaMessage = { now };
    const nodes: NodeRow[] = [];
    const removed: string[] = [];
    for (const id of b.rows) {
      const t = this.#tracked.get(id);
      if (t === undefined) removed.push(id);
      else nodes.push(t.row);
    }
    const seen: Record<string, number> = {};
    let anySeen = false;
    for (const id of b.seen) {
      const t = this.#tracked.get(id);
      if (t === undefined || b.rows.has(id)) continue;
      seen[id] = t.sentSeen;
      anySeen = true;
    }
    if (nodes.length > 0) delta.nodes = nodes;
    if (removed.length > 0) delta.removed = removed;
    if (anySeen) delta.seen = seen;
    if (b.cluster && this.#lastCluster !== undefined) delta.cluster = this.#lastCluster;
    if (b.tenants && this.#lastTenants !== undefined) delta.tenants = this.#lastTenants;
    const last = b.points.at(-1);
    if (last !== undefined) delta.point = last;
    if (b.events.length > 0) delta.events = b.events;
    if (b.eventsDropped > 0) delta.eventsDropped = b.eventsDropped;
    if (Object.keys(delta).length > 1) out.push(delta);
    return out;
  }

  /** Adds a series point when one is due; returns it. */
  sample(now: number): SeriesPoint | undefined {
    if (now - this.#lastSampleAt < this.series.everyMs) return undefined;
    this.#lastSampleAt = now;
    const u = this.#view.usage(now);
    const point: SeriesPoint = {
      at: now,
      memEffective: u.memory.effectiveCapacity,
      memCommitted: u.memory.committed,
      memUsed: u.memory.used,
      cpuEffective: u.cpu.effectiveCapacity,
      cpuCommitted: u.cpu.committed,
      cpuUsed: u.cpu.used,
      nodesReady: u.nodes.ready,
    };
    this.series.push(point);
    return point;
  }

  /**
   * What changed since the previous tick, or null when nothing did. O(nodes changed) for the rows: the view names the
   * nodes that changed (onNodeChanged); the cluster summary and the tenants, O(nodes) each, only when a row changed,
   * at most once per summaryEveryMs (and the tenants then too, as their quotas change without any node).
   */
  tick(now: number): DeltaMessage | null {
    this.#ticks += 1;
    const delta: DeltaMessage = { now };
    const changed: NodeRow[] = [];
    const seen: Record<string, number> = {};
    let anySeen = false;
    const removed: string[] = [];
    const dirty = this.#dirty;
    this.#dirty = new Set();
    for (const nodeId of dirty) {
      const v = this.#view.get(nodeId);
      if (v === undefined) {
        if (this.#tracked.delete(nodeId)) removed.push(nodeId);
        continue;
      }
      const t = this.#tracked.get(v.nodeId);
      if (
        t !== undefined &&
        t.liveness === v.liveness &&
        t.state === v.state &&
        t.taints === v.taints &&
        (t.snapshot === v.snapshot || sameRowFields(t.snapshot, v.snapshot))
      ) {
        t.snapshot = v.snapshot;
        if (t.sentSeen !== v.lastSeen) {
          t.sentSeen = v.lastSeen;
          t.row.lastSeen = v.lastSeen;
          seen[v.nodeId] = v.lastSeen;
          anySeen = true;
        }
        continue;
      }
      const row = rowOf(v);
      const key = keyOf(row);
      if (t !== undefined && t.key === key) {
        t.snapshot = v.snapshot;
        t.liveness = v.liveness;
        t.state = v.state;
        t.taints = v.taints;
        t.row = row;
        if (t.sentSeen !== v.lastSeen) {
          t.sentSeen = v.lastSeen;
          seen[v.nodeId] = v.lastSeen;
          anySeen = true;
        }
        continue;
      }
      this.#tracked.set(v.nodeId, {
        snapshot: v.snapshot,
        liveness: v.liveness,
        state: v.state,
        taints: v.taints,
        row,
        key,
        sentSeen: v.lastSeen,
      });
      changed.push(row);
    }
    if (changed.length > 0) delta.nodes = changed;
    if (removed.length > 0) delta.removed = removed;
    if (anySeen) delta.seen = seen;
    if (changed.length > 0 || removed.length > 0) this.#summaryDue = true;

    const summaryTime = now - this.#lastSummaryAt >= this.#summaryEveryMs;
    if (summaryTime && this.#summaryDue) {
      this.#summaryDue = false;
      const cluster = this.cluster(now);
      const clusterKey = JSON.stringify({ ...cluster, usage: { ...cluster.usage, at: 0 } });
      if (clusterKey !== this.#clusterKey) {
        this.#clusterKey = clusterKey;
        this.#lastCluster = cluster;
        delta.cluster = cluster;
      }
    }
    if (summaryTime) {
      this.#lastSummaryAt = now;
      const tenants = this.tenants();
      const tenantsKey = JSON.stringify(tenants);
      if (tenantsKey !== this.#tenantsKey) {
        this.#tenantsKey = tenantsKey;
        this.#lastTenants = tenants;
        delta.tenants = tenants;
      }
    }
    const point = this.sample(now);
    if (point !== undefined) delta.point = point;
    if (this.#pendingEvents.length > 0) {
      delta.events = this.#pendingEvents;
      this.#pendingEvents = [];
    }
    if (this.#eventsDropped > 0) {
      delta.eventsDropped = this.#eventsDropped;
      this.#eventsDropped = 0;
    }
    return Object.keys(delta).length > 1 ? delta : null;
  }
}
