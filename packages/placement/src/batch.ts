import {
  ok,
  sharedCoresPerNumaListed,
  tenantGroupKey,
  type AllocationRequest,
  type NodeView,
  type NumaCores,
  type NumaMemoryUsage,
  type PlacementOptions,
  type Result,
} from '@allot/core';
import { decide } from './decide.ts';
import { cpuOvercommitPercent } from './node-capacity.ts';
import type { CandidateSource, CapacityNeed, ClusterSnapshot, DomainTally, NodeId, NodeStateReason } from './snapshot.ts';
import type { RandomSource } from './random.ts';
import type { PlacementContext, PlacementDecision } from './types.ts';

/*
 * A batch (a gang: a tenant's cluster placed all or nothing, after Nomad's task groups, kube's coscheduling PodGroup and
 * Nova's multi-create min_count) decided on ONE snapshot: member by member, each decision reserving what it takes in an
 * overlay of the snapshot, so later members see earlier ones (capacity, the anti-affinity group's count, the tenant's
 * VMs per node, the domains' tallies). The snapshot itself is never changed.
 */

/** Where each member goes (in the members' order), or the first member nothing fits, with its decision's reasons. */
export type BatchDecision =
  | {
      readonly fits: true;
      readonly nodes: readonly NodeId[];
      /** Each member's other candidates, best first (for a member whose node refuses). */
      readonly alternatives: readonly (readonly NodeId[])[];
    }
  | { readonly fits: false; readonly index: number; readonly decision: PlacementDecision };

/**
 * Decides every member on `snapshot` as the place flow decides one (decide()), the members in order, each on the
 * snapshot with the ones before it reserved. All or nothing: the first member nothing fits refuses the batch.
 * Cost: N decisions, each O(k log n) as decide's, plus O(1) per reservation.
 */
export function decideBatch(
  snapshot: ClusterSnapshot,
  members: readonly AllocationRequest[],
  options: PlacementOptions,
  ctx: PlacementContext,
): Result<BatchDecision> {
  const overlay = new ReservingSnapshot(snapshot);
  const nodes: NodeId[] = [];
  const alternatives: NodeId[][] = [];
  let cursor = ctx.roundRobinCursor;
  for (const [index, request] of members.entries()) {
    const decided = decide(overlay, request, options, cursor === undefined ? ctx : { ...ctx, roundRobinCursor: cursor });
    if (!decided.ok) return decided;
    const [best, ...rest] = decided.value.candidates;
    if (best === undefined) return ok({ fits: false, index, decision: decided.value });
    overlay.reserve(best, request, options.group === undefined ? undefined : tenantGroupKey(request.tenantId, options.group.name));
    nodes.push(best);
    alternatives.push(rest);
    cursor = best;
  }
  return ok({ fits: true, nodes, alternatives });
}

/**
 * A snapshot with some members reserved on top. Filters and scorers read nodes through `get`, so they see the
 * reservations exactly; the index's walks are the underlying snapshot's (a reserved node is still visited at its old
 * free-memory position, then judged on what it has left), and so are the counts a refusal's message takes from the
 * index for nodes it never visited. Reserved: memory, shared vCPUs or idle cores (from the NUMA node the agent's pool
 * takes them from: exclusiveCoresTaken), the group (per tenant), the tenant's VMs, the
 * allocation count, hugepages and memory pinned to a named NUMA node (withNumaReservation). Not reserved: the
 * per-node memory of a request bound to one node by its cores alone (the agent refuses what a node no longer holds).
 */
class ReservingSnapshot implements ClusterSnapshot {
  readonly #base: ClusterSnapshot;
  readonly #reserved = new Map<NodeId, NodeView>();
  /** What the reservations add to each node's tally (the domains' tallies are sums over their nodes). */
  readonly #added = new Map<NodeId, { groups: Map<string, number>; tenants: Map<string, number> }>();

  constructor(base: ClusterSnapshot) {
    this.#base = base;
  }

  reserve(nodeId: NodeId, request: AllocationRequest, group: string | undefined): void {
    const view = this.get(nodeId);
    if (view === undefined) return;
    this.#reserved.set(nodeId, withReservation(view, request, group));
    const added = this.#added.get(nodeId) ?? { groups: new Map<string, number>(), tenants: new Map<string, number>() };
    if (group !== undefined) added.groups.set(group, (added.groups.get(group) ?? 0) + 1);
    added.tenants.set(request.tenantId, (added.tenants.get(request.tenantId) ?? 0) + 1);
    this.#added.set(nodeId, added);
  }

  get size(): number {
    return this.#base.size;
  }
  get schedulableCount(): number {
    return this.#base.schedulableCount;
  }
  get(nodeId: NodeId): NodeView | undefined {
    return this.#reserved.get(nodeId) ?? this.#base.get(nodeId);
  }
  *nodes(): IterableIterator<NodeView> {
    for (const n of this.#base.nodes()) yield this.#reserved.get(n.nodeId) ?? n;
  }
  stateCounts(): Readonly<Record<NodeStateReason, number>> {
    return this.#base.stateCounts();
  }
  countShortOfMemory(memoryMiB: number): number {
    return this.#base.countShortOfMemory(memoryMiB);
  }
  byFreeMemory(need: CapacityNeed, order: 'ascending' | 'descending' | 'random', random?: RandomSource): CandidateSource {
    return this.#base.byFreeMemory(need, order, random);
  }
  inStableOrder(need: CapacityNeed, after?: NodeId): CandidateSource {
    return this.#base.inStableOrder(need, after);
  }
  stableRank(nodeId: NodeId, inclusive?: boolean): number {
    return this.#base.stableRank(nodeId, inclusive);
  }
  domains(label: string): ReadonlyMap<string | null, DomainTally> {
    const base = this.#base.domains(label);
    if (this.#added.size === 0) return base;
    const out = new Map<string | null, { groups: Map<string, number>; tenants: Map<string, number> }>();
    for (const [value, tally] of base) out.set(value, { groups: new Map(tally.groups), tenants: new Map(tally.tenants) });
    for (const [nodeId, added] of this.#added) {
      const value = this.get(nodeId)?.snapshot.labels[label] ?? null;
      const tally = out.get(value) ?? { groups: new Map<string, number>(), tenants: new Map<string, number>() };
      for (const [g, n] of added.groups) tally.groups.set(g, (tally.groups.get(g) ?? 0) + n);
      for (const [t, n] of added.tenants) tally.tenants.set(t, (tally.tenants.get(t) ?? 0) + n);
      out.set(value, tally);
    }
    return out;
  }
  schedulableDomains(label: string): IterableIterator<string | null> {
    return this.#base.schedulableDomains(label);
  }
  byFreeMemoryInDomain(label: string, value: string | null, need: CapacityNeed, order: 'ascending' | 'descending'): CandidateSource {
    return this.#base.byFreeMemoryInDomain(label, value, need, order);
  }
  preemptionLevels(): number[] {
    return this.#base.preemptionLevels();
  }
  byRoomEvicting(level: number, need: CapacityNeed, order: 'ascending' | 'descending'): CandidateSource {
    return this.#base.byRoomEvicting(level, need, order);
  }
}

/** The node's view with one more allocation of `request` on it, by the agent's arithmetic (node-capacity.ts). */
function withReservation(view: NodeView, request: AllocationRequest, group: string | undefined): NodeView {
  const s = view.snapshot;
  const { memoryMiB, vcpus } = request.resources;
  let cpu = { ...s.cpu, committed: s.cpu.committed + vcpus };
  if (request.cpu.exclusive) {
    // The cores leave the shared pool: the pool's capacity shrinks by what they held at the node's overcommit ratio.
    const taken = exclusiveCoresTaken(s.cpu, request);
    const left = new Map(taken);
    const cores = s.cpu.cores.map((c) => {
      const n = left.get(c.numa) ?? 0;
      if (c.role !== 'shared' || n === 0) return c;
      left.set(c.numa, n - 1);
      return { ...c, role: 'exclusive' as const };
    });
    cpu = {
      ...cpu,
      cores,
      ...(s.cpu.numa === undefined ? {} : { numa: s.cpu.numa.map((n) => withCoresTaken(n, taken.get(n.node) ?? 0, request)) }),
      sharedCores: Math.max(0, s.cpu.sharedCores - vcpus),
      exclusiveCores: s.cpu.exclusiveCores + vcpus,
      sharedVcpusCapacity: Math.max(0, s.cpu.sharedVcpusCapacity - Math.floor((vcpus * cpuOvercommitPercent(view)) / 100)),
    };
  } else cpu = { ...cpu, sharedVcpusCommitted: s.cpu.sharedVcpusCommitted + vcpus };
  const tenant = s.tenants[request.tenantId] ?? { vms: 0, memoryMiB: 0, vcpus: 0 };
  return {
    ...view,
    snapshot: {
      ...s,
      memory: {
        ...s.memory,
        committed: s.memory.committed + memoryMiB,
        ...(s.memory.numa === undefined ? {} : { numa: withNumaReservation(s.memory.numa, request) }),
      },
      cpu,
      tenants: {
        ...s.tenants,
        [request.tenantId]: { vms: tenant.vms + 1, memoryMiB: tenant.memoryMiB + memoryMiB, vcpus: tenant.vcpus + vcpus },
      },
      groups: group === undefined ? s.groups : { ...s.groups, [group]: (s.groups[group] ?? 0) + 1 },
      allocationCount: s.allocationCount + 1,
    },
  };
}

/**
 * Per NUMA node, the cores an exclusive request takes, as the agent's pool takes them: all from the first node whose
 * idle cores hold them (the one node of `numa: require`, and what the pool prefers otherwise), else node by node.
 * Counted from the per-node figures (cpu.numa), else from the core list's shared cores.
 */
function exclusiveCoresTaken(cpu: NodeView['snapshot']['cpu'], request: AllocationRequest): Map<number, number> {
  const idle = new Map<number, number>();
  if (cpu.numa !== undefined && cpu.numa.length > 0) for (const n of cpu.numa) idle.set(n.node, n.idleCores ?? n.sharedCores);
  else for (const [node, n] of sharedCoresPerNumaListed(cpu)) idle.set(node, n);
  const vcpus = request.resources.vcpus;
  const whole = [...idle].find(([, n]) => n >= vcpus);
  if (whole !== undefined) return new Map([[whole[0], vcpus]]);
  const taken = new Map<number, number>();
  let left = vcpus;
  for (const [node, n] of idle) {
    const k = Math.min(n, left);
    if (k > 0) taken.set(node, k);
    left -= k;
  }
  return taken;
}

/** One NUMA node's core counts with `k` of its idle cores made exclusive (whole cores: as many, at most, are broken). */
function withCoresTaken(n: NumaCores, k: number, request: AllocationRequest): NumaCores {
  if (k === 0) return n;
  const wholeTaken = request.cpu.threadPolicy === 'require' && (n.threadsPerCore ?? 0) > 1 ? Math.ceil(k / (n.threadsPerCore ?? 1)) : k;
  return {
    ...n,
    sharedCores: Math.max(0, n.sharedCores - k),
    exclusiveCores: n.exclusiveCores + k,
    ...(n.idleCores === undefined ? {} : { idleCores: Math.max(0, n.idleCores - k) }),
    ...(n.wholeIdleCores === undefined ? {} : { wholeIdleCores: Math.max(0, n.wholeIdleCores - wholeTaken) }),
  };
}

/**
 * The per-NUMA-node figures with the request's hugepages (and, naming a node, its memory) taken from the node the agent
 * takes them from: the named one, else the first with the pages free (the agent may choose another; it refuses what
 * no node holds). Memory that floats is counted in the host's figure only.
 */
function withNumaReservation(numa: readonly NumaMemoryUsage[], request: AllocationRequest): NumaMemoryUsage[] {
  const named = request.memory?.numaNode;
  const huge = request.memory?.hugepages;
  const freePages = (n: NumaMemoryUsage) =>
    huge === undefined ? 0 : (n.hugepages.find((p) => p.pageSizeMiB === huge.pageSizeMiB)?.free ?? 0);
  const at = named ?? (huge === undefined ? undefined : numa.find((n) => freePages(n) >= huge.count)?.node);
  const memoryMiB = named === undefined ? 0 : request.resources.memoryMiB;
  return numa.map((n) =>
    n.node !== at
      ? n
      : {
          ...n,
          pinnedMiB: n.pinnedMiB + memoryMiB,
          freeMiB: Math.max(0, n.freeMiB - memoryMiB),
          hugepages:
            huge === undefined
              ? n.hugepages
              : n.hugepages.map((p) =>
                  p.pageSizeMiB === huge.pageSizeMiB ? { ...p, used: p.used + huge.count, free: Math.max(0, p.free - huge.count) } : p,
                ),
        },
  );
}
