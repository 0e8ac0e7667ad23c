import { TenantQuotaSchema } from '@allot/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  admitPlacement,
  emptyUsageRecord,
  movePlacement,
  releasePlacement,
  TenantUsageRecordSchema,
  usageOf,
  withQuota,
  type TenantUsageRecord,
} from './record.ts';
import type { Placement } from './usage.ts';

describe('tenant usage record', () => {
  it('refuses a placement past a limit, naming the limit and the figures', () => {
    const record = withQuota(emptyUsageRecord('acme'), TenantQuotaSchema.parse({ tenantId: 'acme', maxVcpus: 3 }));
    if (!record.ok) throw new Error(record.error.message);
    const one = admitPlacement(record.value, { nodeId: 'a', memoryMiB: 64, vcpus: 2 });
    if (!one.ok) throw new Error(one.error.message);
    const two = admitPlacement(one.value, { nodeId: 'a', memoryMiB: 64, vcpus: 2 });
    expect(!two.ok && two.error.details).toMatchObject({ limit: 'maxVcpus', limitValue: 3, current: 2, requested: 2 });
  });

  it('counts everything and refuses nothing without a quota, and a quota set later starts at the counted usage', () => {
    let record = emptyUsageRecord('acme');
    for (let i = 0; i < 3; i++) {
      const next = admitPlacement(record, { nodeId: 'a', memoryMiB: 64, vcpus: 1 });
      if (!next.ok) throw new Error(next.error.message);
      record = next.value;
    }
    const limited = withQuota(record, TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 3 }));
    if (!limited.ok) throw new Error(limited.error.message);
    expect(limited.value.usage.vms).toBe(3);
    expect(admitPlacement(limited.value, { nodeId: 'a', memoryMiB: 64, vcpus: 1 }).ok).toBe(false);
  });

  it('never counts past a limit and always equals the sum of what it counts, under any admit / move / release sequence', () => {
    const step = fc.oneof(
      fc.record({
        kind: fc.constant('admit' as const),
        node: fc.integer({ min: 0, max: 3 }),
        vcpus: fc.integer({ min: 0, max: 8 }),
        memoryMiB: fc.integer({ min: 0, max: 8192 }),
      }),
      fc.record({ kind: fc.constant('move' as const), at: fc.nat(), node: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant('release' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 120 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 0, max: 24 }),
        fc.integer({ min: 0, max: 2 }),
        (steps, maxVms, maxVcpus, maxVmsPerNode) => {
          const quota = TenantQuotaSchema.parse({ tenantId: 'acme', maxVms, maxVcpus, maxMemoryMiB: 20_000, maxVmsPerNode });
          let record: TenantUsageRecord = { ...emptyUsageRecord('acme'), quota };
          const counted: Placement[] = [];
          for (const s of steps) {
            if (s.kind === 'admit') {
              const p = { nodeId: `n${s.node}`, memoryMiB: s.memoryMiB, vcpus: s.vcpus };
              const r = admitPlacement(record, p);
              if (r.ok) {
                record = r.value;
                counted.push(p);
              } else expect(r.error.code).toBe('quota_exceeded');
            } else if (counted.length > 0) {
              const i = s.at % counted.length;
              const p = counted[i] as Placement;
              if (s.kind === 'release') {
                record = releasePlacement(record, p);
                counted.splice(i, 1);
              } else {
                const r = movePlacement(record, p, `n${s.node}`);
                if (r.ok) {
                  record = r.value;
                  counted[i] = { ...p, nodeId: `n${s.node}` };
                }
              }
            }
            expect(record.usage.vms).toBeLessThanOrEqual(maxVms);
            expect(record.usage.vcpus).toBeLessThanOrEqual(maxVcpus);
            for (const n of Object.values(record.usage.vmsPerNode)) expect(n).toBeLessThanOrEqual(maxVmsPerNode);
            expect(record.usage).toEqual(usageOf(counted));
          }
          expect(TenantUsageRecordSchema.safeParse(record).success).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
