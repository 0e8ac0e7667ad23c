import type { NodeRow } from './api.ts';
import { ago, el, mib, mibTriple } from './format.ts';
import { bar, setBar } from './summary.ts';

/** Pixel height of one row: fixed, so the visible window is arithmetic and scrolling never measures the DOM. */
export const ROW_HEIGHT = 30;
/** Rows drawn above and below the visible window, so a fast scroll does not flash empty space. */
const OVERSCAN = 8;

type SortKey = 'node' | 'status' | 'memory' | 'cpu' | 'allocs' | 'seen';

interface Column {
  readonly key: SortKey | 'labels' | 'cordon' | 'taints';
  readonly title: string;
  readonly sortable: boolean;
}

const COLUMNS: readonly Column[] = [
  { key: 'node', title: 'Node', sortable: true },
  { key: 'status', title: 'Health', sortable: true },
  { key: 'memory', title: 'Memory used / committed / effective', sortable: true },
  { key: 'cpu', title: 'vCPU used / committed / effective', sortable: true },
  { key: 'allocs', title: 'VMs', sortable: true },
  { key: 'cordon', title: 'Cordon', sortable: false },
  { key: 'taints', title: 'Taints', sortable: false },
  { key: 'labels', title: 'Labels', sortable: false },
  { key: 'seen', title: 'Last seen', sortable: true },
];

const HEALTH_RANK: Record<string, number> = { healthy: 0, degraded: 1, unhealthy: 2, stopped: 3 };
const LIVENESS_RANK: Record<string, number> = { ready: 0, suspect: 10, lost: 20 };
/** Operator states the filter knows besides liveness (decommissioned ranks last: the operator's, not a fault). */
const OPERATOR_RANK: Record<string, number> = { draining: 0.5, decommissioned: 30 };

/**
 * What a row shows as its state: decommissioned first (the operator's word), then liveness (a silent node's health is
 * stale), then its own health, then draining (cordoned) for a healthy node.
 */
export function stateOf(
  n: Pick<NodeRow, 'liveness' | 'lastSeen' | 'health'> & { state?: NodeRow['state'] },
  now: number,
): { label: string; cls: string; reason: string } {
  if (n.state === 'decommissioned')
    return { label: 'decommissioned', cls: 'plain', reason: 'out for good; shown until nothing of it remains' };
  if (n.liveness !== 'ready')
    return {
      label: n.liveness,
      cls: n.liveness === 'lost' ? 'bad' : 'warn',
      reason: `silent since ${ago(now - n.lastSeen).replace(' ago', '')}`,
    };
  const h = n.health;
  if (h.status === 'healthy' && n.state === 'draining') return { label: 'draining', cls: 'warn', reason: 'cordoned: takes nothing new' };
  if (h.status === 'healthy') return { label: 'healthy', cls: 'ok', reason: '' };
  if (h.status === 'stopped') return { label: 'stopped', cls: 'bad', reason: 'agent stopped' };
  return { label: h.status, cls: h.status === 'degraded' ? 'warn' : 'bad', reason: h.reasons.join('; ') };
}

export interface Filter {
  /** `k=v`, `k` (has the label), or text matched against the node id and label values. */
  label: string;
  /** A health status, a liveness, or `cordoned`. */
  state: string;
  tenant: string;
}

function matches(n: NodeRow, f: Filter): boolean {
  if (f.tenant !== '' && !n.tenants.includes(f.tenant)) return false;
  if (f.state !== '') {
    if (f.state === 'cordoned') {
      if (!n.cordoned) return false;
    } else if (f.state in OPERATOR_RANK) {
      if (n.state !== f.state) return false;
    } else if (f.state in LIVENESS_RANK) {
      if (n.liveness !== f.state) return false;
    } else if (n.health.status !== f.state) return false;
  }
  const q = f.label.trim();
  if (q === '') return true;
  return q.split(/[,\s]+/).every((term) => {
    if (term === '') return true;
    const i = term.indexOf('=');
    if (i !== -1) return n.labels[term.slice(0, i)] === term.slice(i + 1);
    if (term in n.labels) return true;
    const t = term.toLowerCase();
    return n.nodeId.toLowerCase().includes(t) || Object.values(n.labels).some((v) => v.toLowerCase().includes(t));
  });
}

function sortValue(n: NodeRow, key: SortKey): number | string {
  switch (key) {
    case 'node':
      return n.nodeId;
    case 'status':
      return n.state === 'decommissioned'
        ? (OPERATOR_RANK['decommissioned'] ?? 30)
        : (LIVENESS_RANK[n.liveness] ?? 0) + (HEALTH_RANK[n.health.status] ?? 0) + (n.cordoned ? 0.5 : 0);
    case 'memory':
      return n.memory.effectiveCapacity > 0 ? n.memory.committed / n.memory.effectiveCapacity : 0;
    case 'cpu':
      return n.cpu.effectiveCapacity > 0 ? n.cpu.committed / n.cpu.effectiveCapacity : 0;
    case 'allocs':
      return n.allocationCount;
    case 'seen':
      return n.lastSeen;
  }
}

interface RowEls {
  root: HTMLElement;
  node: HTMLElement;
  state: HTMLElement;
  memBar: HTMLElement;
  memText: HTMLElement;
  cpuBar: HTMLElement;
  cpuText: HTMLElement;
  allocs: HTMLElement;
  cordon: HTMLElement;
  taints: HTMLElement;
  labels: HTMLElement;
  seen: HTMLElement;
  /** The row object drawn last, so an unchanged row costs nothing. */
  drawn: NodeRow | undefined;
  /** Its translateY as last set. */
  top: number;
}

/**
 * The node table, virtualised: the viewport scrolls a spacer as tall as all rows, and only the rows in view (plus
 * OVERSCAN) exist in the DOM, absolutely positioned. Row elements are pooled and reused, so 1,000 nodes or 10,000
 * cost the same ~40 rows of DOM. Filtering and sorting are recomputed only when the data or the criteria change.
 */
export class NodeTable {
  readonly #viewport: HTMLElement;
  readonly #spacer: HTMLElement;
  readonly #head: HTMLElement;
  readonly #pool: RowEls[] = [];
  readonly #onSelect: (nodeId: string) => void;
  #rows: NodeRow[] = [];
  #sort: { key: SortKey; dir: 1 | -1 } = { key: 'node', dir: 1 };
  #filter: Filter = { label: '', state: '', tenant: '' };
  #selected: string | undefined;
  #all: Map<string, NodeRow> = new Map();
  /** Where each shown row is in #rows (built by update()). */
  #pos = new Map<string, number>();
  /**
   * The viewport's scroll offset (from its scroll events) and height (set by update()): draw() reads no layout, so a
   * redraw after other parts of the page changed does not force the browser to lay the page out first.
   */
  #scrollTop = 0;
  #height = 600;
  #now: () => number = Date.now;
  onCount: (shown: number, total: number) => void = () => {};

  constructor(head: HTMLElement, viewport: HTMLElement, spacer: HTMLElement, onSelect: (nodeId: string) => void, requestDraw: () => void) {
    this.#head = head;
    this.#viewport = viewport;
    this.#spacer = spacer;
    this.#onSelect = onSelect;
    for (const c of COLUMNS) {
      const h = el('div', `cell c-${c.key}`, c.title);
      h.setAttribute('role', 'columnheader');
      if (c.sortable) {
        h.classList.add('sortable');
        h.tabIndex = 0;
        h.addEventListener('click', () => {
          this.#sort =
            this.#sort.key === c.key
              ? { key: c.key as SortKey, dir: this.#sort.dir === 1 ? -1 : 1 }
              : { key: c.key as SortKey, dir: c.key === 'node' ? 1 : -1 };
          this.update();
          requestDraw();
        });
      }
      h.dataset['col'] = c.key;
      head.append(h);
    }
    this.#markSort();
    viewport.addEventListener(
      'scroll',
      () => {
        this.#scrollTop = viewport.scrollTop;
        requestDraw();
      },
      { passive: true },
    );
    viewport.addEventListener('click', (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('.row[data-node-id]');
      if (row?.dataset['nodeId'] !== undefined) this.#onSelect(row.dataset['nodeId']);
    });
  }

  setData(all: Map<string, NodeRow>, now: () => number): void {
    this.#all = all;
    this.#now = now;
  }

  setFilter(f: Filter): void {
    this.#filter = f;
  }

  setSelected(nodeId: string | undefined): void {
    this.#selected = nodeId;
  }

  /** Re-filters and re-sorts (O(n log n)); call when the data or the criteria changed. */
  update(): void {
    const f = this.#filter;
    const rows: NodeRow[] = [];
    for (const n of this.#all.values()) if (matches(n, f)) rows.push(n);
    const { key, dir } = this.#sort;
    // Each row's sort value once, not twice per comparison (10,000 rows: ~130,000 comparisons).
    const keyed = rows.map((n) => ({ n, v: sortValue(n, key) }));
    keyed.sort((a, b) => (a.v < b.v ? -dir : a.v > b.v ? dir : a.n.nodeId < b.n.nodeId ? -1 : 1));
    for (let i = 0; i < keyed.length; i++) rows[i] = (keyed[i] as { n: NodeRow }).n;
    this.#rows = rows;
    this.#pos = new Map(rows.map((n, i) => [n.nodeId, i]));
    this.#spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    // As tall as the rows up to 16 of them, then it scrolls.
    this.#height = Math.max(3, Math.min(rows.length, 16)) * ROW_HEIGHT;
    this.#viewport.style.height = `${this.#height}px`;
    // The browser clamps the offset to the shorter list (and says so in a scroll event): draw the clamped window now.
    this.#scrollTop = Math.min(this.#scrollTop, Math.max(0, rows.length * ROW_HEIGHT - this.#height));
    this.#markSort();
    this.onCount(rows.length, this.#all.size);
  }

  /**
   * Puts changed rows in place where neither their order nor the filter's verdict moved: O(changed), no pass over
   * every row and no sort, which is what a delta usually is. False when update() is needed (a node came or left, or a
   * row moved in the order or in or out of the filter); rows already put in place stay, update() redoes them anyway.
   */
  replace(nodeIds: Iterable<string>): boolean {
    const key = this.#sort.key;
    for (const id of nodeIds) {
      const n = this.#all.get(id);
      const i = this.#pos.get(id);
      if (i === undefined) {
        if (n === undefined || !matches(n, this.#filter)) continue;
        return false;
      }
      const old = this.#rows[i];
      if (n === undefined || old === undefined || !matches(n, this.#filter) || sortValue(old, key) !== sortValue(n, key)) return false;
      this.#rows[i] = n;
    }
    return true;
  }

  /** Draws the rows in view; `force` redraws rows even if their data object is unchanged (ages, selection). */
  draw(force = false): void {
    const top = this.#scrollTop;
    const height = this.#height;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.#rows.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const needed = last - first;
    while (this.#pool.length < needed) this.#pool.push(this.#makeRow());
    for (let i = 0; i < this.#pool.length; i++) {
      const r = this.#pool[i] as RowEls;
      const n = this.#rows[first + i];
      if (i >= needed || n === undefined) {
        if (r.root.parentNode !== null) r.root.remove();
        r.drawn = undefined;
        continue;
      }
      if (r.root.parentNode === null) this.#spacer.append(r.root);
      const y = (first + i) * ROW_HEIGHT;
      if (r.top !== y) {
        r.top = y;
        r.root.style.transform = `translateY(${y}px)`;
      }
      if (force || r.drawn !== n) this.#fill(r, n);
      r.root.classList.toggle('selected', n.nodeId === this.#selected);
    }
  }

  #markSort(): void {
    for (const h of this.#head.children) {
      const e = h as HTMLElement;
      e.classList.toggle('sorted', e.dataset['col'] === this.#sort.key);
      e.dataset['dir'] = e.dataset['col'] === this.#sort.key ? (this.#sort.dir === 1 ? 'asc' : 'desc') : '';
    }
  }

  #makeRow(): RowEls {
    const root = el('div', 'row');
    root.setAttribute('role', 'row');
    const cell = (key: string) => {
      const c = el('div', `cell c-${key}`);
      root.append(c);
      return c;
    };
    const node = cell('node');
    const state = cell('status');
    const mem = cell('memory');
    const memBar = bar(0, 0, 1);
    const memText = el('span', 'num');
    mem.append(memBar, memText);
    const cpu = cell('cpu');
    const cpuBar = bar(0, 0, 1);
    const cpuText = el('span', 'num');
    cpu.append(cpuBar, cpuText);
    const allocs = cell('allocs');
    const cordon = cell('cordon');
    const taints = cell('taints');
    const labels = cell('labels');
    const seen = cell('seen');
    return { root, node, state, memBar, memText, cpuBar, cpuText, allocs, cordon, taints, labels, seen, drawn: undefined, top: -1 };
  }

  #fill(r: RowEls, n: NodeRow): void {
    r.drawn = n;
    r.root.dataset['nodeId'] = n.nodeId;
    r.root.dataset['liveness'] = n.liveness;
    r.root.dataset['state'] = n.state ?? n.liveness;
    r.root.dataset['health'] = n.health.status;
    r.node.textContent = n.nodeId;
    const s = stateOf(n, this.#now());
    r.state.textContent = '';
    const pill = el('span', `pill ${s.cls}`, s.label);
    r.state.append(pill);
    if (s.reason !== '') r.state.append(el('span', 'reason', s.reason));
    r.state.title = s.reason;
    setBar(r.memBar, n.memory.committed, n.memory.used, n.memory.effectiveCapacity);
    r.memText.textContent = mibTriple(n.memory.used, n.memory.committed, n.memory.effectiveCapacity);
    r.memText.title = `used ${mib(n.memory.used)} · committed ${mib(n.memory.committed)} · effective capacity ${mib(n.memory.effectiveCapacity)} (physical ${mib(n.memory.capacity)})`;
    setBar(r.cpuBar, n.cpu.committed, n.cpu.used, n.cpu.effectiveCapacity);
    r.cpuText.textContent = `${n.cpu.used} / ${n.cpu.committed} / ${n.cpu.effectiveCapacity}`;
    r.cpuText.title = `used ${n.cpu.used} · committed ${n.cpu.committed} · effective ${n.cpu.effectiveCapacity} vCPU on ${n.cpu.cores} cores (${n.cpu.exclusiveCores} exclusive, ${n.cpu.reservedCores} reserved)`;
    r.allocs.textContent = String(n.allocationCount);
    r.cordon.textContent = n.cordoned ? 'cordoned' : '';
    r.cordon.className = `cell c-cordon${n.cordoned ? ' warn' : ''}`;
    this.#fillTaints(r, n);
    const labels = Object.entries(n.labels).map(([k, v]) => `${k}=${v}`);
    r.labels.textContent = labels.join(' ');
    r.labels.title = labels.join('\n');
    this.#fillSeen(r, n);
  }

  /** Each taint as kube writes it (key=value:effect), the operator's reason on hover; the cell's title lists them all. */
  #fillTaints(r: RowEls, n: NodeRow): void {
    r.taints.textContent = '';
    const lines: string[] = [];
    for (const t of n.taints ?? []) {
      const text = `${t.key}${t.value === '' ? '' : `=${t.value}`}:${t.effect}`;
      const chip = el('span', 'taint', text);
      chip.dataset['taint'] = t.key;
      if (t.reason !== undefined && t.reason !== '') chip.title = t.reason;
      r.taints.append(chip);
      lines.push(t.reason === undefined || t.reason === '' ? text : `${text} (${t.reason})`);
    }
    r.taints.title = lines.join('\n');
  }

  #fillSeen(r: RowEls, n: NodeRow): void {
    const text = ago(this.#now() - n.lastSeen);
    if (r.seen.textContent !== text) r.seen.textContent = text;
  }

  /** Only the ages (every second, and after heartbeats that changed nothing else). */
  drawAges(): void {
    for (const r of this.#pool) if (r.drawn !== undefined) this.#fillSeen(r, r.drawn);
  }
}
