import type { Allocation } from '@allot/core';
import type { AuditReply, EvacuateReply, Move } from '@allot/protocol';
import { renderTable, type Column } from '../format/table.ts';
import { formatAge, formatMiB } from '../format/units.ts';

/** Lists of allocations, moves and discrepancies as kubectl-style tables: one row each, columns aligned. */

export interface ListOptions {
  /** The clock for AGE. */
  readonly now: number;
  /** How many there are in all, when the reply lists only the first ones. */
  readonly total?: number;
  /** `-o wide`: priority, NUMA nodes and the reservation's expiry too. */
  readonly wide?: boolean;
}

/** Core ids as ranges: `0-3,8,10-11`. */
export function formatCpuset(ids: readonly number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.length === 0 ? '-' : parts.join(',');
}

/** kubectl's AGE: `45s`, `3m`, `2h`, `5d`. */
function age(ms: number): string {
  return formatAge(ms).replace(/ ago$/, '');
}

/** The line under a list the reply cut short. */
function notShown(listed: number, total: number | undefined, what: string): string[] {
  return total !== undefined && total > listed ? [`... and ${total - listed} more ${what} not shown (${listed} of ${total} listed)`] : [];
}

/** One row per allocation; CPUS (the pinned cores) only when one of them is exclusive. */
export function renderAllocationTable(allocations: readonly Allocation[], o: ListOptions): string {
  const pinned = allocations.some((a) => a.cpu?.mode === 'exclusive');
  const columns: Column[] = [
    { header: 'ID' },
    { header: 'TENANT' },
    { header: 'REQUEST' },
    { header: 'NODE' },
    { header: 'MEMORY', align: 'right' },
    { header: 'VCPUS', align: 'right' },
  ];
  if (pinned) columns.push({ header: 'CPUS' });
  columns.push({ header: 'STATUS' }, { header: 'AGE', align: 'right' });
  if (o.wide === true) columns.push({ header: 'PRIORITY', align: 'right' }, { header: 'NUMA' }, { header: 'EXPIRES' });
  const rows = allocations.map((a) => {
    const row = [a.id, a.tenantId, a.requestId, a.nodeId, formatMiB(a.granted.memoryMiB), String(a.granted.vcpus)];
    if (pinned) row.push(a.cpu?.mode === 'exclusive' ? formatCpuset(a.cpu.cpuset) : '-');
    row.push(a.status, age(o.now - a.createdAt));
    if (o.wide === true)
      row.push(
        String(a.priority),
        a.cpu === null || a.cpu.numaNodes.length === 0 ? '-' : a.cpu.numaNodes.join(','),
        a.expiresAt === undefined ? '-' : new Date(a.expiresAt).toISOString(),
      );
    return row;
  });
  return [renderTable(columns, rows), ...notShown(allocations.length, o.total, 'allocations')].join('\n');
}

function destination(m: Move): string {
  return m.destination.allocation === undefined ? '-' : `${m.destination.allocation.id} (${m.destination.allocation.status})`;
}

/** One row per move: where from, where to, and the move's id to confirm or abort it with. */
export function renderMoveTable(moves: readonly Move[], total?: number): string {
  const table = renderTable(
    [
      { header: 'STATE' },
      { header: 'ALLOCATION' },
      { header: 'TENANT' },
      { header: 'FROM' },
      { header: 'TO' },
      { header: 'HELD AS' },
      { header: 'MOVE' },
    ],
    moves.map((m) => [m.state, m.source.allocationId, m.tenantId, m.source.nodeId, m.destination.nodeId, destination(m), m.moveRequestId]),
  );
  const unreleased = moves
    .filter((m) => m.sourceReleased === false)
    .map((m) => `${m.source.allocationId}: the source node did not answer its release: the sweep releases it`);
  return [table, ...notShown(moves.length, total, 'moves'), ...unreleased].join('\n');
}

/** `allot evacuate`: the plan of moves, then what got no destination and why. */
export function renderEvacuation(e: EvacuateReply): string {
  const blocks = [
    `evacuate ${e.nodeId} (request ${e.requestId}): ${e.movesCount} move${e.movesCount === 1 ? '' : 's'}, ${e.unplacedCount} not placed`,
  ];
  if (e.moves.length > 0) blocks.push(renderMoveTable(e.moves, e.movesCount));
  if (e.unplaced.length > 0) {
    const table = renderTable(
      [{ header: 'NOT PLACED' }, { header: 'TENANT' }, { header: 'WHY' }],
      e.unplaced.map((u) => [u.allocationId ?? u.requestId, u.tenantId, u.error.message]),
    );
    blocks.push([table, ...notShown(e.unplaced.length, e.unplacedCount, 'not placed')].join('\n'));
  }
  if (e.moves.some((m) => m.state === 'held'))
    blocks.push('Confirm each once the VM runs on its destination: allot move confirm <allocationId> --tenant <t> --request-id <move>');
  return blocks.join('\n\n');
}

/** `allot audit`: one row per discrepancy, then the nodes that could not be listed. */
export function renderAudit(r: AuditReply): string {
  const lines = [`${r.nodesSwept} node(s) listed; ${r.total} discrepanc${r.total === 1 ? 'y' : 'ies'}`];
  if (r.discrepancies.length > 0) {
    const rows = r.discrepancies.map((d) =>
      d.kind === 'orphan'
        ? [
            d.kind,
            d.nodeId,
            d.allocationId,
            d.requestId,
            d.tenantId,
            `${d.reason.replaceAll('_', ' ')}${d.intentNodeId !== undefined && d.intentNodeId !== d.nodeId ? ` (intent on ${d.intentNodeId})` : ''}`,
            String(d.fence),
          ]
        : [d.kind, d.nodeId, d.allocationId ?? '-', d.requestId, d.tenantId, '-', '-'],
    );
    lines.push(
      '',
      renderTable(
        [
          { header: 'KIND' },
          { header: 'NODE' },
          { header: 'ALLOCATION' },
          { header: 'REQUEST' },
          { header: 'TENANT' },
          { header: 'REASON' },
          { header: 'FENCE', align: 'right' },
        ],
        rows,
      ),
    );
    lines.push(...notShown(r.discrepancies.length, r.total, 'discrepancies'));
  }
  for (const n of r.nodesFailed) lines.push(`not listed: ${n.nodeId}: ${n.error}`);
  return lines.join('\n');
}
