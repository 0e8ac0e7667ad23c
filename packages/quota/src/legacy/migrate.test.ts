import { TenantQuotaSchema } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { LEGACY_QUOTA_DOCUMENTS } from './fixtures/legacy-quotas.ts';
import { migrateLegacyQuotas } from './migrate.ts';

const entry = (report: ReturnType<typeof migrateLegacyQuotas>['report'], index: number) => report.entries.find((e) => e.index === index);

describe('migrateLegacyQuotas', () => {
  const { quotas, report } = migrateLegacyQuotas(LEGACY_QUOTA_DOCUMENTS);

  it('handles every document of a realistic fixture and reports the figures, at exactly 100% completion', () => {
    expect(report.totals).toEqual({ documents: 11, migrated: 5, updated: 0, unchanged: 0, skipped: 6, warnings: report.totals.warnings });
    expect(report.completionPercent).toBe(100);
    expect(report.entries).toHaveLength(11);
    expect(quotas.map((q) => q.tenantId)).toEqual(['tenant-1', 'acme', 'free-tier', 'noisy', 'gpu-team']);
    for (const q of quotas) expect(TenantQuotaSchema.safeParse(q).success).toBe(true);
  });

  it('converts an ordinary tenant field by field, memory MB as MiB with a warning', () => {
    expect(quotas[0]).toEqual({
      tenantId: 'tenant-1',
      maxVms: 20,
      maxVcpus: 64,
      maxMemoryMiB: 131_072,
      maxVmsPerNode: 4,
      priority: 500,
      placeRates: [
        { count: 10, per: 'second' },
        { count: 300, per: 'minute' },
      ],
      releaseRates: [
        { count: 10, per: 'second' },
        { count: 300, per: 'minute' },
      ],
    });
    expect(entry(report, 0)?.warnings.map((w) => w.field)).toEqual(['max_memory_mb', 'api_rate_limits']);
  });

  it('keeps an hourly limit per hour, and warns that disk quota and overcommit ratio are not migrated', () => {
    const acme = quotas.find((q) => q.tenantId === 'acme');
    expect(acme?.placeRates).toEqual([{ count: 100, per: 'hour' }]);
    expect(acme?.releaseRates).toEqual([{ count: 100, per: 'hour' }]);
    const fields = entry(report, 1)?.warnings.map((w) => w.field);
    expect(fields).toContain('max_disk_gb');
    expect(fields).toContain('overcommit_ratio');
  });

  it('skips invalid documents with the reason naming the field', () => {
    expect(entry(report, 2)).toMatchObject({
      tenantId: 'broken-1',
      outcome: 'skipped',
      reason: { code: 'invalid_document', field: 'max_vcpus' },
    });
    expect(entry(report, 6)).toMatchObject({
      tenantId: 'acme corp',
      outcome: 'skipped',
      reason: { code: 'invalid_document', field: 'tenant_id' },
    });
    expect(entry(report, 7)).toMatchObject({ outcome: 'skipped', reason: { code: 'invalid_document', field: '(root)' } });
    expect(entry(report, 8)).toMatchObject({ outcome: 'skipped', reason: { code: 'invalid_document', field: 'max_memory_mb' } });
  });

  it('keeps the first document of a duplicated tenant and says how the later one differs', () => {
    const dup = entry(report, 3);
    expect(dup).toMatchObject({ tenantId: 'tenant-1', outcome: 'skipped', reason: { code: 'duplicate_tenant', field: 'tenant_id' } });
    expect(dup?.reason?.message).toContain('document 0');
    expect(dup?.reason?.message).toContain('maxVms, maxVcpus');
    expect(entry(report, 10)?.reason?.message).toContain('identical');
    expect(quotas.find((q) => q.tenantId === 'tenant-1')?.maxVms).toBe(20);
  });

  it('migrates a document without limits as unlimited', () => {
    expect(quotas.find((q) => q.tenantId === 'free-tier')).toEqual({ tenantId: 'free-tier', placeRates: [], releaseRates: [] });
    expect(entry(report, 4)).toMatchObject({ outcome: 'migrated', warnings: [] });
  });

  it('reads a zero rate as blocked: no placements, releases still allowed at the other rates', () => {
    const noisy = quotas.find((q) => q.tenantId === 'noisy');
    expect(noisy).toMatchObject({
      maxVms: 0,
      placeRates: [],
      releaseRates: [
        { count: 5, per: 'second' },
        { count: 1000, per: 'hour' },
      ],
    });
    expect(entry(report, 5)?.warnings.map((w) => w.field)).toEqual(
      expect.arrayContaining(['api_rate_limits.requests_per_minute', 'max_vms', 'priority']),
    );
  });

  it('clamps priority into 0..1000 and reports unknown fields', () => {
    expect(quotas.find((q) => q.tenantId === 'noisy')?.priority).toBe(1000);
    expect(quotas.find((q) => q.tenantId === 'gpu-team')?.priority).toBe(0);
    expect(entry(report, 9)?.warnings.map((w) => w.field)).toEqual(expect.arrayContaining(['max_gpus', 'priority']));
  });

  it('gives the same output when run again, and reports every tenant unchanged against its own output', () => {
    expect(migrateLegacyQuotas(LEGACY_QUOTA_DOCUMENTS)).toEqual({ quotas, report });
    const merged = migrateLegacyQuotas(LEGACY_QUOTA_DOCUMENTS, { existing: quotas });
    expect(merged.quotas).toEqual(quotas);
    expect(merged.report.totals).toMatchObject({ migrated: 0, updated: 0, unchanged: 5, skipped: 6 });
    expect(merged.report.completionPercent).toBe(100);
  });

  it('reports an existing quota that differs as updated with the changed fields, and keeps tenants without a document', () => {
    const existing = [
      TenantQuotaSchema.parse({ tenantId: 'operator-made', maxVms: 3 }),
      TenantQuotaSchema.parse({
        tenantId: 'acme',
        maxVms: 100,
        maxVcpus: 200,
        maxMemoryMiB: 819_200,
        priority: 100,
        placeRates: [{ per: 'hour', count: 100 }],
        releaseRates: [],
      }),
    ];
    const merged = migrateLegacyQuotas(LEGACY_QUOTA_DOCUMENTS, { existing });
    expect(entry(merged.report, 1)).toMatchObject({ outcome: 'updated', changedFields: ['maxVcpus', 'releaseRates'] });
    expect(merged.quotas.map((q) => q.tenantId)).toEqual(['operator-made', 'acme', 'tenant-1', 'free-tier', 'noisy', 'gpu-team']);
    expect(merged.quotas.find((q) => q.tenantId === 'acme')?.maxVcpus).toBe(400);
    expect(merged.report.totals).toMatchObject({ migrated: 4, updated: 1, unchanged: 0 });
  });

  it('reports 100% for no documents', () => {
    expect(migrateLegacyQuotas([]).report).toMatchObject({ completionPercent: 100, totals: { documents: 0 } });
  });
});
