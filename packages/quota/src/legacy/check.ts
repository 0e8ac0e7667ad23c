import { err, TenantIdSchema, type Result, type TenantQuota } from '@allot/core';
import { checkQuota } from '../check.ts';
import { emptyUsage, type TenantUsage } from '../usage.ts';

/*
 * The legacy API's quota question, `legacy_quota_check("tenant-1", 2048, 4)`: may this tenant start one more VM of
 * 2048 MiB and 4 vCPUs? Answered from allot's quotas with the same rules as checkQuota (maxVms counts the new VM; no
 * node is named, so maxVmsPerNode is not checked).
 *
 * An unknown tenant (no quota) is refused. The design summary of the legacy system says nothing about letting unknown
 * tenants through, so the conservative answer is no; legacyQuotaCheckDetailed says why (not_found).
 * A tenant with a quota but no usage entry holds nothing.
 */

/** The legacy yes/no answer. */
export function legacyQuotaCheck(
  quotas: readonly TenantQuota[],
  usage: Readonly<Record<string, TenantUsage>>,
  tenantId: string,
  memoryMiB: number,
  vcpus: number,
): boolean {
  return legacyQuotaCheckDetailed(quotas, usage, tenantId, memoryMiB, vcpus).ok;
}

/** The same answer with the reason: quota_exceeded (the limit and figures), not_found (unknown tenant) or invalid_request. */
export function legacyQuotaCheckDetailed(
  quotas: readonly TenantQuota[],
  usage: Readonly<Record<string, TenantUsage>>,
  tenantId: string,
  memoryMiB: number,
  vcpus: number,
): Result<void> {
  const id = TenantIdSchema.safeParse(tenantId);
  if (!id.success) return err('invalid_request', `tenantId: ${id.error.issues[0]?.message ?? 'invalid'}`, { field: 'tenantId' });
  const quota = quotas.find((q) => q.tenantId === tenantId);
  if (quota === undefined) {
    return err('not_found', `tenant ${tenantId} has no quota; unknown tenants are refused`, { tenantId });
  }
  return checkQuota(quota, Object.hasOwn(usage, tenantId) ? (usage[tenantId] ?? emptyUsage()) : emptyUsage(), { memoryMiB, vcpus });
}
