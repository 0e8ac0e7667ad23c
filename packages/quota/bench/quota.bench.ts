// Quota and rate-limit costs on the coordinator's hot path. Prints figures; asserts nothing about time.
// Run: node packages/quota/bench/quota.bench.ts (or `pnpm bench quota`).
import { decode, encode, TenantQuotaSchema, unwrap } from '@allot/core';
import { migrateLegacyQuotas, newQuotaRecord, RateLimiter, recordPlacement, recordRelease, TenantQuotaRecordSchema, TokenBucket, MAX_TRACKED_PLACEMENTS, type TenantQuotaRecord } from '../src/index.ts';

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
    TenantQuotaSchema.parse({ tenantId: `t${i}`, placeRates: [{ count: 10, per: 'second' }, { count: 1000, per: 'hour' }] }),
  );
  const n = 500_000;
  let admitted = 0;
  measure(`RateLimiter.admit (${tenants} tenants, 2 buckets each)`, n, () => {
    for (let i = 0; i < n; i += 1) if (limiter.admit(quotas[i % tenants]!, 'place', i).ok) admitted += 1;
  });
  console.log(`  admitted ${admitted} of ${n}; tenants tracked ${limiter.size}`);
}

// ---- quota record: one place + one release on a record of N live placements, and its stored size ----
for (const live of [10, 1_000, MAX_TRACKED_PLACEMENTS - 1]) {
  let record: TenantQuotaRecord = newQuotaRecord(TenantQuotaSchema.parse({ tenantId: 'acme' }));
  for (let i = 0; i < live; i += 1) record = unwrap(recordPlacement(record, `01JABCDEFGHJKMNPQRSTVWXYZ-${i}`, { nodeId: `node-${i % 500}`, memoryMiB: 4096, vcpus: 4 }));
  const ops = live > 1000 ? 200 : 5_000;
  measure(`recordPlacement+recordRelease (${live} live)`, ops, () => {
    for (let i = 0; i < ops; i += 1) {
      const placed = unwrap(recordPlacement(record, `bench-${i}`, { nodeId: 'node-1', memoryMiB: 1024, vcpus: 1 }));
      unwrap(recordRelease(placed, `bench-${i}`));
    }
  });
  const bytes = encode(record);
  const decodes = live > 1000 ? 50 : 2_000;
  measure(`  decode+validate record (${live} live, ${bytes.byteLength} bytes msgpack)`, decodes, () => {
    for (let i = 0; i < decodes; i += 1) unwrap(decode(TenantQuotaRecordSchema, bytes, 4 * 1024 * 1024));
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
