import type { Allocation, Health, NodeView } from '@allot/core';
import type { DecommissionReply, NodeState } from '@allot/protocol';
import { renderTable } from '../format/table.ts';
import { formatAge, formatLabels, formatMemoryTriple } from '../format/units.ts';
import { renderAllocationTable } from './allocations.ts';

export function formatHealth(health: Health): string {
  return health.status === 'degraded' || health.status === 'unhealthy' ? `${health.status} (${health.reasons.join('; ')})` : health.status;
}

/** The operator state, derived as the coordinators do when an older one sends none. */
export function stateOf(n: NodeView): NodeState {
  return n.state ?? (n.liveness !== 'ready' ? n.liveness : n.snapshot.cordoned ? 'draining' : 'ready');
}

/** `allot nodes`: one row per node, memory and vCPUs as committed/effective/used; health reasons below the table. */
export function renderNodes(nodes: readonly NodeView[], now: number): string {
  if (nodes.length === 0) return 'No nodes have reported yet.';
  const sorted = [...nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  const table = renderTable(
    [
      { header: 'NODE' },
      { header: 'STATE' },
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
        stateOf(n),
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
  const reasons = sorted.flatMap((n) =>
    n.snapshot.health.status === 'degraded' || n.snapshot.health.status === 'unhealthy'
      ? n.snapshot.health.reasons.map((r) => `  ${n.nodeId}: ${r}`)
      : [],
  );
  // Taints (allot node taint) follow too: a node refusing untolerating places should say so where nodes are listed.
  const taints = sorted.flatMap((n) =>
    (n.taints ?? []).map((t) => `  ${n.nodeId}: ${t.key}=${t.value}:${t.effect}${t.reason === undefined ? '' : `  (${t.reason})`}`),
  );
  return [
    table,
    ...(reasons.length === 0 ? [] : [`health:\n${reasons.join('\n')}`]),
    ...(taints.length === 0 ? [] : [`taints:\n${taints.join('\n')}`]),
  ].join('\n\n');
}

/** `allot node decommission`: what was settled, what remains, whether the node is gone from the view. */
export function renderDecommission(d: DecommissionReply): string {
  const lines = [
    `${d.nodeId} decommissioned${d.answered ? ' (its agent answered and is cordoned)' : ` (its agent did not answer; ${d.liveness ?? 'never reported'})`}`,
  ];
  const list = (what: string, ids: readonly string[]) => {
    if (ids.length > 0) lines.push(`${what} (${ids.length}): ${ids.join(', ')}`);
  };
  list('pending placements failed, quota given back', d.failed);
  list('pending placements found committed there', d.placed);
  list('placements given up with the lost node, quota given back', d.gone);
  list('pending placements left unsettled (the node is neither answering nor lost yet: run it again later)', d.unsettled);
  if (d.removed) lines.push('nothing of it remains: it is out of the view and every count');
  else
    lines.push(
      `${d.remainingCount} allocation${d.remainingCount === 1 ? '' : 's'} still on it: move or release them; it leaves the view once nothing remains`,
    );
  return lines.join('\n');
}

/** The allocations a decommission or drain lists: one table row each, and how many the reply left out. */
export function renderRemaining(remaining: readonly Allocation[], total: number | undefined, now: number): string[] {
  return remaining.length === 0 ? [] : [renderAllocationTable(remaining, { now, ...(total === undefined ? {} : { total }) })];
}
