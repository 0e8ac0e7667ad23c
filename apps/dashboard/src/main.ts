import './style.css';
import { connectStream } from './api.ts';
import { UtilizationChart } from './chart.ts';
import { NodeDetail } from './detail.ts';
import { renderEvents } from './events.ts';
import { followMoves } from './moves.ts';
import { Store, type Part } from './store.ts';
import { renderHealth, renderSummary } from './summary.ts';
import { NodeTable } from './table.ts';
import { renderTenants } from './tenants.ts';

/*
 * The dashboard page: one SSE stream feeds the store; the store marks what changed; one render per animation frame
 * draws only those parts. No framework: a table of 1,000 virtualised rows, a few cards, a chart and two lists.
 */

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`#${id} missing from index.html`);
  return e as T;
}

const store = new Store();
const now = () => store.serverNow();
const banner = byId('banner');
const conn = byId('conn');
const labelInput = byId<HTMLInputElement>('f-label');
const stateSelect = byId<HTMLSelectElement>('f-health');
const tenantSelect = byId<HTMLSelectElement>('f-tenant');
const chart = new UtilizationChart(byId('chart'));
const detail = new NodeDetail(byId('detail'), now);

const selectFromHash = () => {
  const m = /^#node=([A-Za-z0-9_-]+)$/.exec(location.hash);
  const id = m?.[1];
  table.setSelected(id);
  detail.show(id);
  store.mark('table');
};
const table = new NodeTable(
  byId('thead'),
  byId('viewport'),
  byId('spacer'),
  (id) => (location.hash = `node=${id}`),
  () => store.mark('table'),
);
table.setData(store.nodes, now);
table.onCount = (shown, total) => (byId('node-count').textContent = shown === total ? `${total}` : `${shown} of ${total}`);

const readFilter = () => {
  table.setFilter({ label: labelInput.value, state: stateSelect.value, tenant: tenantSelect.value });
  needsUpdate = true;
  store.mark('table');
};
labelInput.addEventListener('input', readFilter);
stateSelect.addEventListener('change', readFilter);
tenantSelect.addEventListener('change', readFilter);
window.addEventListener('hashchange', selectFromHash);

/** Table rows need re-filtering and sorting (a snapshot, or the criteria changed), not just a redraw after a scroll. */
let needsUpdate = true;
/** Nodes whose rows changed or left since the last render: put in place (O(changed)) unless the order moved. */
const changedIds = new Set<string>();

/** The tenant ids the filter offers, as last set. */
let tenantOptions = '';
function syncTenantOptions(): void {
  const ids = store.tenants.map((t) => t.tenantId);
  if (ids.join('\n') === tenantOptions) return;
  tenantOptions = ids.join('\n');
  const current = tenantSelect.value;
  tenantSelect.replaceChildren(tenantSelect.options[0] as HTMLOptionElement, ...ids.map((id) => new Option(id, id)));
  tenantSelect.value = ids.includes(current) ? current : '';
}

store.onRender((dirty: Set<Part>) => {
  const t0 = performance.now();
  const c = store.cluster;
  if (dirty.has('summary') && c !== undefined) {
    renderSummary(byId('summary'), c);
    renderHealth(byId('cluster-health'), byId('cluster-reasons'), c);
  }
  if (dirty.has('table')) {
    if (needsUpdate || (changedIds.size > 0 && !table.replace(changedIds))) {
      table.update();
      needsUpdate = false;
    }
    changedIds.clear();
    table.draw();
  } else if (dirty.has('lastSeen')) table.drawAges();
  if (dirty.has('detail') && detail.nodeId !== undefined && store.changedNodes.has(detail.nodeId)) detail.changed();
  if (dirty.has('tenants')) {
    renderTenants(byId('tenants'), store.tenants);
    syncTenantOptions();
  }
  if (dirty.has('chart') && store.series !== undefined) chart.update(store.series);
  if (dirty.has('events')) renderEvents(byId('events'), byId('events-count'), store.events, store.eventsDropped);
  if (document.body.dataset['ready'] !== '1' && store.cluster !== undefined) {
    document.body.dataset['ready'] = '1';
    stats.firstRenderMs = Math.round(performance.now());
  }
  stats.frames += 1;
  stats.lastRenderMs = performance.now() - t0;
});

/** Figures the browser tests read (window.__allot). */
const stats = { snapshots: 0, deltas: 0, frames: 0, lastRenderMs: 0, invalid: 0, firstRenderMs: 0 };
(window as unknown as { __allot: typeof stats }).__allot = stats;

const moves = followMoves(byId('moves'), byId('moves-count'));

connectStream({
  snapshot(m) {
    stats.snapshots += 1;
    needsUpdate = true;
    store.applySnapshot(m);
    banner.hidden = true;
  },
  delta(m) {
    stats.deltas += 1;
    for (const n of m.nodes ?? []) changedIds.add(n.nodeId);
    for (const id of m.removed ?? []) changedIds.add(id);
    store.applyDelta(m);
    if (m.events?.some((e) => e.kind.startsWith('move_')) === true) moves.refresh();
  },
  heartbeat() {
    conn.textContent = 'live';
  },
  state(s) {
    conn.dataset['state'] = s;
    conn.textContent = s === 'live' ? 'live' : 'reconnecting…';
  },
  invalid(event, message) {
    stats.invalid += 1;
    banner.hidden = false;
    banner.textContent = `The coordinator sent a ${event} this page does not understand (${message}). Reload after upgrading.`;
    console.error(`allot dashboard: invalid ${event}: ${message}`);
  },
});

// Ages ("3 s ago") move on without any message.
setInterval(() => store.mark('lastSeen'), 1_000);
selectFromHash();
