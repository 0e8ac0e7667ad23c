import type { ClusterSummary } from './api.ts';
import { el, mib, pct } from './format.ts';

/** A stacked bar: committed and used against the effective capacity (the track). */
export function bar(committed: number, used: number, capacity: number, className = 'bar'): HTMLElement {
  const b = el('div', className);
  const c = el('div', 'committed');
  const u = el('div', 'used');
  b.append(c, u);
  setBar(b, committed, used, capacity);
  return b;
}

export function setBar(b: HTMLElement, committed: number, used: number, capacity: number): void {
  const w = (v: number) => `${capacity > 0 ? Math.min(100, (v / capacity) * 100) : 0}%`;
  (b.children[0] as HTMLElement).style.width = w(committed);
  (b.children[1] as HTMLElement).style.width = w(used);
  b.classList.toggle('full', capacity > 0 && committed >= capacity);
}

function figure(label: string, value: string, note?: string): HTMLElement {
  const f = el('div', 'figure');
  f.append(el('span', 'label', label), el('span', 'value', value));
  if (note !== undefined) f.append(el('span', 'note', note));
  return f;
}

function resourceCard(
  title: string,
  r: ClusterSummary['usage']['memory'],
  overcommit: number,
  fmt: (v: number) => string,
  key: string,
): HTMLElement {
  const card = el('div', 'card');
  card.dataset['card'] = key;
  card.append(el('h3', undefined, title));
  card.append(bar(r.committed, r.used, r.effectiveCapacity, 'bar big'));
  const figs = el('div', 'figures');
  figs.append(
    figure('effective capacity', fmt(r.effectiveCapacity), `physical ${fmt(r.capacity)}`),
    figure('committed', fmt(r.committed), pct(r.committed, r.effectiveCapacity)),
    figure('really used', fmt(r.used), pct(r.used, r.effectiveCapacity)),
    figure('overcommit in use', `${overcommit.toFixed(2)}×`, overcommit > 1 ? 'committed beyond physical' : 'within physical'),
  );
  card.append(figs);
  return card;
}

export function renderSummary(root: HTMLElement, c: ClusterSummary): void {
  const u = c.usage;
  const vcpu = (v: number) => `${v.toLocaleString('en')} vCPU`;
  const nodes = el('div', 'card');
  nodes.dataset['card'] = 'nodes';
  nodes.append(el('h3', undefined, 'Nodes'));
  const counts = el('div', 'figures');
  const count = (label: string, v: number, cls: string) => {
    const f = figure(label, String(v));
    f.dataset['count'] = label;
    if (v > 0) f.classList.add(cls);
    return f;
  };
  counts.append(
    count('total', u.nodes.total, 'plain'),
    count('ready', u.nodes.ready, 'ok'),
    count('suspect', u.nodes.suspect, 'warn'),
    count('lost', u.nodes.lost, 'bad'),
    count('healthy', c.byHealth.healthy, 'ok'),
    count('degraded', c.byHealth.degraded, 'warn'),
    count('unhealthy', c.byHealth.unhealthy, 'bad'),
    count('cordoned', u.nodes.cordoned, 'warn'),
    count('draining', u.nodes.draining ?? 0, 'warn'),
    count('decommissioned', u.nodes.decommissioned ?? 0, 'plain'),
  );
  nodes.append(counts, el('div', 'muted small', `${u.allocationCount} live allocations`));
  root.replaceChildren(
    resourceCard('Memory', u.memory, c.overcommitInUse.memory, mib, 'memory'),
    resourceCard('CPU', u.cpu, c.overcommitInUse.cpu, vcpu, 'cpu'),
    nodes,
  );
}

export function renderHealth(pill: HTMLElement, reasons: HTMLElement, c: ClusterSummary): void {
  pill.textContent = c.health.status;
  pill.dataset['status'] = c.health.status;
  const rs = c.health.status === 'degraded' || c.health.status === 'unhealthy' ? c.health.reasons : [];
  reasons.textContent = rs.slice(0, 2).join(' · ') + (rs.length > 2 ? ` · +${rs.length - 2}` : '');
  reasons.title = rs.join('\n');
}
