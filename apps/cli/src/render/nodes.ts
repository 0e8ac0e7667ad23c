import type { Health, NodeView } from '@allot/core';
import { renderTable } from '../format/table.ts';
import { formatAge, formatLabels, formatMemoryTriple } from '../format/units.ts';

export function formatHealth(health: Health): string {
  return health.status === 'degraded' || health.status === 'unhealthy' ? `${health.status} (${health.reasons.join('; ')})` : health.status;
}

/** `allot nodes`: one row per node, memory and vCPUs as committed/effective/used; health reasons below the table. */
export function renderNodes(nodes: readonly NodeView[], now: number): string {
  if (nodes.length === 0) return 'No nodes have reported yet.';
  const sorted = [...nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  const table = renderTable(
    [
      { header: 'NODE' },
      { header: 'LIVENESS' },
      { header: 'HEALTH' },
      { header: 'CORDON' },
      { header: 'MEMORY c/e/u', align: 'right' },
      { header: 'VCPU c/e/u', align: 'right' },
      { header: 'LABELS' },
      { header: 'LAST SEEN' },
    ],
    sorted.map((n) => {
      const s = n.snapshot;
      return [
        n.nodeId,
        n.liveness,
        s.health.status,
        s.cordoned ? 'cordoned' : '-',
        formatMemoryTriple(s.memory.committed, s.memory.effectiveCapacity, s.memory.used),
        `${s.cpu.committed}/${s.cpu.effectiveCapacity}/${s.cpu.used}`,
        formatLabels(s.labels),
        formatAge(now - n.lastSeen),
      ];
    }),
  );
  // Reasons are sentences: in the table they would stretch every row, so they follow it, one per line.
  const reasons = sorted.flatMap((n) => (n.snapshot.health.status === 'degraded' || n.snapshot.health.status === 'unhealthy' ? n.snapshot.health.reasons.map((r) => `  ${n.nodeId}: ${r}`) : []));
  return reasons.length === 0 ? table : `${table}\n\nhealth:\n${reasons.join('\n')}`;
}
