// Quota and rate-limit costs on the coordinator's hot path. Prints figures; asserts nothing about time.
// Run: node apps/coordinator/bench/quota.bench.ts (or `pnpm bench quota`).
import { decode, encode } from '@allot/protocol';
import { TenantQuotaSchema, unwrap } from '@allot/core';
import {
  admitPlacement,
  emptyUsageRecord,
  migrateLegacyQuotas,
  RateLimiter,
  releasePlacement,
  TenantUsageRecordSchema,
  TokenBucket,
  type TenantUsageRecord,
} from '@allot/quota';

function measure(label: string, ops: number, run: () => void): void {
  const start = process.hrtime.bigint();
  run();
  const ns = Number(process.hrtime.bigint() - start);
  console.log(`${label}: ${Math.round((ops * 1e9) / ns).toLocaleString('en')} ops/s (${(ns / ops / 1000).toFixed(2)} µs/op)`);
}

// ---- token bucket ----
{
  const bucket = new TokenBucket({ count: 1_000_000_000, per: 'second' }, 0);
  const n = 2_000_000;
  measure('TokenBucket.take', n, () => {
    for (let i = 0; i < n; i += 1) bucket.take(i >> 4);
  });
}

// ---- rate limiter, 10k tenants, two buckets each ----
{
  const tenants = 10_000;
  const limiter = new RateLimiter({ maxTenants: tenants });
  const quotas = Array.from({ length: tenants }, (_, i) =>
    TenantQuotaSchema.parse({
      tenantId: `t${i}`,
      placeRates: [
        { count: 10, per: 'second' },
        { count: 1000, per: 'hour' },
      ],
    }),
  );
  const n = 500_000;
  let admitted = 0;
  measure(`RateLimiter.admit (${tenants} tenants, 2 buckets each)`, n, () => {
    for (let i = 0; i < n; i += 1) if (limiter.admit(quotas[i % tenants]!, 'place', i).ok) admitted += 1;
  });
  console.log(`  admitted ${admitted} of ${n}; tenants tracked ${limiter.size}`);
}

// ---- usage record: one admit + one release, and its stored size (counters only: the same at any number of VMs) ----
{
  let record: TenantUsageRecord = { ...emptyUsageRecord('acme'), quota: TenantQuotaSchema.parse({ tenantId: 'acme', maxVms: 1_000_000 }) };
  for (let i = 0; i < 500; i += 1) record = unwrap(admitPlacement(record, { nodeId: `node-${i}`, memoryMiB: 4096, vcpus: 4 }));
  const ops = 200_000;
  measure('admitPlacement+releasePlacement (500 nodes counted)', ops, () => {
    for (let i = 0; i < ops; i += 1)
      releasePlacement(unwrap(admitPlacement(record, { nodeId: 'node-1', memoryMiB: 1024, vcpus: 1 })), {
        nodeId: 'node-1',
        memoryMiB: 1024,
        vcpus: 1,
      });
  });
  const bytes = encode(record);
  const decodes = 20_000;
  measure(`  decode+validate record (500 nodes, ${bytes.byteLength} bytes msgpack)`, decodes, () => {
    for (let i = 0; i < decodes; i += 1) unwrap(decode(TenantUsageRecordSchema, bytes));
  });
}

// ---- legacy migration ----
{
  const docs = Array.from({ length: 10_000 }, (_, i) => ({
    tenant_id: `tenant-${i % 9_500}`,
    max_vms: 20,
    max_vcpus: 64,
    max_memory_mb: 131_072,
    max_disk_gb: i % 3 === 0 ? 500 : null,
    priority: i % 1200,
    api_rate_limits: { requests_per_second: 10, requests_per_minute: null, requests_per_hour: 100 },
  }));
  let report: ReturnType<typeof migrateLegacyQuotas>['report'] | undefined;
  measure('migrateLegacyQuotas (10000 documents)', 10_000, () => {
    report = migrateLegacyQuotas(docs).report;
  });
  console.log(`  totals ${JSON.stringify(report?.totals)}, completion ${report?.completionPercent}%`);
}
