import type { AllocationRequest } from '@allot/core';
import { cpuOvercommitPercent } from './node-capacity.ts';
import type { Filter, FilterPlugin } from './types.ts';

/**
 * A request's bound on a host's CPU overcommit (CpuOptions.maxOvercommit, a tenant's quota folded in by the
 * coordinator), as an integer percentage like the host's; undefined when it has none or takes no shared vCPUs
 * (exclusive cores are never overcommitted, so a dedicated-CPU flavor fits any ratio).
 */
export function maxCpuOvercommitPercent(request: AllocationRequest): number | undefined {
  const bound = request.cpu.maxOvercommit;
  if (bound === undefined || request.cpu.exclusive || request.resources.vcpus <= 0) return undefined;
  return Math.round(bound * 100);
}

/** One reason for every node over the bound, so they are counted together ("3 node(s) overcommit CPU above 1"). */
export function overcommitReason(percent: number): string {
  return `node(s) overcommit CPU above the request's bound of ${percent / 100}`;
}

/** Keeps a bounded request off hosts whose CPU overcommit ratio is above its bound (Nova's aggregate ratio filters). */
export const cpuOvercommitBound: Filter = (ctx, node) => {
  const bound = maxCpuOvercommitPercent(ctx.request);
  if (bound === undefined || cpuOvercommitPercent(node) <= bound) return null;
  return { reason: overcommitReason(bound) };
};

export const CPU_OVERCOMMIT_PLUGIN: FilterPlugin = {
  name: 'CpuOvercommitBound',
  appliesTo: (ctx) => maxCpuOvercommitPercent(ctx.request) !== undefined,
  filter: cpuOvercommitBound,
};
