import type { ClusterSummary, DeltaMessage, FeedEvent, NodeRow, Series, SnapshotMessage, TenantRow } from './api.ts';

/** Parts of the page that may need drawing again. */
export type Part = 'summary' | 'table' | 'tenants' | 'chart' | 'events' | 'detail' | 'lastSeen';

/** Events kept in the page. */
const MAX_EVENTS = 200;

/**
 * The page's state, fed by the SSE stream. Messages only update data and mark parts dirty; drawing happens once per
 * animation frame (render), so a burst of deltas costs one layout, not one per message.
 */
export class Store {
  cluster: ClusterSummary | undefined;
  readonly nodes = new Map<string, NodeRow>();
  tenants: TenantRow[] = [];
  series: Series | undefined;
  /** Newest first. */
  events: FeedEvent[] = [];
  eventsDropped = 0;
  /** server clock - page clock, so ages are computed on the server's time. */
  skewMs = 0;
  /** Node ids whose rows changed in the last message (the detail view refetches when its node is among them). */
  readonly changedNodes = new Set<string>();
  readonly dirty = new Set<Part>();
  #frame = 0;
  #render: (dirty: Set<Part>) => void = () => {};

  onRender(render: (dirty: Set<Part>) => void): void {
    this.#render = render;
  }

  serverNow(): number {
    return Date.now() + this.skewMs;
  }

  mark(...parts: Part[]): void {
    for (const p of parts) this.dirty.add(p);
    if (this.#frame !== 0) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      const dirty = new Set(this.dirty);
      this.dirty.clear();
      this.#render(dirty);
      this.changedNodes.clear();
    });
  }

  #clock(now: number): void {
    this.skewMs = now - Date.now();
  }

  applySnapshot(m: SnapshotMessage): void {
    this.#clock(m.now);
    this.cluster = m.cluster;
    this.nodes.clear();
    for (const n of m.nodes) {
      this.nodes.set(n.nodeId, n);
      this.changedNodes.add(n.nodeId);
    }
    this.tenants = m.tenants;
    this.series = m.series;
    this.events = [...m.events].sort((a, b) => b.seq - a.seq).slice(0, MAX_EVENTS);
    this.mark('summary', 'table', 'tenants', 'chart', 'events', 'detail');
  }

  applyDelta(m: DeltaMessage): void {
    this.#clock(m.now);
    if (m.cluster !== undefined) {
      this.cluster = m.cluster;
      this.mark('summary');
    }
    if (m.nodes !== undefined || m.removed !== undefined) {
      for (const n of m.nodes ?? []) {
        this.nodes.set(n.nodeId, n);
        this.changedNodes.add(n.nodeId);
      }
      for (const id of m.removed ?? []) this.nodes.delete(id);
      this.mark('table', 'detail');
    }
    if (m.seen !== undefined) {
      for (const [id, at] of Object.entries(m.seen)) {
        const n = this.nodes.get(id);
        if (n !== undefined) n.lastSeen = at;
      }
      this.mark('lastSeen');
    }
    if (m.tenants !== undefined) {
      this.tenants = m.tenants;
      this.mark('tenants');
    }
    if (m.point !== undefined && this.series !== undefined) {
      const s = this.series;
      const p = m.point;
      const push = (col: number[], v: number) => {
        col.push(v);
        if (col.length > s.capacity) col.shift();
      };
      push(s.at, p.at);
      push(s.memEffective, p.memEffective);
      push(s.memCommitted, p.memCommitted);
      push(s.memUsed, p.memUsed);
      push(s.cpuEffective, p.cpuEffective);
      push(s.cpuCommitted, p.cpuCommitted);
      push(s.cpuUsed, p.cpuUsed);
      push(s.nodesReady, p.nodesReady);
      this.mark('chart');
    }
    if (m.events !== undefined && m.events.length > 0) {
      // A page that connected between two ticks may get an event both in its snapshot and in the next delta.
      const known = new Set(this.events.map((e) => e.seq));
      const fresh = m.events.filter((e) => !known.has(e.seq));
      this.events = [...fresh.sort((a, b) => b.seq - a.seq), ...this.events].slice(0, MAX_EVENTS);
      this.mark('events');
    }
    if (m.eventsDropped !== undefined) {
      this.eventsDropped += m.eventsDropped;
      this.mark('events');
    }
  }
}
