import type { AllocationRequest, NodeView, NumaMemoryUsage } from '@allot/core';
import type { Filter, FilterPlugin } from './types.ts';

/** kube's name of a hugepage resource: `hugepages-2Mi`, `hugepages-1Gi`. */
function hugepageName(pageSizeMiB: number): string {
  return pageSizeMiB % 1024 === 0 ? `hugepages-${pageSizeMiB / 1024}Gi` : `hugepages-${pageSizeMiB}Mi`;
}

/** `Insufficient memory on NUMA node 1`: the node named by the request lacks the memory (or the host has no such node). */
function numaMemoryReason(node: number): string {
  return `Insufficient memory on NUMA node ${node}`;
}

/** `Insufficient hugepages-2Mi`, as kube-scheduler counts an extended resource. */
function hugepagesReason(pageSizeMiB: number): string {
  return `Insufficient ${hugepageName(pageSizeMiB)}`;
}

function freePages(node: NumaMemoryUsage, pageSizeMiB: number): number {
  return node.hugepages.find((p) => p.pageSizeMiB === pageSizeMiB)?.free ?? 0;
}

/**
 * NUMA-local memory and hugepages, from the per-node figures the agent publishes (memory.numa): a request naming a
 * NUMA node needs its memory free there (the figure already bounded by the host's free memory), and its hugepages
 * there; an unpinned request's hugepages need one node with that many free pages. A node whose snapshot has no
 * per-node figures (an agent older than them, or a host that could not read its nodes) cannot show it fits: refused.
 * The agent decides for real; this only keeps requests off hosts that would refuse.
 */
const fitsNumaMemory: Filter = (ctx, node: NodeView) => {
  const options = ctx.request.memory;
  if (options === undefined) return null;
  const numa = node.snapshot.memory.numa ?? [];
  const pinned = options.numaNode;
  const home = pinned === undefined ? undefined : numa.find((n) => n.node === pinned);
  if (pinned !== undefined && (home === undefined || home.freeMiB < ctx.request.resources.memoryMiB))
    return { reason: numaMemoryReason(pinned) };
  const huge = options.hugepages;
  if (huge === undefined) return null;
  const fits =
    home === undefined ? numa.some((n) => freePages(n, huge.pageSizeMiB) >= huge.count) : freePages(home, huge.pageSizeMiB) >= huge.count;
  return fits ? null : { reason: hugepagesReason(huge.pageSizeMiB) };
};

function asksNumaMemory(request: AllocationRequest): boolean {
  return request.memory?.numaNode !== undefined || request.memory?.hugepages !== undefined;
}

export const NUMA_MEMORY_PLUGIN: FilterPlugin = {
  name: 'FitsNumaMemory',
  appliesTo: (ctx) => asksNumaMemory(ctx.request),
  filter: fitsNumaMemory,
};
