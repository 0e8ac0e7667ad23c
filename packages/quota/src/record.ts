import { err, ok, TenantIdSchema, TenantQuotaSchema, type Result, type TenantQuota } from '@allot/core';
import { z } from 'zod';
import { checkQuota } from './check.ts';
import { applyPlacement, applyRelease, countHugepages, emptyUsage, TenantUsageSchema, type Placement, type TenantUsage } from './usage.ts';

/*
 * A tenant's usage record: the counters the coordinators keep in KV, one key per tenant, and the tenant's quota limits
 * beside them. Counters only (no list of placements): the record has the same size with 10 or 100,000 VMs.
 * Idempotency by request id is the placement intent's job: the coordinator changes the counters only in the same
 * atomic batch as an intent transition that changes whether the intent counts, so the counters equal the sum of the
 * counting intents by construction (apps/coordinator/README.md, "Quotas").
 *
 * The limits live in the same record rather than a sibling key: admission reads one key, and its revision covers both
 * the counters and the limits, so a limit lowered on one coordinator and a placement admitted on another are ordered by
 * the same compare-and-set; and a quota set for a tenant that already placed VMs lands on counters that are already true.
 *
 * Every function here is pure: (record, input) -> new record.
 */

export const TenantUsageRecordSchema = z
  .object({
    version: z.literal(2),
    tenantId: TenantIdSchema,
    /** The tenant's limits and rates; absent: no quota (everything is counted, nothing is refused). */
    quota: TenantQuotaSchema.optional(),
    usage: TenantUsageSchema,
  })
  .refine((r) => r.quota === undefined || r.quota.tenantId === r.tenantId, {
    message: 'quota.tenantId must be the record tenantId',
    path: ['quota', 'tenantId'],
  });
export type TenantUsageRecord = z.infer<typeof TenantUsageRecordSchema>;

/** The record of a tenant that holds nothing and has no quota yet. */
export function emptyUsageRecord(tenantId: string): TenantUsageRecord {
  return { version: 2, tenantId, usage: emptyUsage() };
}

/**
 * A new quota for the record; usage stays as counted. Lowering a limit below current usage refuses new placements
 * until enough is released; it evicts nothing.
 */
export function withQuota(record: TenantUsageRecord, quota: TenantQuota): Result<TenantUsageRecord> {
  if (quota.tenantId !== record.tenantId) {
    return err('invalid_request', `quota.tenantId: ${quota.tenantId} is not the record's tenant ${record.tenantId}`, {
      field: 'quota.tenantId',
    });
  }
  return ok({ ...record, quota });
}

/** One more VM, refused with quota_exceeded (naming the limit and the figures) when it would cross a limit. */
export function admitPlacement(record: TenantUsageRecord, placement: Placement): Result<TenantUsageRecord> {
  if (record.quota !== undefined) {
    const fits = checkQuota(record.quota, record.usage, placement);
    if (!fits.ok) return fits;
  }
  return ok({ ...record, usage: applyPlacement(record.usage, placement) });
}

/** The same VM counted on another node (the place moved after a refusal): only maxVmsPerNode can refuse it. */
export function movePlacement(record: TenantUsageRecord, from: Placement, toNodeId: string): Result<TenantUsageRecord> {
  const to = { ...from, nodeId: toNodeId };
  const without = applyRelease(record.usage, from);
  const max = record.quota?.maxVmsPerNode;
  const onNode = without.vmsPerNode[toNodeId] ?? 0;
  if (max !== undefined && onNode + 1 > max) {
    return err(
      'quota_exceeded',
      `tenant ${record.tenantId}: VMs on node ${toNodeId} ${onNode} + 1 would exceed the per-node limit of ${max}`,
      {
        tenantId: record.tenantId,
        limit: 'maxVmsPerNode',
        limitValue: max,
        current: onNode,
        requested: 1,
        exceeded: ['maxVmsPerNode'],
      },
    );
  }
  return ok({ ...record, usage: applyPlacement(without, to) });
}

/**
 * The same VM with other amounts (a resize): its vCPUs and memory change by the difference; a growth that would cross
 * maxVcpus or maxMemoryMiB is quota_exceeded with the figures (requested = the growth), a shrink is always taken.
 */
export function resizePlacement(record: TenantUsageRecord, from: Placement, to: Placement): Result<TenantUsageRecord> {
  const growth = { memoryMiB: Math.max(0, to.memoryMiB - from.memoryMiB), vcpus: Math.max(0, to.vcpus - from.vcpus) };
  const quota = record.quota;
  const crossed: { limit: 'maxVcpus' | 'maxMemoryMiB'; limitValue: number; current: number; requested: number; message: string }[] = [];
  const { usage } = record;
  if (quota?.maxVcpus !== undefined && growth.vcpus > 0 && usage.vcpus + growth.vcpus > quota.maxVcpus) {
    crossed.push({
      limit: 'maxVcpus',
      limitValue: quota.maxVcpus,
      current: usage.vcpus,
      requested: growth.vcpus,
      message: `vCPUs ${usage.vcpus} + ${growth.vcpus} would exceed the limit of ${quota.maxVcpus}`,
    });
  }
  if (quota?.maxMemoryMiB !== undefined && growth.memoryMiB > 0 && usage.memoryMiB + growth.memoryMiB > quota.maxMemoryMiB) {
    crossed.push({
      limit: 'maxMemoryMiB',
      limitValue: quota.maxMemoryMiB,
      current: usage.memoryMiB,
      requested: growth.memoryMiB,
      message: `memory ${usage.memoryMiB} MiB + ${growth.memoryMiB} MiB would exceed the limit of ${quota.maxMemoryMiB} MiB`,
    });
  }
  const first = crossed[0];
  if (first !== undefined) {
    const { message, ...figures } = first;
    return err('quota_exceeded', `tenant ${record.tenantId}: ${message}`, {
      tenantId: record.tenantId,
      ...figures,
      exceeded: crossed.map((c) => c.limit),
    });
  }
  return ok({
    ...record,
    usage: {
      ...usage,
      vcpus: Math.max(0, usage.vcpus - from.vcpus + to.vcpus),
      memoryMiB: Math.max(0, usage.memoryMiB - from.memoryMiB + to.memoryMiB),
    },
  });
}

/** One VM fewer: what was counted for it is subtracted. */
export function releasePlacement(record: TenantUsageRecord, placement: Placement): TenantUsageRecord {
  return { ...record, usage: applyRelease(record.usage, placement) };
}

/** The usage a set of placements adds up to (a recount from the counting intents). */
export function usageOf(placements: Iterable<Placement>): TenantUsage {
  // Summed in place rather than by folding applyPlacement, which copies vmsPerNode at every step (quadratic).
  let usage = emptyUsage();
  for (const p of placements) {
    usage.vms += 1;
    usage.vcpus += p.vcpus;
    usage.memoryMiB += p.memoryMiB;
    usage.vmsPerNode[p.nodeId] = (usage.vmsPerNode[p.nodeId] ?? 0) + 1;
    if (p.hugepages !== undefined) usage = countHugepages(usage, p, 1);
  }
  return usage;
}
