import { tenantGroupKey, type LabelConstraint, type NodeView } from '@allot/core';
import {
  freeMemoryMiB,
  idleSharedCores,
  largestNumaIdleCores,
  largestNumaSharedCores,
  nodeStateReason,
  sharedVcpuFit,
  wholeCoresFit,
} from './node-capacity.ts';
import { affinityLoads, hasRequiredAffinity, requiredAffinity } from './affinity.ts';
import { NUMA_MEMORY_PLUGIN } from './numa-memory.ts';
import { CPU_OVERCOMMIT_PLUGIN } from './overcommit.ts';
import { taintToleration } from './taints.ts';
import { spreadLoad, topologySpread } from './topology-spread.ts';
import type { Filter, FilterPlugin, StepContext } from './types.ts';

/** Reasons that do not depend on the request's details (constraint and group reasons are built from them). */
export const INSUFFICIENT_MEMORY = 'Insufficient memory';
export const INSUFFICIENT_CPU = 'Insufficient cpu';
export const INSUFFICIENT_IDLE_CORES = 'Insufficient idle cores';
export const INSUFFICIENT_WHOLE_CORES = 'Insufficient whole idle physical cores';
export const NUMA_TOO_SMALL = 'NUMA node too small';
export const NUMA_IDLE_CORES = 'Insufficient idle cores on one NUMA node';
export const TENANT_QUOTA_PER_NODE = 'tenant quota: max VMs per node';
export const NOT_THE_NAMED_NODE = 'not the named node';
export const ALREADY_TRIED = 'already tried';
export const NOT_EXAMINED = 'not examined';
export { NODE_CORDONED, NODE_NOT_READY, NODE_UNHEALTHY } from './node-capacity.ts';

const pass = null;

/** Ready (not suspect or lost), not cordoned, not unhealthy: one filter so a node gets one state reason. */
export const nodeSchedulable: Filter = (_ctx, node) => {
  const reason = nodeStateReason(node);
  return reason === null ? pass : { reason };
};

export const fitsMemory: Filter = (ctx, node) => (freeMemoryMiB(node) >= ctx.demand.memoryMiB ? pass : { reason: INSUFFICIENT_MEMORY });

/**
 * CPU: a shared request needs free shared vCPUs and no more vCPUs than shared cores; an exclusive one needs that many
 * idle shared cores (an approximation from the snapshot; the agent refuses when it was optimistic).
 */
export const fitsCpu: Filter = (ctx, node) => {
  if (!ctx.demand.exclusive) return sharedVcpuFit(node) >= ctx.demand.vcpus ? pass : { reason: INSUFFICIENT_CPU };
  if (idleSharedCores(node) < ctx.demand.vcpus) return { reason: INSUFFICIENT_IDLE_CORES };
  const thread = wholeCoresPolicy(ctx);
  return thread === undefined || wholeCoresFit(node, ctx.demand.vcpus, thread, false) !== false
    ? pass
    : { reason: INSUFFICIENT_WHOLE_CORES };
};

/** The thread policy of an exclusive request that takes only whole idle physical cores, if it has one. */
function wholeCoresPolicy(ctx: StepContext): 'isolate' | 'require' | undefined {
  const thread = ctx.request.cpu.threadPolicy;
  return ctx.demand.exclusive && (thread === 'isolate' || thread === 'require') ? thread : undefined;
}

/**
 * numa: require needs one NUMA node with as many shared cores as vCPUs, or for an exclusive request as many idle cores
 * (what the agent's pool takes; cores free in total but split over nodes do not do) (prefer and any always pass).
 */
export const fitsNuma: Filter = (ctx, node) => {
  if (ctx.demand.numa !== 'require') return pass;
  if (!ctx.demand.exclusive) return largestNumaSharedCores(node) >= ctx.demand.vcpus ? pass : { reason: NUMA_TOO_SMALL };
  if (largestNumaIdleCores(node) < ctx.demand.vcpus) return { reason: NUMA_IDLE_CORES };
  const thread = wholeCoresPolicy(ctx);
  return thread === undefined || wholeCoresFit(node, ctx.demand.vcpus, thread, true) !== false ? pass : { reason: NUMA_IDLE_CORES };
};

/** The reason a constraint reports, e.g. `label constraint zone In [z1,z2]`. */
export function constraintReason(c: LabelConstraint): string {
  return c.op === 'In' || c.op === 'NotIn'
    ? `label constraint ${c.key} ${c.op} [${c.values.join(',')}]`
    : `label constraint ${c.key} ${c.op}`;
}

export function labelsSatisfy(labels: Readonly<Record<string, string>>, c: LabelConstraint): boolean {
  const has = Object.hasOwn(labels, c.key);
  switch (c.op) {
    case 'In':
      return has && c.values.includes(labels[c.key] as string);
    case 'NotIn':
      // After Kubernetes: a node without the label is not in the excluded set.
      return !has || !c.values.includes(labels[c.key] as string);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** One filter per constraint, so the message names the one that failed. */
export function labelConstraint(c: LabelConstraint): Filter {
  const reason = { reason: constraintReason(c) };
  return (_ctx, node) => (labelsSatisfy(node.snapshot.labels, c) ? pass : reason);
}

export function antiAffinityReason(group: { name: string; maxPerNode: number }): string {
  return `anti-affinity group ${group.name} max ${group.maxPerNode} per node`;
}

/** At most group.maxPerNode live allocations of the request's group (the tenant's own, tenantGroupKey) on one node. */
export const antiAffinity: Filter = (ctx, node) => {
  const group = ctx.options.group;
  if (group === undefined) return pass;
  const here = node.snapshot.groups[tenantGroupKey(ctx.request.tenantId, group.name)] ?? 0;
  return here < group.maxPerNode ? pass : { reason: antiAffinityReason(group) };
};

/** The tenant's per-node VM limit, when its quota has one. */
export const tenantQuotaPerNode: Filter = (ctx, node) => {
  if (ctx.maxVmsPerNode === undefined) return pass;
  const vms = node.snapshot.tenants[ctx.request.tenantId]?.vms ?? 0;
  return vms < ctx.maxVmsPerNode ? pass : { reason: TENANT_QUOTA_PER_NODE };
};

/** manual: only the named node passes. */
export const namedNode: Filter = (ctx, node) => (node.nodeId === ctx.options.nodeId ? pass : { reason: NOT_THE_NAMED_NODE });

/** Not one of the nodes already tried for this request (they refused or timed out). */
export const notTried: Filter = (ctx, node) => (ctx.exclude?.has(node.nodeId) ? { reason: ALREADY_TRIED } : pass);

/** Every label constraint of the request, in its order: the reason names the first one the node fails. */
export const labelConstraints: Filter = (ctx, node) => {
  for (const c of ctx.options.constraints) if (!labelsSatisfy(node.snapshot.labels, c)) return { reason: constraintReason(c) };
  return pass;
};

/**
 * The registered filter plugins, in the order their reasons take precedence (a node is counted under its first
 * failure, as kube-scheduler's filters run in the profile's order). The plugins `answeredByIndex` (node state, memory,
 * CPU) come first: the free-capacity index answers them, in this order, for every node a walk never visits, which is
 * what keeps the refusal counts exact without visiting. The rest only a visit can answer.
 */
export const FILTER_PLUGINS: readonly FilterPlugin[] = [
  { name: 'NodeSchedulable', answeredByIndex: true, filter: nodeSchedulable },
  { name: 'FitsMemory', answeredByIndex: true, capacity: true, filter: fitsMemory },
  { name: 'FitsCpu', answeredByIndex: true, capacity: true, filter: fitsCpu },
  { name: 'NotTried', appliesTo: (ctx) => (ctx.exclude?.size ?? 0) > 0, filter: notTried },
  { name: 'TaintToleration', filter: taintToleration },
  { name: 'FitsNuma', appliesTo: (ctx) => ctx.demand.numa === 'require', capacity: true, filter: fitsNuma },
  NUMA_MEMORY_PLUGIN,
  CPU_OVERCOMMIT_PLUGIN,
  { name: 'LabelConstraints', appliesTo: (ctx) => ctx.options.constraints.length > 0, filter: labelConstraints },
  { name: 'AntiAffinity', appliesTo: (ctx) => ctx.options.group !== undefined, filter: antiAffinity },
  {
    name: 'TopologySpread',
    appliesTo: (ctx) => ctx.options.topologySpread !== undefined,
    prepare: (snapshot, ctx) => ({
      spreadLoad: spreadLoad(snapshot, ctx, (ctx.options.topologySpread as { topologyKey: string }).topologyKey),
    }),
    filter: topologySpread,
  },
  {
    name: 'RequiredAffinity',
    appliesTo: hasRequiredAffinity,
    prepare: (snapshot, ctx) => ({ affinityLoads: affinityLoads(snapshot, ctx) }),
    filter: requiredAffinity,
  },
  { name: 'TenantQuotaPerNode', appliesTo: (ctx) => ctx.maxVmsPerNode !== undefined, filter: tenantQuotaPerNode },
];

/** The manual strategy's own filter. */
export const NAMED_NODE: FilterPlugin = { name: 'NamedNode', filter: namedNode };

/** PreFilter: the plugins that have something to say about this request, in precedence order. */
export function filtersFor(ctx: StepContext, plugins: readonly FilterPlugin[] = FILTER_PLUGINS): FilterPlugin[] {
  return plugins.filter((p) => p.appliesTo === undefined || p.appliesTo(ctx));
}

/** The first reason the node fails, or null when it passes them all. */
export function firstFailure(filters: readonly FilterPlugin[], ctx: StepContext, node: NodeView): string | null {
  for (const f of filters) {
    const r = f.filter(ctx, node);
    if (r !== null) return r.reason;
  }
  return null;
}
