import type { Allocation } from '@allot/core';
import type { ClusterCheckReply, PlaceReply } from '@allot/protocol';
import { renderPairs } from '../format/table.ts';
import { formatMiB } from '../format/units.ts';

function cpuset(ids: readonly number[]): string {
  return ids.length === 0 ? '-' : ids.join(',');
}

export function renderAllocation(a: Allocation): string {
  const pairs: [string, string][] = [
    ['allocation', a.id],
    ['request id', a.requestId],
    ['tenant', a.tenantId],
    ['node', a.nodeId],
    ['status', a.status],
    ['memory', formatMiB(a.granted.memoryMiB)],
    ['vcpus', `${a.granted.vcpus}${a.cpu ? ` ${a.cpu.mode}` : ''}`],
  ];
  if (a.cpu) {
    pairs.push(['cpuset', cpuset(a.cpu.cpuset)]);
    pairs.push(['numa nodes', `${a.cpu.numaNodes.join(',') || '-'}${a.cpu.numaFallback ? ' (spans NUMA nodes: one was preferred)' : ''}`]);
    pairs.push(['policy', `${a.cpu.policy}${a.cpu.threadPolicy ? `, threads ${a.cpu.threadPolicy}` : ''}`]);
    if (a.cpu.idleSiblings && a.cpu.idleSiblings.length > 0)
      pairs.push(['held idle', `${cpuset(a.cpu.idleSiblings)} (SMT siblings kept for it, counted as used)`]);
  }
  pairs.push(['priority', String(a.priority)]);
  if (a.expiresAt !== undefined) pairs.push(['expires at', new Date(a.expiresAt).toISOString()]);
  return renderPairs(pairs);
}

/** `allot place`: where it went and what it got. */
export function renderPlacement(p: PlaceReply): string {
  const lines = [`placed on ${p.nodeId} after ${p.attempts} attempt${p.attempts === 1 ? '' : 's'}`, renderAllocation(p.allocation)];
  for (const v of p.preempted) lines.push(`preempted ${v.allocationId} (request ${v.requestId}, priority ${v.priority})`);
  if (p.othersPreempted !== undefined) lines.push(`preempted ${p.othersPreempted} of other tenants' allocations`);
  return lines.join('\n');
}

/** `allot check`: would it fit, where, and why not elsewhere. */
export function renderCheck(c: ClusterCheckReply): string {
  const lines = [c.fits ? `fits: yes` : `fits: no`, c.message];
  if (c.candidates.length > 0) lines.push(`candidates: ${c.candidates.join(', ')}`);
  const rejected = Object.entries(c.rejected).filter(([, n]) => n > 0);
  if (rejected.length > 0) lines.push(`rejected: ${rejected.map(([why, n]) => `${n} ${why}`).join(', ')}`);
  const p = c.preemption;
  if (p !== undefined) {
    const victims = p.victims.map((v) => `${v.allocationId} (request ${v.requestId}, priority ${v.priority})`).join(', ');
    // Only the tenant's own victims are named; the message above counts them all.
    lines.push(`with preemption: node ${p.nodeId}, preempting ${victims === '' ? "other tenants' allocations only" : victims}`);
  }
  return lines.join('\n');
}
