import type { ClusterEfficiencyReply, ClusterUsage } from '@allot/protocol';
import type { CoreState, NodeView, NumaMemoryUsage, ResourceUsage } from '@allot/core';
import { renderPairs, renderTable } from '../format/table.ts';
import { formatAge, formatLabels, formatMiB, formatPermille } from '../format/units.ts';
import { formatHealth, hugepageSize } from './nodes.ts';

function percentOf(part: number, whole: number): string {
  return whole === 0 ? '-' : formatPermille(Math.floor((part * 1000) / whole));
}

function memoryLine(m: { committed: number; effectiveCapacity: number; used: number; capacity: number }): string {
  return `${formatMiB(m.committed)} committed of ${formatMiB(m.effectiveCapacity)} effective (${percentOf(m.committed, m.effectiveCapacity)}), ${formatMiB(m.used)} used of ${formatMiB(m.capacity)}`;
}

function cpuLine(c: { committed: number; effectiveCapacity: number; used: number; capacity: number }): string {
  return `${c.committed} vCPUs committed of ${c.effectiveCapacity} effective (${percentOf(c.committed, c.effectiveCapacity)}), ${c.used} used of ${c.capacity} cores`;
}

/** `allot usage`: the cluster in a few lines. */
export function renderClusterUsage(u: ClusterUsage): string {
  const n = u.nodes;
  return renderPairs([
    [
      'nodes',
      `${n.total} (${n.ready} ready, ${n.suspect} suspect, ${n.lost} lost, ${n.cordoned} cordoned${n.draining === undefined ? '' : `, ${n.draining} draining`}${(n.decommissioned ?? 0) > 0 ? `, ${n.decommissioned} decommissioned` : ''})`,
    ],
    ['memory', memoryLine(u.memory)],
    ['cpu', cpuLine(u.cpu)],
    ['allocations', String(u.allocationCount)],
  ]);
}

function reservedNote(r: ResourceUsage, unit: (n: number) => string): string {
  return r.reserved > 0 ? `, of which ${unit(r.reserved)} reserved (not yet activated)` : '';
}

/** `allot usage --node <id>`: one node's snapshot. */
export function renderNodeUsage(view: NodeView, now: number): string {
  const s = view.snapshot;
  const tenants = Object.entries(s.tenants)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([t, u]) => `${t} ${u.vms} VMs ${formatMiB(u.memoryMiB)} ${u.vcpus} vCPUs`);
  return renderPairs([
    ['node', view.nodeId],
    ['liveness', `${view.liveness}, last seen ${formatAge(now - view.lastSeen)}`],
    ['health', formatHealth(s.health)],
    ['cordoned', s.cordoned ? 'yes' : 'no'],
    ['labels', formatLabels(s.labels)],
    ['memory', memoryLine(s.memory) + reservedNote(s.memory, formatMiB)],
    ['memory reserve', `${formatMiB(s.memory.systemReserve)}, overcommit x${s.overcommit.memory}`],
    ['cpu', cpuLine(s.cpu) + reservedNote(s.cpu, (v) => `${v} vCPUs`)],
    [
      'cores',
      `${s.cpu.sharedCores} shared (${s.cpu.sharedVcpusCommitted}/${s.cpu.sharedVcpusCapacity} vCPUs), ${s.cpu.exclusiveCores} exclusive, ${s.cpu.reservedCores} reserved; overcommit x${s.overcommit.cpu}`,
    ],
    ...numaLines(s.memory.numa),
    ['allocations', String(s.allocationCount)],
    ['tenants', tenants.length === 0 ? '-' : tenants.join('; ')],
  ]);
}

/** One line per NUMA node: what a request naming it could take, its pinned memory, and its hugepages used of total. */
function numaLines(numa: readonly NumaMemoryUsage[] | undefined): [string, string][] {
  return (numa ?? []).map((n) => {
    const pages = n.hugepages.map((p) => `hugepages-${hugepageSize(p.pageSizeMiB)} ${p.used}/${p.total} used`).join(', ');
    return [
      `numa ${n.node}`,
      `${n.freeMiB} MiB free of ${n.capacityMiB} MiB (${n.pinnedMiB} MiB pinned)${pages === '' ? '' : `; ${pages}`}`,
    ];
  });
}

/** `allot usage --node <id> --cores`: one row per logical core. */
export function renderCores(cores: readonly CoreState[]): string {
  if (cores.length === 0) return 'The node reports no cores.';
  return renderTable(
    [
      { header: 'CORE', align: 'right' },
      { header: 'PHYSICAL', align: 'right' },
      { header: 'NUMA', align: 'right' },
      { header: 'SOCKET', align: 'right' },
      { header: 'ROLE' },
      { header: 'ALLOCATION' },
      { header: 'UTIL', align: 'right' },
    ],
    [...cores]
      .sort((a, b) => a.id - b.id)
      .map((c) => [
        String(c.id),
        String(c.core),
        String(c.numa),
        String(c.socket),
        c.role,
        c.allocationId ?? '-',
        formatPermille(c.utilizationPermille),
      ]),
  );
}

/** A ratio (0..1 or above) as a percentage with one decimal. */
function percent(ratio: number): string {
  return `${(Math.round(ratio * 1000) / 10).toFixed(1)}%`;
}

/** `allot usage --efficiency`: how well the cluster's capacity is used, and what is stranded for the common VM. */
export function renderEfficiency(e: ClusterEfficiencyReply): string {
  const ref = `${formatMiB(e.reference.memoryMiB)}, ${e.reference.vcpus} vCPU${e.reference.vcpus === 1 ? '' : 's'} (${e.reference.source === 'seen' ? 'the shape placed most often' : 'default: no place seen yet'})`;
  const pairs: [string, string][] = [
    ['reference VM', ref],
    ['nodes counted', `${e.nodes} (ready, not cordoned)`],
  ];
  for (const m of e.metrics) {
    const unit = m.resourceType === 'memory' ? 'memory' : 'vCPUs';
    pairs.push([
      m.resourceType,
      `used ${percent(m.allocationEfficiency)} of committed, ${percent(m.utilizationEfficiency)} of effective; ${m.referenceRequestsThatFit} more reference VMs fit; ${percent(m.fragmentation)} of free ${unit} stranded`,
    ]);
  }
  return renderPairs(pairs);
}
