import { holdsCapacity, type Allocation, type AllocationRequest, type NodeView } from '@allot/core';
import { coresPerNumaNode, cpuOvercommitPercent, freeMemoryMiB, sharedCoreCount, type Freed } from './node-capacity.ts';

/*
 * Room per NUMA node once some allocations are released: what the preemption post-filter checks for a request bound to
 * one node (a named memory node, hugepages, `cpu.numa: require`), where totals are not enough, since the agent's
 * atomic preempt fits the request to one node after the release (packages/managers host/numa-cell.ts). The figures are
 * the filters' (FitsNuma, FitsNumaMemory) plus what the victims' grants give back on each node:
 * - memory pinned to a node (its memory grant's numaNode) goes back to that node, floating memory to the host only;
 * - hugepages go back to the node and size they came from;
 * - exclusive cores (and isolate's idle siblings) go back to the node of each core (from the snapshot's core list, or
 *   the grant's one NUMA node);
 * - a shared victim's home cores become idle on their node when nothing else is homed there, judged from the node's
 *   whole allocation list (planPreemption has it; the snapshot does not say which cores carry shared load).
 */

/**
 * A request the post-filter must check per NUMA node or per physical core (totals do not decide it): a named memory
 * node, hugepages, `cpu.numa: require`, or exclusive cores under thread policy isolate or require.
 */
export function numaBound(request: AllocationRequest): boolean {
  return (
    request.memory?.numaNode !== undefined ||
    request.memory?.hugepages !== undefined ||
    request.cpu.numa === 'require' ||
    wholeCoresPolicy(request) !== undefined
  );
}

/** The thread policy of an exclusive request that takes only whole idle physical cores, if it has one. */
function wholeCoresPolicy(request: AllocationRequest): 'isolate' | 'require' | undefined {
  const thread = request.cpu.threadPolicy;
  return request.cpu.exclusive && (thread === 'isolate' || thread === 'require') ? thread : undefined;
}

/**
 * For a thread policy: the vCPUs each NUMA node's whole idle physical cores offer once the victims are released (isolate
 * one per core, require every thread), and whether the rest holds host-wide (require: a whole number of cores on an SMT
 * host; the shared pool still covering what shared grants keep without every core taken, isolate's siblings included).
 * From the snapshot's core list (roles, holders, physical cores) and the homed shared load; undefined without them.
 */
export interface WholeUnits {
  readonly perNode: ReadonlyMap<number, number>;
  readonly hostFits: boolean;
}

export function wholeUnitsAfter(
  node: NodeView,
  request: AllocationRequest,
  victims: readonly Allocation[],
  homed: HomedLoad | undefined,
  freed: Freed,
): WholeUnits | undefined {
  const thread = wholeCoresPolicy(request);
  const cores = node.snapshot.cpu.cores;
  if (thread === undefined || homed === undefined || cores.length === 0) return undefined;
  const ids = new Set(victims.map((v) => v.id));
  const unhomed = new Map<number, number>();
  for (const v of victims) if (v.cpu?.mode === 'shared') for (const id of v.cpu.cpuset) add(unhomed, id, 1);
  // Per physical core (the agent groups threads by core id): its node, its threads, and whether all are idle after.
  const phys = new Map<number, { node: number; threads: number; idle: boolean }>();
  for (const c of cores) {
    const idle =
      (c.role === 'shared' && (homed.get(c.id) ?? 0) - (unhomed.get(c.id) ?? 0) === 0) ||
      (c.role === 'exclusive' && c.allocationId !== undefined && ids.has(c.allocationId));
    const p = phys.get(c.core);
    if (p === undefined) phys.set(c.core, { node: c.numa, threads: 1, idle });
    else phys.set(c.core, { node: p.node, threads: p.threads + 1, idle: p.idle && idle });
  }
  let threads = -1;
  for (const p of phys.values()) threads = threads < 0 || threads === p.threads ? p.threads : 0;
  if (threads <= 0) return undefined;
  const perNode = new Map<number, number>();
  for (const p of phys.values()) if (p.idle) add(perNode, p.node, thread === 'isolate' ? 1 : threads);
  const vcpus = request.resources.vcpus;
  const aligned = thread === 'isolate' || (threads > 1 && vcpus % threads === 0);
  const taken = thread === 'isolate' ? vcpus * threads : vcpus;
  const poolLeft =
    sharedCoreCount(node) +
    freed.exclusiveCores -
    Math.ceil(((node.snapshot.cpu.sharedVcpusCommitted - freed.sharedVcpus) * 100) / cpuOvercommitPercent(node));
  return { perNode, hostFits: aligned && poolLeft >= taken };
}

/** What releasing some allocations gives back on each NUMA node. */
export interface CellsFreed {
  readonly pinnedMiB: ReadonlyMap<number, number>;
  /** Keyed `${node}:${pageSizeMiB}`. */
  readonly pages: ReadonlyMap<string, number>;
  readonly cores: ReadonlyMap<number, number>;
}

const add = <K>(map: Map<K, number>, key: K, n: number): void => {
  map.set(key, (map.get(key) ?? 0) + n);
};

/** Shared vCPUs homed on each core (core id -> count), over a node's whole list of live allocations. */
export type HomedLoad = ReadonlyMap<number, number>;

/** Which cores the shared allocations of this list are homed on, one vCPU per core of each cpuset (the agent's rule). */
export function homedLoad(allocations: readonly Allocation[]): HomedLoad {
  const load = new Map<number, number>();
  for (const a of allocations) if (a.cpu?.mode === 'shared' && holdsCapacity(a.status)) for (const id of a.cpu.cpuset) add(load, id, 1);
  return load;
}

/**
 * Per NUMA node, what these allocations' release gives back (see the comment above). With `homed`, the shared load of
 * the node's whole allocation list, a shared victim's core on which nothing else is homed becomes idle too.
 */
export function cellsFreedBy(node: NodeView, victims: readonly Allocation[], homed?: HomedLoad): CellsFreed {
  const pinnedMiB = new Map<number, number>();
  const pages = new Map<string, number>();
  const cores = new Map<number, number>();
  let cellOf: Map<number, number> | undefined;
  const cell = (id: number, only: number | undefined): number | undefined => {
    cellOf ??= new Map(node.snapshot.cpu.cores.map((c) => [c.id, c.numa]));
    return cellOf.get(id) ?? only;
  };
  let unhomed: Map<number, number> | undefined;
  for (const v of victims) {
    if (v.memory?.numaNode !== undefined) add(pinnedMiB, v.memory.numaNode, v.granted.memoryMiB);
    const huge = v.memory?.hugepages;
    if (huge !== undefined) add(pages, `${huge.numaNode}:${huge.pageSizeMiB}`, huge.count);
    if (v.cpu === null) continue;
    const only = v.cpu.numaNodes.length === 1 ? v.cpu.numaNodes[0] : undefined;
    if (v.cpu.mode === 'shared') {
      if (homed !== undefined) for (const id of v.cpu.cpuset) add((unhomed ??= new Map()), id, 1);
      continue;
    }
    for (const id of [...v.cpu.cpuset, ...(v.cpu.idleSiblings ?? [])]) {
      const at = cell(id, only);
      if (at !== undefined) add(cores, at, 1);
    }
  }
  // A pool core becomes idle once every vCPU homed on it is a victim's (and it was not idle already).
  const pool = unhomed === undefined ? undefined : new Set(node.snapshot.cpu.cores.filter((c) => c.role === 'shared').map((c) => c.id));
  for (const [id, gone] of unhomed ?? []) {
    const at = cell(id, undefined);
    if (at !== undefined && pool?.has(id) === true && (homed?.get(id) ?? 0) === gone) add(cores, at, 1);
  }
  return { pinnedMiB, pages, cores };
}

/**
 * An upper bound of cellsFreedBy for whatever allocations release `freed` (the per-priority totals): every node may get
 * all of the freed memory (up to what is pinned there), every hugepage in use, and all freed cores (exclusive cores,
 * and for an exclusive request one core per freed shared vCPU). Monotone in `freed`, so the post-filter's binary search
 * over priority levels stays exact for the nodes it rules out.
 */
export function cellsFreedAtMost(node: NodeView, request: AllocationRequest, freed: Freed): CellsFreed {
  const pinnedMiB = new Map<number, number>();
  const pages = new Map<string, number>();
  const cores = new Map<number, number>();
  const anything = freed.memoryMiB > 0 || freed.sharedVcpus > 0 || freed.exclusiveCores > 0;
  for (const n of node.snapshot.memory.numa ?? []) {
    pinnedMiB.set(n.node, Math.min(freed.memoryMiB, n.pinnedMiB));
    if (anything) for (const p of n.hugepages) pages.set(`${n.node}:${p.pageSizeMiB}`, p.used);
  }
  const coresFreed = freed.exclusiveCores + (request.cpu.exclusive ? freed.sharedVcpus : 0);
  for (const cell of coresPerNumaNode(node, request.cpu.exclusive).keys()) cores.set(cell, coresFreed);
  return { pinnedMiB, pages, cores };
}

/**
 * Whether the request fits one NUMA node's figures once `cells` are given back and `memoryFreedMiB` with them (the
 * host-wide part), by the filters' rules: a named node needs the memory and hugepages there; unpinned hugepages need one
 * node with the pages; a request with `cpu.numa: require` needs one node with its cores (idle ones when exclusive), and
 * when it names no memory node and has memory or pages, that node must have them too (the agent's single-node fitting).
 * A host that publishes no per-node memory figures cannot show a pinned or hugepage request fits.
 */
export function fitsNumaAfter(
  node: NodeView,
  request: AllocationRequest,
  cells: CellsFreed,
  memoryFreedMiB: number,
  whole?: WholeUnits,
): boolean {
  const memoryMiB = request.resources.memoryMiB;
  const vcpus = request.resources.vcpus;
  const huge = request.memory?.hugepages;
  const pinned = request.memory?.numaNode;
  const requireCores = request.cpu.numa === 'require' && vcpus > 0;
  const hostFree = freeMemoryMiB(node) + memoryFreedMiB;
  const memory = new Map((node.snapshot.memory.numa ?? []).map((n) => [n.node, n]));
  const coreCounts = coresPerNumaNode(node, request.cpu.exclusive);
  const memoryFits = (cell: number): boolean => {
    const n = memory.get(cell);
    if (n === undefined) return false;
    return Math.min(n.capacityMiB - n.pinnedMiB + (cells.pinnedMiB.get(cell) ?? 0), hostFree) >= memoryMiB;
  };
  const pagesFit = (cell: number): boolean => {
    if (huge === undefined) return true;
    const pool = memory.get(cell)?.hugepages.find((p) => p.pageSizeMiB === huge.pageSizeMiB);
    return (pool?.free ?? 0) + (cells.pages.get(`${cell}:${huge.pageSizeMiB}`) ?? 0) >= huge.count;
  };
  // A thread policy counts whole idle physical cores (exact, from the core list), others idle or pool cores.
  const coresFit = (cell: number): boolean =>
    whole === undefined ? (coreCounts.get(cell) ?? 0) + (cells.cores.get(cell) ?? 0) >= vcpus : (whole.perNode.get(cell) ?? 0) >= vcpus;
  const someCoreCell = (): boolean => !requireCores || [...coreCounts.keys()].some(coresFit);
  if (whole !== undefined) {
    if (!whole.hostFits) return false;
    let units = 0;
    for (const n of whole.perNode.values()) units += n;
    if (units < vcpus) return false;
  }

  if (pinned !== undefined) return memoryFits(pinned) && pagesFit(pinned) && someCoreCell();
  const oneCell = requireCores && (memoryMiB > 0 || huge !== undefined) && memory.size > 0;
  if (oneCell) return [...memory.keys()].some((cell) => memoryFits(cell) && pagesFit(cell) && coresFit(cell));
  if (huge !== undefined && ![...memory.keys()].some(pagesFit)) return false;
  return someCoreCell();
}
