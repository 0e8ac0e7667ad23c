import type { Allocation, CoreState, NodeView } from '@allot/core';
import { ApiError, fetchAllocations, fetchNode, type AllocationsResponse } from './api.ts';
import { ago, clock, coreList, el, hueOf, mib, pct } from './format.ts';
import { stateOf } from './table.ts';

/**
 * One node in detail: its figures, a per-core heatmap grouped by NUMA node (shared pool shaded by real utilization,
 * exclusive cores coloured by the allocation that holds them, reserved cores hatched), and its live allocations,
 * fetched on demand from the agent through the coordinator.
 */
export class NodeDetail {
  readonly #root: HTMLElement;
  readonly #now: () => number;
  #nodeId: string | undefined;
  #view: NodeView | undefined;
  #allocations: AllocationsResponse | undefined;
  #allocError: string | undefined;
  #nodeAbort: AbortController | undefined;
  #lastNodeFetch = 0;
  #pending: ReturnType<typeof setTimeout> | undefined;
  #allocSeq: string | undefined;

  constructor(root: HTMLElement, now: () => number) {
    this.#root = root;
    this.#now = now;
  }

  get nodeId(): string | undefined {
    return this.#nodeId;
  }

  show(nodeId: string | undefined): void {
    if (nodeId === this.#nodeId) return;
    this.#nodeId = nodeId;
    this.#view = undefined;
    this.#allocations = undefined;
    this.#allocError = undefined;
    this.#allocSeq = undefined;
    this.#root.dataset['node'] = nodeId ?? '';
    if (nodeId === undefined) {
      this.#root.replaceChildren(el('p', 'muted', 'Select a node to see its cores and allocations.'));
      return;
    }
    this.#root.replaceChildren(el('h2', undefined, nodeId), el('p', 'muted', 'loading…'));
    void this.refresh();
  }

  /** The node's row changed: fetch its full view again (at most twice a second). */
  changed(): void {
    if (this.#nodeId === undefined || this.#pending !== undefined) return;
    const wait = Math.max(0, 500 - (performance.now() - this.#lastNodeFetch));
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      void this.refresh();
    }, wait);
  }

  async refresh(): Promise<void> {
    const nodeId = this.#nodeId;
    if (nodeId === undefined) return;
    this.#nodeAbort?.abort();
    const abort = new AbortController();
    this.#nodeAbort = abort;
    this.#lastNodeFetch = performance.now();
    try {
      const r = await fetchNode(nodeId, abort.signal);
      if (this.#nodeId !== nodeId) return;
      this.#view = r.node;
      // Allocations follow the node's ledger: fetched again when its sequence (or boot) moved.
      const seqKey = `${r.node.snapshot.bootId}:${r.node.snapshot.seq}`;
      if (seqKey !== this.#allocSeq) {
        this.#allocSeq = seqKey;
        void this.loadAllocations();
      }
      this.draw();
    } catch (e) {
      if (abort.signal.aborted || this.#nodeId !== nodeId) return;
      this.#root.replaceChildren(
        el('h2', undefined, nodeId),
        el('p', 'error', e instanceof ApiError && e.status === 404 ? 'this node is not in the cluster view' : (e as Error).message),
      );
    }
  }

  async loadAllocations(): Promise<void> {
    const nodeId = this.#nodeId;
    if (nodeId === undefined) return;
    try {
      const r = await fetchAllocations(nodeId);
      if (this.#nodeId !== nodeId) return;
      this.#allocations = r;
      this.#allocError = undefined;
    } catch (e) {
      if (this.#nodeId !== nodeId) return;
      this.#allocError = (e as Error).message;
    }
    this.draw();
  }

  draw(): void {
    const v = this.#view;
    if (v === undefined) return;
    const s = v.snapshot;
    const now = this.#now();
    const head = el('div', 'detail-head');
    const title = el('h2', undefined, v.nodeId);
    const state = stateOf(
      { liveness: v.liveness, lastSeen: v.lastSeen, health: s.health, ...(v.state === undefined ? {} : { state: v.state }) },
      now,
    );
    head.append(title, el('span', `pill ${state.cls}`, state.label));
    if (s.cordoned) head.append(el('span', 'pill warn', 'cordoned'));
    const close = el('button', 'close', '×');
    close.title = 'close';
    close.addEventListener('click', () => (location.hash = ''));
    head.append(close);

    const meta = el('div', 'meta');
    const reasons = s.health.status === 'degraded' || s.health.status === 'unhealthy' ? s.health.reasons : [];
    meta.append(
      el(
        'div',
        undefined,
        `memory ${mib(s.memory.used)} used · ${mib(s.memory.committed)} committed (${pct(s.memory.committed, s.memory.effectiveCapacity)}) of ${mib(s.memory.effectiveCapacity)}`,
      ),
      el(
        'div',
        undefined,
        `vCPU ${s.cpu.used} used · ${s.cpu.committed} committed of ${s.cpu.effectiveCapacity} · shared pool ${s.cpu.sharedVcpusCommitted}/${s.cpu.sharedVcpusCapacity} on ${s.cpu.sharedCores} cores · ${s.cpu.exclusiveCores} exclusive · ${s.cpu.reservedCores} reserved`,
      ),
      el(
        'div',
        'muted',
        `seen ${ago(now - v.lastSeen)} · seq ${s.seq} · boot ${s.bootId.slice(0, 8)} · overcommit mem ${s.overcommit.memory}× cpu ${s.overcommit.cpu}×`,
      ),
    );
    if (Object.keys(s.labels).length > 0)
      meta.append(
        el(
          'div',
          'muted',
          Object.entries(s.labels)
            .map(([k, val]) => `${k}=${val}`)
            .join(' '),
        ),
      );
    for (const r of reasons) meta.append(el('div', 'reason-line', r));

    const allocById = new Map<string, Allocation>((this.#allocations?.allocations ?? []).map((a) => [a.id, a]));
    this.#root.replaceChildren(head, meta, heatmap(s.cpu.cores, allocById), this.#allocationTable());
  }

  #allocationTable(): HTMLElement {
    const box = el('div', 'allocations');
    const h = el('h3', undefined, 'Allocations ');
    const refresh = el('button', 'link', 'refresh');
    refresh.addEventListener('click', () => void this.loadAllocations());
    h.append(refresh);
    box.append(h);
    if (this.#allocError !== undefined) {
      box.append(el('p', 'error', `cannot list: ${this.#allocError}`));
      return box;
    }
    const a = this.#allocations;
    if (a === undefined) {
      box.append(el('p', 'muted', 'asking the agent…'));
      return box;
    }
    if (a.allocations.length === 0) {
      box.append(el('p', 'muted', 'no live allocation'));
      return box;
    }
    const table = el('table', 'alloc-table');
    const hr = el('tr');
    for (const t of ['allocation', 'tenant', 'memory', 'vCPU', 'cores', 'status', 'since']) hr.append(el('th', undefined, t));
    table.append(hr);
    const sorted = [...a.allocations].sort((x, y) => y.createdAt - x.createdAt);
    for (const al of sorted.slice(0, 500)) {
      const tr = el('tr');
      tr.dataset['allocationId'] = al.id;
      const id = el('td', 'mono', al.id.length > 22 ? `${al.id.slice(0, 20)}…` : al.id);
      id.title = `${al.id}\nrequest ${al.requestId}`;
      if (al.cpu?.mode === 'exclusive') id.style.borderLeft = `4px solid hsl(${hueOf(al.id)} 65% 50%)`;
      const cores = al.cpu === null ? '–' : `${al.cpu.mode === 'exclusive' ? 'exclusive ' : 'shared '}${coreList(al.cpu.cpuset)}`;
      tr.append(
        id,
        el('td', undefined, al.tenantId),
        el('td', 'num', mib(al.granted.memoryMiB)),
        el('td', 'num', String(al.granted.vcpus)),
        el('td', 'mono', cores),
        el('td', undefined, al.status),
        el('td', 'muted', clock(al.createdAt)),
      );
      table.append(tr);
    }
    box.append(table);
    if (a.truncated || a.allocations.length > 500)
      box.append(el('p', 'muted', `showing 500 of ${a.allocations.length}${a.truncated ? '+' : ''}`));
    return box;
  }
}

/** The per-core heatmap: one block per NUMA node, one cell per logical core. */
export function heatmap(cores: readonly CoreState[], allocations: Map<string, Allocation>): HTMLElement {
  const wrap = el('div', 'heatmap');
  const byNuma = new Map<number, CoreState[]>();
  for (const c of cores) {
    let list = byNuma.get(c.numa);
    if (list === undefined) byNuma.set(c.numa, (list = []));
    list.push(c);
  }
  const exclusive = new Map<string, number[]>();
  for (const numa of [...byNuma.keys()].sort((a, b) => a - b)) {
    const group = el('div', 'numa');
    const list = byNuma.get(numa) as CoreState[];
    const sockets = [...new Set(list.map((c) => c.socket))].join(',');
    group.append(el('div', 'numa-title', `NUMA ${numa} · socket ${sockets} · ${list.length} cores`));
    const grid = el('div', 'cores');
    for (const c of list.sort((a, b) => a.id - b.id)) {
      const cell = el('div', `core ${c.role}`);
      cell.dataset['core'] = String(c.id);
      cell.dataset['role'] = c.role;
      const util = c.utilizationPermille / 10;
      let tip = `core ${c.id} (physical ${c.core}, NUMA ${c.numa}, socket ${c.socket})\n${c.role} · ${util.toFixed(0)}% busy`;
      if (c.role === 'shared') {
        cell.style.background = `hsl(205 70% ${92 - util * 0.5}%)`;
        if (util > 60) cell.style.color = '#fff';
      } else if (c.role === 'exclusive' && c.allocationId !== undefined) {
        cell.dataset['alloc'] = c.allocationId;
        const hue = hueOf(c.allocationId);
        cell.style.background = `hsl(${hue} 65% 50%)`;
        cell.style.color = '#fff';
        const a = allocations.get(c.allocationId);
        tip += `\nheld by ${c.allocationId}${a === undefined ? '' : ` (tenant ${a.tenantId})`}`;
        let held = exclusive.get(c.allocationId);
        if (held === undefined) exclusive.set(c.allocationId, (held = []));
        held.push(c.id);
      }
      cell.title = tip;
      cell.append(el('span', 'id', String(c.id)));
      const u = el('span', 'util');
      u.style.width = `${util}%`;
      cell.append(u);
      grid.append(cell);
    }
    group.append(grid);
    wrap.append(group);
  }
  const legend = el('div', 'legend');
  legend.append(el('span', 'key shared', 'shared pool (shade = busy)'), el('span', 'key reserved', 'reserved for the host'));
  for (const [id, held] of exclusive) {
    const k = el('span', 'key excl');
    const sw = el('i', 'swatch');
    sw.style.background = `hsl(${hueOf(id)} 65% 50%)`;
    const a = allocations.get(id);
    k.append(
      sw,
      document.createTextNode(
        `${id.length > 18 ? `${id.slice(0, 16)}…` : id}${a === undefined ? '' : ` · ${a.tenantId}`} · cores ${coreList(held)}`,
      ),
    );
    k.title = id;
    k.dataset['alloc'] = id;
    legend.append(k);
  }
  wrap.append(legend);
  return wrap;
}
