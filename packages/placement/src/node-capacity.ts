import { coreListLength, sharedCoresListed, sharedCoresPerNumaListed, type AllocationRequest, type NodeView } from '@allot/core';
import type { CapacityEntry, NodeStateReason } from './snapshot.ts';

/*
 * What a node can still take, read from its usage snapshot. These few functions are the single definition used by the
 * filters, the scorers and the free-capacity index, so the three can never disagree about whether a node fits.
 * The snapshot is a view, possibly stale: the agent is the authority and refuses what no longer fits.
 */

/** Reasons a node is not schedulable at all, whatever the request (checked before any capacity). */
export const NODE_NOT_READY = 'node not ready';
export const NODE_CORDONED = 'node cordoned';
export const NODE_UNHEALTHY = 'node unhealthy';
export type { NodeStateReason };

/** Why this node takes nothing now, or null when it is schedulable. Suspect and lost nodes are not ready. */
export function nodeStateReason(view: NodeView): NodeStateReason | null {
  if (view.liveness !== 'ready') return NODE_NOT_READY;
  if (view.snapshot.cordoned) return NODE_CORDONED;
  const status = view.snapshot.health.status;
  // degraded still takes work (it is a warning); unhealthy and stopped do not.
  if (status === 'unhealthy' || status === 'stopped') return NODE_UNHEALTHY;
  return null;
}

/** Memory still free under the effective capacity, in MiB. */
export function freeMemoryMiB(view: NodeView): number {
  const m = view.snapshot.memory;
  return Math.max(0, m.effectiveCapacity - m.committed);
}

/**
 * The largest shared-mode request the node can take, in vCPUs: free shared vCPUs, and never more vCPUs than the
 * shared pool has cores (a VM's vCPUs float over distinct shared cores).
 */
export function sharedVcpuFit(view: NodeView): number {
  const c = view.snapshot.cpu;
  return Math.max(0, Math.min(c.sharedVcpusCapacity - c.sharedVcpusCommitted, c.sharedCores));
}

/** Shared-pool cores in the snapshot's core list (falls back to the sharedCores figure when the list is empty). */
export function sharedCoreCount(view: NodeView): number {
  const c = view.snapshot.cpu;
  // Counted without unpacking a list the coordinator's view holds packed: the index asks on every heartbeat.
  return coreListLength(c) === 0 ? c.sharedCores : sharedCoresListed(c);
}

/** The CPU overcommit ratio as an integer percentage (1.5 -> 150), the way the agent applies it. */
export function cpuOvercommitPercent(view: NodeView): number {
  return Math.max(100, Math.round(view.snapshot.overcommit.cpu * 100));
}

/**
 * Idle shared cores: how many shared cores could become exclusive. An APPROXIMATION, the best a snapshot allows:
 * taking k cores out of the pool leaves floor((S - k) x ratio) shared vCPUs, which must still hold the shared vCPUs
 * committed, so k <= S - ceil(committed / ratio). The snapshot does not say which cores the agent would pick, nor how
 * the hard limit interacts; the agent is the authority and refuses when this figure was optimistic.
 */
export function idleSharedCores(view: NodeView): number {
  const shared = sharedCoreCount(view);
  const committed = view.snapshot.cpu.sharedVcpusCommitted;
  const percent = cpuOvercommitPercent(view);
  const coresNeeded = Math.ceil((committed * 100) / percent);
  const byPool = Math.max(0, shared - coresNeeded);
  const idle = publishedIdleCores(view);
  // The agent takes only cores with no shared vCPU homed on them: never more than it says it has.
  return idle === undefined ? byPool : Math.min(byPool, idle);
}

/**
 * The pool cores with no shared vCPU, summed over the snapshot's per-NUMA counts (cpu.numa), when every node of it
 * has the figure (agents before it did not publish it: undefined).
 */
function publishedIdleCores(view: NodeView): number | undefined {
  const numa = view.snapshot.cpu.numa;
  if (numa === undefined || numa.length === 0) return undefined;
  let idle = 0;
  for (const n of numa) {
    if (n.idleCores === undefined) return undefined;
    idle += n.idleCores;
  }
  return idle;
}

/**
 * Per NUMA node, the cores a request bound to one node can have there: idle pool cores for an exclusive request (what
 * the agent's pool takes, the kubelet's static policy alike), pool cores for a shared one. From the snapshot's
 * per-node counts (cpu.numa) when present, else counted from its core list (an exclusive request then counts every
 * pool core: optimistic, the agent refuses and the place flow moves on).
 */
export function coresPerNumaNode(view: NodeView, exclusive: boolean): Map<number, number> {
  const numa = view.snapshot.cpu.numa;
  if (numa === undefined || numa.length === 0) return sharedCoresPerNumaListed(view.snapshot.cpu);
  const perNode = new Map<number, number>();
  for (const n of numa) perNode.set(n.node, exclusive ? (n.idleCores ?? n.sharedCores) : n.sharedCores);
  return perNode;
}

/**
 * Per NUMA node, the vCPUs a request can have there: coresPerNumaNode's cores, or for an exclusive request with thread
 * policy isolate or require its whole idle physical cores (one vCPU each, or every thread) when the snapshot publishes
 * them.
 */
export function vcpusPerNumaNode(view: NodeView, request: AllocationRequest): Map<number, number> {
  const thread = request.cpu.threadPolicy;
  const numa = view.snapshot.cpu.numa;
  if (!request.cpu.exclusive || (thread !== 'isolate' && thread !== 'require') || numa === undefined || numa.length === 0)
    return coresPerNumaNode(view, request.cpu.exclusive);
  const perNode = new Map<number, number>();
  for (const n of numa) {
    if (n.wholeIdleCores === undefined || n.threadsPerCore === undefined) return coresPerNumaNode(view, true);
    perNode.set(n.node, n.wholeIdleCores * (thread === 'isolate' ? 1 : n.threadsPerCore));
  }
  return perNode;
}

/**
 * Whether an exclusive request with thread policy isolate or require fits the whole idle physical cores the snapshot
 * publishes per NUMA node (cpu.numa's wholeIdleCores and threadsPerCore), as the agent's whole-core selector takes them:
 * isolate one vCPU per whole idle core, its other threads held idle (and taken out of the shared pool too); require
 * every thread of vCPUs / threads cores (a host without SMT, or vCPUs not a whole number of cores, never fits).
 * `oneNode`: within one NUMA node (numa: require). Undefined when the figures are not published (older agents) or the
 * nodes' cores differ in threads.
 */
export function wholeCoresFit(view: NodeView, vcpus: number, threadPolicy: 'isolate' | 'require', oneNode: boolean): boolean | undefined {
  const numa = view.snapshot.cpu.numa;
  if (numa === undefined || numa.length === 0) return undefined;
  let threads = -1;
  for (const n of numa) {
    if (n.wholeIdleCores === undefined || n.threadsPerCore === undefined) return undefined;
    threads = threads < 0 || threads === n.threadsPerCore ? n.threadsPerCore : 0;
  }
  if (threads <= 0) return undefined;
  if (threadPolicy === 'require' && (threads === 1 || vcpus % threads !== 0)) return false;
  let units = 0;
  for (const n of numa) {
    const here = (n.wholeIdleCores ?? 0) * (threadPolicy === 'isolate' ? 1 : threads);
    units = oneNode ? Math.max(units, here) : units + here;
  }
  if (units < vcpus) return false;
  // The shared pool must still hold what shared grants have, without every core taken (isolate's siblings too).
  const taken = threadPolicy === 'isolate' ? vcpus * threads : vcpus;
  const committed = view.snapshot.cpu.sharedVcpusCommitted;
  return sharedCoreCount(view) - Math.ceil((committed * 100) / cpuOvercommitPercent(view)) >= taken;
}

/** The most shared cores any single NUMA node has (what `numa: require` can hope for on this node). */
export function largestNumaSharedCores(view: NodeView): number {
  return Math.max(0, ...coresPerNumaNode(view, false).values());
}

/** The most idle cores any single NUMA node has (what an exclusive request with `numa: require` can have there). */
export function largestNumaIdleCores(view: NodeView): number {
  return Math.max(0, ...coresPerNumaNode(view, true).values());
}

/** Capacity that releasing some allocations gives back: memory, shared-mode vCPUs, exclusive cores. */
export interface Freed {
  readonly memoryMiB: number;
  readonly sharedVcpus: number;
  readonly exclusiveCores: number;
}

export const NOTHING_FREED: Freed = { memoryMiB: 0, sharedVcpus: 0, exclusiveCores: 0 };

/**
 * What the node could take once `freed` is released, by the same arithmetic as the figures above (with nothing freed
 * they are freeMemoryMiB, sharedVcpuFit and idleSharedCores): exclusive cores released go back to the shared pool at the
 * node's overcommit ratio.
 */
export function roomAfter(view: NodeView, freed: Freed): Omit<CapacityEntry, 'nodeId' | 'salt'> {
  const cpu = view.snapshot.cpu;
  const percent = cpuOvercommitPercent(view);
  const committed = cpu.sharedVcpusCommitted - freed.sharedVcpus;
  const capacity = cpu.sharedVcpusCapacity + Math.floor((freed.exclusiveCores * percent) / 100);
  return {
    freeMemoryMiB: freeMemoryMiB(view) + freed.memoryMiB,
    sharedVcpuFit: Math.max(0, Math.min(capacity - committed, cpu.sharedCores + freed.exclusiveCores)),
    idleCores: idleAfter(view, freed, Math.max(0, sharedCoreCount(view) + freed.exclusiveCores - Math.ceil((committed * 100) / percent))),
  };
}

/**
 * Idle cores once `freed` is released, bounded by the published idle count (when there is one) plus the exclusive cores
 * released and at most one core per shared vCPU released (a core is idle once nothing is homed on it).
 */
function idleAfter(view: NodeView, freed: Freed, byPool: number): number {
  const idle = publishedIdleCores(view);
  return idle === undefined ? byPool : Math.min(byPool, idle + freed.exclusiveCores + freed.sharedVcpus);
}

/**
 * What evicting every preemptible allocation of priority `level` or below would free, from the snapshot's per-priority
 * figures (nothing for a snapshot without them: an older agent's node is never planned on).
 */
export function evictableUpTo(view: NodeView, level: number): Freed {
  let memoryMiB = 0;
  let sharedVcpus = 0;
  let exclusiveCores = 0;
  for (const p of view.snapshot.priorities ?? []) {
    if (p.priority > level) break; // ascending
    memoryMiB += p.memoryMiB;
    sharedVcpus += p.sharedVcpus;
    exclusiveCores += p.exclusiveCores;
  }
  return { memoryMiB, sharedVcpus, exclusiveCores };
}
