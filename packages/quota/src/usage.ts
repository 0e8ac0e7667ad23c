import { z } from 'zod';
import { HugepagesRequestSchema, MemoryMiBSchema, NodeIdSchema, VcpuCountSchema, type HugepagesRequest } from '@allot/core';

/*
 * A tenant's usage across the whole cluster, and the two pure steps that move it: a placement adds one VM, a release
 * takes one away. Both return a new value and never touch their input, so a compare-and-set loop can retry them on a
 * fresh copy of the record without undoing anything.
 */

/**
 * What one tenant holds across the cluster: live VMs, their vCPUs and memory, and VMs per node (for maxVmsPerNode).
 * Nodes where the tenant holds nothing are absent from vmsPerNode, so the record does not grow with dead nodes.
 * Not to be confused with `TenantUsage` of @allot/core, which is one node's per-tenant figures in a usage snapshot.
 */
export const TenantUsageSchema = z.object({
  vms: z.int().min(0),
  vcpus: z.int().min(0),
  memoryMiB: z.int().min(0),
  vmsPerNode: z.record(NodeIdSchema, z.int().min(1)),
  /**
   * MiB of hugepages per page size held by the VMs that asked for them; a size at 0 is absent, and the whole field is
   * absent when none are held (so records written before it, and a recount, read the same).
   */
  hugepagesMiB: z.object({ '2Mi': z.int().min(1).optional(), '1Gi': z.int().min(1).optional() }).optional(),
});
export type TenantUsage = z.infer<typeof TenantUsageSchema>;

/** A page size's key in quotas and usage, kube's suffix: `2Mi`, `1Gi`. */
type HugepageSize = '2Mi' | '1Gi';

function hugepageSizeOf(pageSizeMiB: number): HugepageSize {
  return pageSizeMiB === 1024 ? '1Gi' : '2Mi';
}

/** The MiB of hugepages a placement (or a quota request) holds, and of which size (undefined: none). */
export function hugepagesOf(held: { readonly hugepages?: HugepagesRequest | undefined }): { size: HugepageSize; mib: number } | undefined {
  const huge = held.hugepages;
  return huge === undefined ? undefined : { size: hugepageSizeOf(huge.pageSizeMiB), mib: huge.pageSizeMiB * huge.count };
}

/** The usage's hugepage figures with `delta` MiB more of `size` (never below 0; zeros and an empty set dropped). */
function withHugepages(current: TenantUsage['hugepagesMiB'], size: HugepageSize, delta: number): TenantUsage['hugepagesMiB'] {
  const next = { ...current, [size]: Math.max(0, (current?.[size] ?? 0) + delta) };
  if (next[size] === 0) delete next[size];
  return Object.keys(next).length === 0 ? undefined : next;
}

/** `usage` with its hugepages moved by `sign` times the placement's (a placement without hugepages: unchanged). */
export function countHugepages(usage: TenantUsage, placement: Placement, sign: 1 | -1): TenantUsage {
  const held = hugepagesOf(placement);
  if (held === undefined) return usage;
  const { hugepagesMiB: _old, ...rest } = usage;
  const next = withHugepages(usage.hugepagesMiB, held.size, sign * held.mib);
  return next === undefined ? rest : { ...rest, hugepagesMiB: next };
}

/** One VM's share of a tenant's usage: where it runs and what it holds. */
export const PlacementSchema = z.object({
  nodeId: NodeIdSchema,
  memoryMiB: MemoryMiBSchema,
  vcpus: VcpuCountSchema,
  /** The VM's hugepages (its request's memory.hugepages), counted apart from memoryMiB. */
  hugepages: HugepagesRequestSchema.optional(),
});
export type Placement = z.infer<typeof PlacementSchema>;

/** The usage of a tenant that holds nothing. */
export function emptyUsage(): TenantUsage {
  return { vms: 0, vcpus: 0, memoryMiB: 0, vmsPerNode: {} };
}

/**
 * The usage after one more VM. The placement must be valid (PlacementSchema; checkQuota validates it): an invalid
 * one here is a caller's bug and throws, rather than writing a fractional or negative figure into a quota record.
 */
export function applyPlacement(usage: TenantUsage, placement: Placement): TenantUsage {
  assertPlacement(placement);
  const onNode = usage.vmsPerNode[placement.nodeId] ?? 0;
  const next: TenantUsage = {
    ...usage,
    vms: usage.vms + 1,
    vcpus: usage.vcpus + placement.vcpus,
    memoryMiB: usage.memoryMiB + placement.memoryMiB,
    vmsPerNode: { ...usage.vmsPerNode, [placement.nodeId]: onNode + 1 },
  };
  return countHugepages(next, placement, 1);
}

/**
 * The usage after one VM leaves. Usage never goes negative:
 * - a release on a node where the tenant holds no VM is unknown and changes nothing: the very same object is returned,
 *   so a caller can tell (`applyRelease(u, p) === u`) and skip its write;
 * - a release larger than what is counted (figures drifted) stops at zero instead of going below it.
 * Exact accounting of which VM is released is the placement intent's (apps/coordinator, IntentStore).
 */
export function applyRelease(usage: TenantUsage, placement: Placement): TenantUsage {
  assertPlacement(placement);
  const onNode = usage.vmsPerNode[placement.nodeId] ?? 0;
  if (onNode === 0) return usage;
  const vmsPerNode = { ...usage.vmsPerNode };
  if (onNode === 1) delete vmsPerNode[placement.nodeId];
  else vmsPerNode[placement.nodeId] = onNode - 1;
  const next: TenantUsage = {
    ...usage,
    vms: Math.max(0, usage.vms - 1),
    vcpus: Math.max(0, usage.vcpus - placement.vcpus),
    memoryMiB: Math.max(0, usage.memoryMiB - placement.memoryMiB),
    vmsPerNode,
  };
  return countHugepages(next, placement, -1);
}

function assertPlacement(placement: Placement): void {
  if (
    !Number.isSafeInteger(placement.memoryMiB) ||
    placement.memoryMiB < 0 ||
    !Number.isSafeInteger(placement.vcpus) ||
    placement.vcpus < 0
  ) {
    throw new RangeError(
      `invalid placement figures (memoryMiB ${placement.memoryMiB}, vcpus ${placement.vcpus}): validate with PlacementSchema first`,
    );
  }
}
