import { TenantQuotaSchema, type TenantQuota } from '@allot/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkQuota } from './check.ts';
import { admitPlacement, emptyUsageRecord, releasePlacement, usageOf, withQuota } from './record.ts';
import { applyPlacement, applyRelease, emptyUsage, type Placement } from './usage.ts';

/*
 * Hugepages in a tenant's quota, as Kubernetes' ResourceQuota limits `requests.hugepages-2Mi`: MiB of pages per page
 * size, counted apart from memoryMiB (the agent counts them apart from regular memory).
 */
const quota = (q: Partial<TenantQuota>): TenantQuota => TenantQuotaSchema.parse({ tenantId: 'acme', ...q });
const vm = (nodeId: string, pageSizeMiB?: 2 | 1024, count = 1): Placement => ({
  nodeId,
  memoryMiB: 256,
  vcpus: 1,
  ...(pageSizeMiB === undefined ? {} : { hugepages: { pageSizeMiB, count } }),
});

describe('hugepages in the tenant quota', () => {
  it('counts MiB of pages per size, and refuses past maxHugepagesMiB naming the size and the figures', () => {
    let record = emptyUsageRecord('acme');
    const limited = withQuota(record, quota({ maxHugepagesMiB: { '2Mi': 512 } }));
    if (!limited.ok) throw new Error(limited.error.message);
    record = limited.value;
    for (const placement of [vm('n1', 2, 200), vm('n1', 1024, 2), vm('n2')]) {
      const admitted = admitPlacement(record, placement);
      if (!admitted.ok) throw new Error(admitted.error.message);
      record = admitted.value;
    }
    expect(record.usage.hugepagesMiB).toEqual({ '2Mi': 400, '1Gi': 2048 });
    const refused = admitPlacement(record, vm('n2', 2, 64));
    expect(refused.ok ? 'admitted' : refused.error).toEqual({
      code: 'quota_exceeded',
      message: 'tenant acme: hugepages-2Mi 400 MiB + 128 MiB would exceed the limit of 512 MiB',
      details: {
        tenantId: 'acme',
        limit: 'maxHugepagesMiB',
        hugepages: '2Mi',
        limitValue: 512,
        current: 400,
        requested: 128,
        exceeded: ['maxHugepagesMiB'],
      },
    });
    // Exactly at the limit fits; 1-GiB pages have no limit here.
    expect(admitPlacement(record, vm('n2', 2, 56)).ok).toBe(true);
    expect(admitPlacement(record, vm('n2', 1024, 8)).ok).toBe(true);
    // A limit of 0 allows none, and regular memory is not hugepages.
    expect(checkQuota(quota({ maxHugepagesMiB: { '1Gi': 0 } }), record.usage, vm('n3', 1024)).ok).toBe(false);
    expect(checkQuota(quota({ maxHugepagesMiB: { '1Gi': 0 } }), record.usage, vm('n3')).ok).toBe(true);
    expect(releasePlacement(record, vm('n1', 2, 200)).usage.hugepagesMiB).toEqual({ '1Gi': 2048 });
  });

  it('adds up the same counted one by one, released, or recounted from the placements', () => {
    const placementArb = fc.record({
      nodeId: fc.constantFrom('n1', 'n2'),
      memoryMiB: fc.integer({ min: 0, max: 4096 }),
      vcpus: fc.integer({ min: 0, max: 8 }),
      hugepages: fc.option(fc.record({ pageSizeMiB: fc.constantFrom(2 as const, 1024 as const), count: fc.integer({ min: 1, max: 64 }) }), {
        nil: undefined,
      }),
    });
    fc.assert(
      fc.property(fc.array(placementArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 12 }), (all, releases) => {
        const placements = all.map(({ hugepages, ...p }) => (hugepages === undefined ? p : { ...p, hugepages }));
        let usage = emptyUsage();
        for (const p of placements) usage = applyPlacement(usage, p);
        const left = [...placements];
        for (const r of releases) {
          if (left.length === 0) break;
          const [gone] = left.splice(r % left.length, 1);
          if (gone !== undefined) usage = applyRelease(usage, gone);
        }
        expect(usage).toEqual(usageOf(left));
      }),
    );
  });
});
