import type { TenantRow } from './api.ts';
import { el, mib } from './format.ts';
import { bar } from './summary.ts';

/** One limit: use against the quota's maximum (a bar), or the use alone when the tenant has no such limit. */
function limitCell(used: number, max: number | undefined, fmt: (v: number) => string): HTMLElement {
  const td = el('td', 'limit');
  const box = el('div', 'limit-box');
  td.append(box);
  if (max === undefined) {
    box.append(el('span', 'num', fmt(used)), el('span', 'muted', 'no limit'));
    return td;
  }
  const b = bar(used, 0, max);
  if (max > 0 && used / max >= 0.9) b.classList.add('hot');
  box.append(b, el('span', 'num', `${fmt(used)} / ${fmt(max)}`));
  return td;
}

export function renderTenants(root: HTMLElement, tenants: readonly TenantRow[]): void {
  if (tenants.length === 0) {
    root.replaceChildren(el('p', 'muted', 'no tenant has allocations or a quota yet'));
    return;
  }
  const table = el('table', 'tenant-table');
  const hr = el('tr');
  for (const t of ['tenant', 'VMs', 'vCPUs', 'memory', 'nodes', 'quota']) hr.append(el('th', undefined, t));
  table.append(hr);
  const collator = new Intl.Collator('en', { numeric: true });
  for (const t of [...tenants].sort((a, b) => collator.compare(a.tenantId, b.tenantId))) {
    const tr = el('tr');
    tr.dataset['tenant'] = t.tenantId;
    // Against the limits, what the quota service counts is what is enforced; without a quota, what the agents hold.
    const u = t.quotaUsage ?? t.usage;
    const q = t.quota;
    tr.append(
      el('td', 'mono', t.tenantId),
      limitCell(u.vms, q?.maxVms, String),
      limitCell(u.vcpus, q?.maxVcpus, String),
      limitCell(u.memoryMiB, q?.maxMemoryMiB, mib),
      el('td', 'num', String(t.usage.nodes)),
      el(
        'td',
        'muted',
        q === undefined
          ? 'none'
          : [
              q.maxVmsPerNode === undefined ? '' : `≤${q.maxVmsPerNode} VMs/node`,
              q.priority === undefined ? '' : `priority ${q.priority}`,
              ...q.placeRates.map((r) => `${r.count}/${r.per} places`),
            ]
              .filter((x) => x !== '')
              .join(' · ') || 'limits only',
      ),
    );
    table.append(tr);
  }
  root.replaceChildren(table);
}
