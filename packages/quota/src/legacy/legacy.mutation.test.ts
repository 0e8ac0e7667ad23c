import { TenantQuotaSchema } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { legacyQuotaCheckDetailed } from './check.ts';
import { changedFields, convertDocument, migrateLegacyQuotas } from './migrate.ts';

/*
 * The legacy migration's messages and edge cases as an operator reads them in the report.
 * Written against the survivors of a mutation run (docs/benchmarks.md, Mutation testing).
 */

const converted = (document: unknown) => {
  const c = convertDocument(document);
  if (!c.ok) throw new Error(c.skip.message);
  return c;
};

describe('legacy document conversion', () => {
  it('writes each warning so an operator knows what happened to the field', () => {
    const c = converted({
      tenant_id: 't',
      max_memory_mb: 2048,
      max_disk_gb: 50,
      overcommit_ratio: 1.5,
      priority: 2000,
      colour: 'red',
      api_rate_limits: { requests_per_minute: 5, burst: 3 },
    });
    expect(c.warnings).toEqual([
      { field: 'max_memory_mb', message: '2048 MB read as 2048 MiB: the legacy code used MB for MiB of guest memory' },
      { field: 'max_disk_gb', message: 'disk quota of 50 GB not migrated: allot has no disk quota yet' },
      { field: 'overcommit_ratio', message: "overcommit ratio 1.5 not migrated: in allot overcommit is a host's limit, not a tenant's" },
      { field: 'priority', message: 'priority 2000 clamped to 1000 (allot priorities are 0..1000)' },
      { field: 'api_rate_limits', message: 'legacy API-wide rates apply to place and to release separately in allot' },
      { field: 'colour', message: 'unknown field colour not migrated' },
      { field: 'api_rate_limits.burst', message: 'unknown field api_rate_limits.burst not migrated' },
    ]);
    expect(c.quota).toMatchObject({ maxMemoryMiB: 2048, priority: 1000, placeRates: [{ count: 5, per: 'minute' }] });
    expect(c.quota.maxVms).toBeUndefined();
    expect(c.quota.maxVcpus).toBeUndefined();
  });

  it('reads null limits as no limit, and keeps a zero limit', () => {
    const c = converted({ tenant_id: 't', max_vms: null, max_vcpus: 0, max_memory_mb: null, api_rate_limits: null });
    expect(c.quota).toEqual({ tenantId: 't', maxVcpus: 0, placeRates: [], releaseRates: [] });
    expect(c.warnings).toEqual([]);
  });

  it('clamps a rate above the largest allot rate, and keeps one at it', () => {
    const c = converted({ tenant_id: 't', api_rate_limits: { requests_per_second: 1_000_000_001, requests_per_hour: 1_000_000_000 } });
    expect(c.quota.placeRates).toEqual([
      { count: 1_000_000_000, per: 'second' },
      { count: 1_000_000_000, per: 'hour' },
    ]);
    expect(c.warnings.map((w) => w.message)).toContain('1000000001 per second clamped to 1000000000, the largest allot rate');
    expect(c.warnings.filter((w) => w.field === 'api_rate_limits.requests_per_hour')).toEqual([]);
    expect(TenantQuotaSchema.safeParse(c.quota).success).toBe(true);
  });

  it('reads a zero rate as blocked, says so, and replaces a nonzero max_vms', () => {
    const c = converted({ tenant_id: 't', max_vms: 5, api_rate_limits: { requests_per_minute: 0, requests_per_hour: 10 } });
    expect(c.quota).toMatchObject({ maxVms: 0, placeRates: [], releaseRates: [{ count: 10, per: 'hour' }] });
    expect(c.warnings).toEqual([
      {
        field: 'api_rate_limits.requests_per_minute',
        message: 'a rate of 0 per minute reads as blocked: placements blocked by maxVms 0; releases stay allowed',
      },
      { field: 'max_vms', message: 'max_vms 5 replaced by 0: the tenant is blocked by a zero rate' },
    ]);
    // Already 0, or absent: nothing replaced, nothing said about max_vms.
    expect(converted({ tenant_id: 't', max_vms: 0, api_rate_limits: { requests_per_second: 0 } }).warnings.map((w) => w.field)).toEqual([
      'api_rate_limits.requests_per_second',
    ]);
    expect(converted({ tenant_id: 't', api_rate_limits: { requests_per_second: 0 } }).warnings.map((w) => w.field)).toEqual([
      'api_rate_limits.requests_per_second',
    ]);
  });

  it('skips invalid documents naming the field and why', () => {
    const skip = (document: unknown) => {
      const c = convertDocument(document);
      return c.ok ? undefined : c.skip;
    };
    expect(skip({ tenant_id: 't', max_vms: -1 })).toMatchObject({ code: 'invalid_document', field: 'max_vms' });
    expect(skip({ tenant_id: 't', max_vms: -1 })?.message).toMatch(/^max_vms: ./);
    expect(skip('a string')).toMatchObject({ field: '(root)' });
    expect(skip('a string')?.message).toMatch(/^\(root\): ./);
    expect(skip({ tenant_id: 'has space' })).toMatchObject({ field: 'tenant_id' });
    expect(skip({ tenant_id: 'has space' })?.message).toMatch(/^tenant_id "has space" is not a valid allot tenant id: ./);
  });
});

describe('legacy migration report', () => {
  it('names the tenant of a skipped document when it has one, counts every warning, and keeps the first existing quota of a tenant', () => {
    const existing = [
      { tenantId: 'old', maxVms: 1, placeRates: [], releaseRates: [] },
      { tenantId: 'old', maxVms: 2, placeRates: [], releaseRates: [] },
    ];
    const { quotas, report } = migrateLegacyQuotas(
      [{ tenant_id: 'bad', max_vms: -1 }, 42, { tenant_id: 'new', max_memory_mb: 1, colour: 1 }],
      { existing },
    );
    expect(report.entries[0]).toMatchObject({ index: 0, tenantId: 'bad', outcome: 'skipped' });
    expect(report.entries[1]).not.toHaveProperty('tenantId');
    expect(report.entries[1]?.outcome).toBe('skipped');
    expect(report.totals).toEqual({ documents: 3, migrated: 1, updated: 0, unchanged: 0, skipped: 2, warnings: 2 });
    expect(quotas).toEqual([existing[0], { tenantId: 'new', maxMemoryMiB: 1, placeRates: [], releaseRates: [] }]);
  });

  it('sees a rate change in count or period as a changed field, and equal rates as none', () => {
    const base = { tenantId: 't', placeRates: [{ count: 1, per: 'second' as const }], releaseRates: [] };
    expect(changedFields(base, { ...base, placeRates: [{ count: 2, per: 'second' }] })).toEqual(['placeRates']);
    expect(changedFields(base, { ...base, placeRates: [{ count: 1, per: 'minute' }] })).toEqual(['placeRates']);
    expect(changedFields(base, { ...base, placeRates: [] })).toEqual(['placeRates']);
    expect(changedFields(base, { ...base, placeRates: [{ per: 'second', count: 1 }] })).toEqual([]);
    expect(changedFields(base, { ...base, priority: 3 })).toEqual(['priority']);
  });
});

describe('legacy quota check', () => {
  it('names the field of a bad tenant id and refuses an unknown tenant with its id', () => {
    expect(legacyQuotaCheckDetailed([], {}, '', 1, 1)).toMatchObject({
      ok: false,
      error: { code: 'invalid_request', details: { field: 'tenantId' } },
    });
    const bad = legacyQuotaCheckDetailed([], {}, '', 1, 1);
    expect(!bad.ok && bad.error.message).toMatch(/^tenantId: ./);
    expect(legacyQuotaCheckDetailed([], {}, 'ghost', 1, 1)).toEqual({
      ok: false,
      error: { code: 'not_found', message: 'tenant ghost has no quota; unknown tenants are refused', details: { tenantId: 'ghost' } },
    });
  });
});
