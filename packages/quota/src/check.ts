import {
  err,
  ok,
  HugepagesRequestSchema,
  MemoryMiBSchema,
  NodeIdSchema,
  VcpuCountSchema,
  type Result,
  type TenantQuota,
} from '@allot/core';
import { z } from 'zod';
import { hugepagesOf, type TenantUsage } from './usage.ts';

/** What a tenant asks for: one VM of this size, on this node when it is already chosen. */
export const QuotaRequestSchema = z.object({
  memoryMiB: MemoryMiBSchema,
  vcpus: VcpuCountSchema,
  hugepages: HugepagesRequestSchema.optional(),
  /** Without a node, maxVmsPerNode is not checked: the placement checks it per candidate (vmsPerNodeAllows). */
  nodeId: NodeIdSchema.optional(),
});
export type QuotaRequest = z.infer<typeof QuotaRequestSchema>;

/** The limits of a TenantQuota, in the order checkQuota checks them. */
export const QUOTA_LIMITS = ['maxVms', 'maxVmsPerNode', 'maxVcpus', 'maxMemoryMiB', 'maxHugepagesMiB'] as const;
export type QuotaLimit = (typeof QUOTA_LIMITS)[number];

interface Crossing {
  readonly limit: QuotaLimit;
  /** maxHugepagesMiB: which page size. */
  readonly hugepages?: string;
  readonly limitValue: number;
  readonly current: number;
  readonly requested: number;
  readonly message: string;
}

/**
 * Would one more VM of this size keep the tenant within every limit? An absent limit is unlimited; a limit of 0 allows
 * nothing. A refusal is quota_exceeded naming the first limit crossed (in QUOTA_LIMITS order) with its figures, plus
 * every limit crossed in details.exceeded, so that a caller shrinking the request knows all it has to fix.
 * Invalid request figures are invalid_request naming the field.
 */
export function checkQuota(quota: TenantQuota, usage: TenantUsage, request: QuotaRequest): Result<void> {
  const parsed = QuotaRequestSchema.safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.map(String).join('.') || '(root)';
    return err('invalid_request', `quota check: ${field}: ${issue?.message ?? 'invalid'}`, { field });
  }
  const crossings = quotaCrossings(quota, usage, parsed.data);
  const first = crossings[0];
  if (first === undefined) return ok(undefined);
  return err('quota_exceeded', `tenant ${quota.tenantId}: ${first.message}`, {
    tenantId: quota.tenantId,
    limit: first.limit,
    ...(first.hugepages === undefined ? {} : { hugepages: first.hugepages }),
    limitValue: first.limitValue,
    current: first.current,
    requested: first.requested,
    exceeded: crossings.map((c) => c.limit),
  });
}

/** Whether the tenant may put one more VM on this node under maxVmsPerNode: a filter for placement candidates. */
export function vmsPerNodeAllows(quota: TenantQuota, usage: TenantUsage, nodeId: string): boolean {
  return quota.maxVmsPerNode === undefined || (usage.vmsPerNode[nodeId] ?? 0) + 1 <= quota.maxVmsPerNode;
}

function quotaCrossings(quota: TenantQuota, usage: TenantUsage, request: QuotaRequest): Crossing[] {
  const crossings: Crossing[] = [];
  const crosses = (limitValue: number | undefined, current: number, requested: number): limitValue is number =>
    limitValue !== undefined && current + requested > limitValue;

  if (crosses(quota.maxVms, usage.vms, 1)) {
    crossings.push({
      limit: 'maxVms',
      limitValue: quota.maxVms,
      current: usage.vms,
      requested: 1,
      message: `VMs ${usage.vms} + 1 would exceed the limit of ${quota.maxVms}`,
    });
  }
  if (request.nodeId !== undefined) {
    const onNode = usage.vmsPerNode[request.nodeId] ?? 0;
    if (crosses(quota.maxVmsPerNode, onNode, 1)) {
      crossings.push({
        limit: 'maxVmsPerNode',
        limitValue: quota.maxVmsPerNode,
        current: onNode,
        requested: 1,
        message: `VMs on node ${request.nodeId} ${onNode} + 1 would exceed the per-node limit of ${quota.maxVmsPerNode}`,
      });
    }
  }
  if (crosses(quota.maxVcpus, usage.vcpus, request.vcpus)) {
    crossings.push({
      limit: 'maxVcpus',
      limitValue: quota.maxVcpus,
      current: usage.vcpus,
      requested: request.vcpus,
      message: `vCPUs ${usage.vcpus} + ${request.vcpus} would exceed the limit of ${quota.maxVcpus}`,
    });
  }
  if (crosses(quota.maxMemoryMiB, usage.memoryMiB, request.memoryMiB)) {
    crossings.push({
      limit: 'maxMemoryMiB',
      limitValue: quota.maxMemoryMiB,
      current: usage.memoryMiB,
      requested: request.memoryMiB,
      message: `memory ${usage.memoryMiB} MiB + ${request.memoryMiB} MiB would exceed the limit of ${quota.maxMemoryMiB} MiB`,
    });
  }
  const huge = hugepagesOf(request);
  if (huge !== undefined) {
    const current = usage.hugepagesMiB?.[huge.size] ?? 0;
    const limitValue = quota.maxHugepagesMiB?.[huge.size];
    if (crosses(limitValue, current, huge.mib)) {
      crossings.push({
        limit: 'maxHugepagesMiB',
        hugepages: huge.size,
        limitValue,
        current,
        requested: huge.mib,
        message: `hugepages-${huge.size} ${current} MiB + ${huge.mib} MiB would exceed the limit of ${limitValue} MiB`,
      });
    }
  }
  return crossings;
}
