import type { Allocation, Health, NodeView, NumaMemoryUsage } from '@allot/core';
import type { DecommissionReply, NodeState } from '@allot/protocol';
import { renderTable } from '../format/table.ts';
import { formatAge, formatLabels, formatMemoryTriple, formatMiB } from '../format/units.ts';
import { renderAllocationTable } from './allocations.ts';

export function formatHealth(health: Health): string {
  return health.status === 'degraded' || health.status === 'unhealthy' ? `${health.status} (${health.reasons.join('; ')})` : health.status;
}

/** The operator state, derived as the coordinators do when an older one sends none. */
export function stateOf(n: NodeView): NodeState {
  return n.state ?? (n.liveness !== 'ready' ? n.liveness : n.snapshot.cordoned ? 'draining' : 'ready');
}

/** Free memory per NUMA node, `0:656 MiB 1:6.5 GiB` ('-' when the agent publishes no per-node figures). */
function formatNumaFreeMemory(numa: readonly NumaMemoryUsage[] | undefined): string {
  return numa === undefined || numa.length === 0 ? '-' : numa.map((n) => `${n.node}:${formatMiB(n.freeMiB)}`).join(' ');
}

/** Free hugepages per size and NUMA node, `2Mi 0:56 1:256; 1Gi 0:0 1:0` ('-' when there are none). */
function formatNumaFreeHugepages(numa: readonly NumaMemoryUsage[] | undefined): string {
  const sizes = [...new Set((numa ?? []).flatMap((n) => n.hugepages.map((p) => p.pageSizeMiB)))].sort((a, b) => a - b);
  if (numa === undefined || sizes.length === 0) return '-';
  return sizes
    .map(
      (size) =>
        `${hugepageSize(size)} ${numa.map((n) => `${n.node}:${n.hugepages.find((p) => p.pageSizeMiB === size)?.free ?? 0}`).join(' ')}`,
    )
    .join('; ');
}

/** kube's suffix of a page size: 2 -> `2Mi`, 1024 -> `1Gi`. */
export function hugepageSize(pageSizeMiB: number): string {
  return pageSizeMiB % 1024 === 0 ? `${pageSizeMiB / 1024}Gi` : `${pageSizeMiB}Mi`;
}

/**
 * `allot nodes`: one row per node, memory and vCPUs as committed/effective/used; health reasons below the table.
 * `wide` adds the free memory and free hugepages of each NUMA node.
 */
export function renderNodes(nodes: readonly NodeView[], now: number, options: { wide?: boolean } = {}): string {
  if (nodes.length === 0) return 'No nodes have reported yet.';
  const sorted = [...nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  const wide = options.wide === true;
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
      ...(wide ? [{ header: 'NUMA FREE MEMORY' }, { header: 'NUMA FREE HUGEPAGES' }] : []),
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
        ...(wide ? [formatNumaFreeMemory(s.memory.numa), formatNumaFreeHugepages(s.memory.numa)] : []),
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
