import { TenantQuotaSchema } from '@allot/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newQuotaRecord, recordPlacement, recordRelease, TenantQuotaRecordSchema, usageOf } from './record.ts';

const step = fc.oneof(
  fc.record({ kind: fc.constant('place' as const), id: fc.integer({ min: 0, max: 15 }), node: fc.integer({ min: 0, max: 3 }), vcpus: fc.integer({ min: 0, max: 8 }), memoryMiB: fc.integer({ min: 0, max: 8192 }) }),
  fc.record({ kind: fc.constant('release' as const), id: fc.integer({ min: 0, max: 15 }) }),
);

describe('tenant quota record under any sequence of placements, retries and releases', () => {
  it('never counts past a limit, counts each request id at most once, and its usage is the sum of what it counts', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0, max: 2 }), (steps, maxVms, maxVcpus, maxVmsPerNode) => {
        const quota = TenantQuotaSchema.parse({ tenantId: 'acme', maxVms, maxVcpus, maxMemoryMiB: 20_000, maxVmsPerNode });
        let record = newQuotaRecord(quota);
        for (const s of steps) {
          const r =
            s.kind === 'place'
              ? recordPlacement(record, `req-${s.id}`, { nodeId: `n${s.node}`, memoryMiB: s.memoryMiB, vcpus: s.vcpus })
              : recordRelease(record, `req-${s.id}`);
          if (r.ok) record = r.value;
          else expect(['quota_exceeded', 'conflict']).toContain(r.error.code);
          expect(record.usage.vms).toBeLessThanOrEqual(maxVms);
          expect(record.usage.vcpus).toBeLessThanOrEqual(maxVcpus);
          expect(record.usage.memoryMiB).toBeLessThanOrEqual(20_000);
          for (const count of Object.values(record.usage.vmsPerNode)) expect(count).toBeLessThanOrEqual(maxVmsPerNode);
          expect(new Set(record.live.map((p) => p.requestId)).size).toBe(record.live.length);
          expect(record.usage).toEqual(usageOf(record.live));
        }
        expect(TenantQuotaRecordSchema.safeParse(record).success).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
