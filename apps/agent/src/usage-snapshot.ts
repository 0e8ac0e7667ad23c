import type { CpuUsage, Health, ResourceUsage, UsageSnapshot } from '@allot/core';
import type { HostView } from '@allot/managers';

/** What the agent knows about itself besides the managers' view. */
export interface SnapshotContext {
  readonly nodeId: string;
  readonly bootId: string;
  readonly labels: Record<string, string>;
  readonly heartbeatMs: number;
  readonly overcommit: { readonly memory: number; readonly cpu: number };
}

function isCpuUsage(usage: ResourceUsage): usage is CpuUsage {
  return usage.resourceType === 'cpu' && Array.isArray((usage as Partial<CpuUsage>).cores);
}

/**
 * The usage snapshot the coordinator's cluster view is built from: one consistent host view (taken in one turn of the
 * host manager, so committed figures, counts and seq agree) plus the agent's identity, labels and health.
 */
export function buildUsageSnapshot(view: HostView, health: Health, ctx: SnapshotContext, now: number): UsageSnapshot {
  const memory = view.usage.find((u) => u.resourceType === 'memory');
  const cpu = view.usage.find(isCpuUsage);
  if (memory === undefined || cpu === undefined) throw new Error('host view lacks memory or cpu usage');
  const extra = view.usage.filter((u) => u.resourceType !== 'memory' && u.resourceType !== 'cpu');
  return {
    nodeId: ctx.nodeId,
    bootId: ctx.bootId,
    seq: view.seq,
    at: now,
    labels: ctx.labels,
    cordoned: view.cordoned,
    health,
    memory,
    cpu,
    ...(extra.length > 0 ? { extra } : {}),
    overcommit: { memory: ctx.overcommit.memory, cpu: ctx.overcommit.cpu },
    tenants: view.tenants,
    groups: view.groups,
    allocationCount: view.allocationCount,
    priorities: view.priorities,
    heartbeatMs: ctx.heartbeatMs,
  };
}
