import type { z } from 'zod';
import type { QuotaRecountReplySchema, TenantQuotaViewSchema } from '@allot/protocol';
import { renderPairs, renderTable } from '../format/table.ts';
import { formatMiB } from '../format/units.ts';
import { formatRate } from '../parse/rate.ts';

type QuotaView = z.output<typeof TenantQuotaViewSchema>;

function limit(used: string, max: string | undefined): string {
  return max === undefined ? `${used} (no limit)` : `${used} of ${max}`;
}

type HugepageFigures = { '2Mi'?: number | undefined; '1Gi'?: number | undefined } | undefined;

/** Per page size with a limit or a use: `2Mi 400 MiB of 512 MiB; 1Gi 2 GiB (no limit)`. */
function hugepagesLine(max: HugepageFigures, used: HugepageFigures): string {
  const sizes = (['2Mi', '1Gi'] as const).filter((size) => max?.[size] !== undefined || (used?.[size] ?? 0) > 0);
  if (sizes.length === 0) return 'none (no limit)';
  return sizes
    .map((size) => {
      const limitMiB = max?.[size];
      return `${size} ${limit(formatMiB(used?.[size] ?? 0), limitMiB === undefined ? undefined : formatMiB(limitMiB))}`;
    })
    .join('; ');
}

/** `allot quotas get|set`: each limit beside what the tenant uses now. */
export function renderQuota(view: QuotaView): string {
  const q = view.quota;
  const u = view.usage;
  return renderPairs([
    ['tenant', q.tenantId],
    ['vms', limit(String(u.vms), q.maxVms?.toString())],
    ['vcpus', limit(String(u.vcpus), q.maxVcpus?.toString())],
    ['memory', limit(formatMiB(u.memoryMiB), q.maxMemoryMiB === undefined ? undefined : formatMiB(q.maxMemoryMiB))],
    ['hugepages', hugepagesLine(q.maxHugepagesMiB, u.hugepagesMiB)],
    ['vms per node', q.maxVmsPerNode === undefined ? 'no limit' : String(q.maxVmsPerNode)],
    ['priority', q.priority === undefined ? 'default' : String(q.priority)],
    ['place rate', q.placeRates.length === 0 ? 'no limit' : q.placeRates.map(formatRate).join(', ')],
    ['release rate', q.releaseRates.length === 0 ? 'no limit' : q.releaseRates.map(formatRate).join(', ')],
  ]);
}

type RecountView = z.output<typeof QuotaRecountReplySchema>;

/** `allot quotas recount`: each counter before and after the rebuild, marking those the recount corrected. */
export function renderRecount(view: RecountView): string {
  const row = (name: string, show: (c: RecountView['after']) => string): [string, string] => {
    const after = show(view.after);
    if (view.before === null) return [name, `${after} (no usage record before)`];
    const before = show(view.before);
    return [name, before === after ? `${after} (unchanged)` : `${before} -> ${after}`];
  };
  return renderPairs([
    ['tenant', view.tenantId],
    row('vms', (c) => String(c.vms)),
    row('vcpus', (c) => String(c.vcpus)),
    row('memory', (c) => formatMiB(c.memoryMiB)),
  ]);
}

interface ReportEntry {
  index?: unknown;
  tenantId?: unknown;
  outcome?: unknown;
  reason?: { code?: unknown; field?: unknown; message?: unknown };
  changedFields?: unknown;
  warnings?: { field?: unknown; message?: unknown }[];
}

/**
 * The migration report, as @allot/quota's migrateLegacyQuotas writes it (entries, totals, completionPercent). The
 * contract types it loosely (a record), so anything unexpected is shown as JSON rather than dropped.
 */
export function renderImportReport(report: Record<string, unknown>): string {
  const entries = Array.isArray(report['entries']) ? (report['entries'] as ReportEntry[]) : undefined;
  if (!entries) return JSON.stringify(report, null, 2);
  const rows = entries.map((e) => {
    const detail =
      e.outcome === 'skipped' && e.reason
        ? `${String(e.reason.code)}: ${String(e.reason.field)}: ${String(e.reason.message)}`
        : Array.isArray(e.changedFields) && e.changedFields.length > 0
          ? `changed ${e.changedFields.join(', ')}`
          : '';
    return [String(e.index ?? ''), String(e.tenantId ?? '-'), String(e.outcome ?? '?'), detail];
  });
  const lines = [renderTable([{ header: '#', align: 'right' }, { header: 'TENANT' }, { header: 'OUTCOME' }, { header: 'DETAIL' }], rows)];
  const warnings = entries.flatMap((e) =>
    (e.warnings ?? []).map((w) => `  ${String(e.tenantId ?? `#${String(e.index)}`)}: ${String(w.field)}: ${String(w.message)}`),
  );
  if (warnings.length > 0) lines.push('', 'warnings:', ...warnings);
  const totals = report['totals'];
  if (totals !== null && typeof totals === 'object') {
    lines.push(
      '',
      `totals: ${Object.entries(totals)
        .map(([k, n]) => `${String(n)} ${k}`)
        .join(', ')}`,
    );
  }
  if (typeof report['completionPercent'] === 'number') lines.push(`complete: ${report['completionPercent']}%`);
  return lines.join('\n');
}
