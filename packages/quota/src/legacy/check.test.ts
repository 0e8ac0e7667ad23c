import { describe, expect, it } from 'vitest';
import { applyPlacement, emptyUsage, type TenantUsage } from '../usage.ts';
import { legacyQuotaCheck, legacyQuotaCheckDetailed } from './check.ts';
import { LEGACY_QUOTA_DOCUMENTS } from './fixtures/legacy-quotas.ts';
import { migrateLegacyQuotas } from './migrate.ts';

const { quotas } = migrateLegacyQuotas(LEGACY_QUOTA_DOCUMENTS);
/** tenant-1 (20 VMs, 64 vCPUs, 131072 MiB) already runs 60 vCPUs and 126976 MiB over 2 VMs. */
const usage: Record<string, TenantUsage> = {
  'tenant-1': applyPlacement(applyPlacement(emptyUsage(), { nodeId: 'n1', memoryMiB: 65_536, vcpus: 30 }), {
    nodeId: 'n2',
    memoryMiB: 61_440,
    vcpus: 30,
  }),
};

describe('legacyQuotaCheck, answering as the old API did', () => {
  it('says yes to legacy_quota_check("tenant-1", 2048, 4) within quota, also landing exactly on the limits', () => {
    expect(legacyQuotaCheck(quotas, usage, 'tenant-1', 2048, 4)).toBe(true);
    expect(legacyQuotaCheck(quotas, usage, 'tenant-1', 4096, 4)).toBe(true);
    expect(legacyQuotaCheck(quotas, {}, 'tenant-1', 131_072, 64)).toBe(true);
  });

  it('says no past a limit, and the detailed answer names it', () => {
    expect(legacyQuotaCheck(quotas, usage, 'tenant-1', 4097, 4)).toBe(false);
    expect(legacyQuotaCheck(quotas, usage, 'tenant-1', 2048, 5)).toBe(false);
    const r = legacyQuotaCheckDetailed(quotas, usage, 'tenant-1', 2048, 5);
    expect(!r.ok && r.error.details).toMatchObject({ limit: 'maxVcpus', current: 60, requested: 5, limitValue: 64 });
  });

  it('says yes to any size for a tenant migrated without limits', () => {
    expect(legacyQuotaCheck(quotas, usage, 'free-tier', 1 << 20, 1024)).toBe(true);
  });

  it('says no to a tenant blocked by a zero legacy rate', () => {
    expect(legacyQuotaCheck(quotas, usage, 'noisy', 1, 1)).toBe(false);
  });

  it('says no to an unknown tenant, with not_found in the detailed answer', () => {
    expect(legacyQuotaCheck(quotas, usage, 'nobody', 2048, 4)).toBe(false);
    expect(legacyQuotaCheckDetailed(quotas, usage, 'nobody', 2048, 4)).toMatchObject({
      ok: false,
      error: { code: 'not_found', details: { tenantId: 'nobody' } },
    });
  });

  it('says no to bad input with invalid_request naming the field, instead of throwing', () => {
    expect(legacyQuotaCheckDetailed(quotas, usage, 'tenant-1', -1, 4)).toMatchObject({
      ok: false,
      error: { code: 'invalid_request', details: { field: 'memoryMiB' } },
    });
    expect(legacyQuotaCheckDetailed(quotas, usage, 'a.b', 1, 1)).toMatchObject({
      ok: false,
      error: { code: 'invalid_request', details: { field: 'tenantId' } },
    });
    expect(legacyQuotaCheck(quotas, usage, 'tenant-1', Number.NaN, 4)).toBe(false);
  });
});
