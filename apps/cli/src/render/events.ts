import type { AllotEvent } from '@allot/core';
import { formatMiB } from '../format/units.ts';

/** One event, one line: time, node, kind, then whatever the event carries. */
export function renderEvent(e: AllotEvent): string {
  const parts = [new Date(e.at).toISOString(), e.nodeId.padEnd(12), e.kind.padEnd(12)];
  if (e.tenantId !== undefined) parts.push(`tenant=${e.tenantId}`);
  if (e.requestId !== undefined) parts.push(`request=${e.requestId}`);
  if (e.allocationId !== undefined) parts.push(`allocation=${e.allocationId}`);
  if (e.resources !== undefined) parts.push(`memory=${formatMiB(e.resources.memoryMiB)} vcpus=${e.resources.vcpus}`);
  if (e.cpuset !== undefined && e.cpuset.length > 0) parts.push(`cpuset=${e.cpuset.join(',')}`);
  if (e.error !== undefined) parts.push(`error=${e.error.code}: ${e.error.message}`);
  if (e.reason !== undefined) parts.push(`reason=${e.reason}`);
  return parts.join(' ').trimEnd();
}
