import type { AllocationRequest, NodeView, NumaMemoryUsage } from '@allot/core';
import { vcpusPerNumaNode } from './node-capacity.ts';
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

/** Counted when no one NUMA node of a host fits a request bound to one node (kube's topology manager refuses alike). */
const NO_NUMA_CELL = 'no NUMA node fits its cores and memory together';
const NO_NUMA_CELL_WITH_PAGES = 'no NUMA node fits its cores, memory and hugepages together';

/**
 * A request whose cores must be on one NUMA node and that names no node for its memory: the agent fits its cores,
 * memory and hugepages to one node (packages/managers/src/host/numa-cell.ts), when it knows its nodes.
 */
function boundToOneNode(request: AllocationRequest): boolean {
  return (
    request.cpu.numa === 'require' &&
    request.memory?.numaNode === undefined &&
    request.resources.vcpus > 0 &&
    (request.resources.memoryMiB > 0 || request.memory?.hugepages !== undefined)
  );
}

/**
 * Some one node has the request's cores, memory and hugepages. The cores are counted as FitsNuma counts them: pool
 * cores for a shared request, idle ones for an exclusive request, whole idle physical cores for a thread policy
 * isolate or require (vcpusPerNumaNode).
 */
function someNodeFitsAll(request: AllocationRequest, node: NodeView, numa: readonly NumaMemoryUsage[]): boolean {
  const cores = vcpusPerNumaNode(node, request);
  const huge = request.memory?.hugepages;
  return numa.some(
    (n) =>
      (cores.get(n.node) ?? 0) >= request.resources.vcpus &&
      n.freeMiB >= request.resources.memoryMiB &&
      (huge === undefined || freePages(n, huge.pageSizeMiB) >= huge.count),
  );
}

/**
 * NUMA-local memory and hugepages, from the per-node figures the agent publishes (memory.numa): a request naming a
 * NUMA node needs its memory free there (the figure already bounded by the host's free memory), and its hugepages
 * there; an unpinned request's hugepages need one node with that many free pages. A node whose snapshot has no
 * per-node figures (an agent older than them, or a host that could not read its nodes) cannot show it fits: refused.
 * A request bound to one node (see boundToOneNode) needs one node with its cores, memory and hugepages together; on a
 * node without per-node figures its memory floats, so only its hugepages (if any) are judged as above.
 * The agent decides for real; this only keeps requests off hosts that would refuse.
 */
const fitsNumaMemory: Filter = (ctx, node: NodeView) => {
  const numa = node.snapshot.memory.numa ?? [];
  if (numa.length > 0 && boundToOneNode(ctx.request)) {
    if (someNodeFitsAll(ctx.request, node, numa)) return null;
    return { reason: ctx.request.memory?.hugepages === undefined ? NO_NUMA_CELL : NO_NUMA_CELL_WITH_PAGES };
  }
  const options = ctx.request.memory;
  if (options === undefined) return null;
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
  capacity: true,
  appliesTo: (ctx) => asksNumaMemory(ctx.request) || boundToOneNode(ctx.request),
  filter: fitsNumaMemory,
};
