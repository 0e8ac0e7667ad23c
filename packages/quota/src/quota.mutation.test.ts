import { TenantQuotaSchema, type TenantQuota } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { checkQuota, vmsPerNodeAllows } from './check.ts';
import { RateLimiter } from './rate-limiter.ts';
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
import { TokenBucket } from './token-bucket.ts';
import { applyPlacement, applyRelease, emptyUsage, PlacementSchema } from './usage.ts';

/*
 * Quota edges a user meets: rate changes in an existing quota, exact limits, moves between nodes, waits to the
 * millisecond. Written against the survivors of a mutation run (docs/benchmarks.md, Mutation testing).
 */

const T0 = 1_700_000_000_000;
const quota = (q: Partial<TenantQuota>): TenantQuota => TenantQuotaSchema.parse({ tenantId: 'acme', ...q });

function recordWith(q: Partial<TenantQuota>, placements: Array<{ nodeId: string; memoryMiB: number; vcpus: number }>): TenantUsageRecord {
  const limited = withQuota(emptyUsageRecord('acme'), quota(q));
  if (!limited.ok) throw new Error(limited.error.message);
  return { ...limited.value, usage: usageOf(placements) };
}

describe('rate changes in an existing quota', () => {
  it('a raised count takes effect at once with a full bucket for the new rate', () => {
    const limiter = new RateLimiter();
    expect(limiter.admit(quota({ placeRates: [{ count: 1, per: 'minute' }] }), 'place', T0).ok).toBe(true);
    expect(limiter.admit(quota({ placeRates: [{ count: 1, per: 'minute' }] }), 'place', T0).ok).toBe(false);
    const raised = quota({ placeRates: [{ count: 3, per: 'minute' }] });
    for (let i = 0; i < 3; i += 1) expect(limiter.admit(raised, 'place', T0 + 1).ok).toBe(true);
    const refused = limiter.admit(raised, 'place', T0 + 1);
    expect(!refused.ok && refused.error.details).toEqual({
      tenantId: 'acme',
      operation: 'place',
      rate: { count: 3, per: 'minute' },
      retryAfterMs: 20_000,
    });
  });

  it('a changed period is a new rate, and a removed rate no longer limits', () => {
    const limiter = new RateLimiter();
    const both = quota({
      placeRates: [
        { count: 1, per: 'second' },
        { count: 2, per: 'hour' },
      ],
    });
    expect(limiter.admit(both, 'place', T0).ok).toBe(true);
    expect(limiter.admit(both, 'place', T0 + 1_000).ok).toBe(true);
    const hourly = limiter.admit(both, 'place', T0 + 2_000);
    expect(!hourly.ok && hourly.error.details).toMatchObject({ rate: { count: 2, per: 'hour' }, retryAfterMs: 1_800_000 - 2_000 });
    // The hourly rate dropped: only the per-second bucket (kept, with its token back) remains.
    const secondOnly = quota({ placeRates: [{ count: 1, per: 'second' }] });
    expect(limiter.admit(secondOnly, 'place', T0 + 2_000).ok).toBe(true);
    expect(limiter.admit(secondOnly, 'place', T0 + 2_000).ok).toBe(false);
    // Per minute instead of per second: a new bucket, full.
    const perMinute = quota({ placeRates: [{ count: 1, per: 'minute' }] });
    expect(limiter.admit(perMinute, 'place', T0 + 2_000).ok).toBe(true);
    const refused = limiter.admit(perMinute, 'place', T0 + 2_000);
    expect(!refused.ok && refused.error.details).toMatchObject({ rate: { count: 1, per: 'minute' }, retryAfterMs: 60_000 });
  });

  it('the same rates given again (a new quota object) keep the spent buckets', () => {
    const limiter = new RateLimiter();
    expect(
      limiter.admit(
        quota({
          placeRates: [
            { count: 1, per: 'hour' },
            { count: 5, per: 'second' },
          ],
        }),
        'place',
        T0,
      ).ok,
    ).toBe(true);
    expect(
      limiter.admit(
        quota({
          placeRates: [
            { count: 1, per: 'hour' },
            { count: 5, per: 'second' },
          ],
        }),
        'place',
        T0 + 10,
      ).ok,
    ).toBe(false);
    // The same rates in another order: both buckets are reused, none refilled.
    expect(
      limiter.admit(
        quota({
          placeRates: [
            { count: 5, per: 'second' },
            { count: 1, per: 'hour' },
          ],
        }),
        'place',
        T0 + 20,
      ).ok,
    ).toBe(false);
  });

  it('a tenant without rates for the operation is not tracked', () => {
    const limiter = new RateLimiter();
    expect(limiter.admit(quota({ releaseRates: [{ count: 1, per: 'second' }] }), 'place', T0).ok).toBe(true);
    expect(limiter.size).toBe(0);
  });

  it('sweep drops exactly the tenants whose buckets are full again; forget drops one at once', () => {
    const limiter = new RateLimiter();
    const rates = [{ count: 1, per: 'second' as const }];
    expect(limiter.admit(quota({ tenantId: 'a', placeRates: rates }), 'place', T0).ok).toBe(true);
    expect(limiter.admit(quota({ tenantId: 'b', releaseRates: rates }), 'release', T0 + 500).ok).toBe(true);
    expect(limiter.sweep(T0 + 999)).toBe(0);
    expect(limiter.sweep(T0 + 1_000)).toBe(1);
    expect(limiter.size).toBe(1);
    limiter.forget('b');
    expect(limiter.size).toBe(0);
    // Forgotten: b's next release finds a full bucket.
    expect(limiter.admit(quota({ tenantId: 'b', releaseRates: rates }), 'release', T0 + 1_001).ok).toBe(true);
  });

  it('looks at no more than evictionScan of the oldest tenants per admission', () => {
    const sizeAfter = (evictionScan: number): number => {
      const limiter = new RateLimiter({ maxTenants: 3, evictionScan });
      // a (oldest) is still refilling its hourly token at T0 + 1 s; b and c are full again.
      expect(limiter.admit(quota({ tenantId: 'a', placeRates: [{ count: 1, per: 'hour' }] }), 'place', T0).ok).toBe(true);
      for (const t of ['b', 'c'])
        expect(limiter.admit(quota({ tenantId: t, placeRates: [{ count: 1, per: 'second' }] }), 'place', T0).ok).toBe(true);
      expect(limiter.admit(quota({ tenantId: 'd', placeRates: [{ count: 1, per: 'second' }] }), 'place', T0 + 1_000).ok).toBe(true);
      return limiter.size;
    };
    expect(sizeAfter(1)).toBe(4);
    expect(sizeAfter(2)).toBe(3);
    expect(sizeAfter(8)).toBe(3);
  });
});

describe('token bucket waits', () => {
  it('waits exactly until the missing units are there, rounding up to the millisecond', () => {
    const bucket = new TokenBucket({ count: 3, per: 'second' }, T0);
    for (let i = 0; i < 3; i += 1) expect(bucket.take(T0)).toEqual({ ok: true });
    expect(bucket.take(T0)).toEqual({ ok: false, retryAfterMs: 334 });
    expect(bucket.available(T0 + 333)).toBe(0);
    expect(bucket.available(T0 + 334)).toBe(1);
    expect(bucket.waitFor(T0 + 334, 2)).toBe(333);
    expect(bucket.isFull(T0 + 999)).toBe(false);
    expect(bucket.isFull(T0 + 1_000)).toBe(true);
    expect(bucket.available(T0 + 5_000)).toBe(3);
  });

  it('takes n tokens at once and refuses amounts it can never hold or that are not whole', () => {
    const bucket = new TokenBucket({ count: 4, per: 'minute' }, T0);
    expect(bucket.take(T0, 4)).toEqual({ ok: true });
    expect(bucket.take(T0, 1)).toEqual({ ok: false, retryAfterMs: 15_000 });
    expect(() => bucket.take(T0, 5)).toThrow(RangeError);
    expect(() => bucket.take(T0, 0)).toThrow(/cannot take 0 tokens from a bucket of 4/);
    expect(() => bucket.take(T0, 1.5)).toThrow(RangeError);
  });

  it('refuses rates that are not whole and positive', () => {
    expect(() => new TokenBucket({ count: 0, per: 'second' }, T0)).toThrow(/invalid rate 0 per second/);
    expect(() => new TokenBucket({ count: 1.5, per: 'second' }, T0)).toThrow(RangeError);
    expect(() => new TokenBucket({ count: 1, per: 'day' as 'hour' }, T0)).toThrow(RangeError);
    expect(new TokenBucket({ count: 1, per: 'hour' }, T0).available(T0)).toBe(1);
  });

  it('a clock behind the bucket waits the step back on top of the refill', () => {
    const bucket = new TokenBucket({ count: 1, per: 'second' }, T0);
    expect(bucket.take(T0 + 1_000).ok).toBe(true);
    expect(bucket.waitFor(T0 + 400)).toBe(1_000 + 600);
    expect(bucket.waitFor(T0 + 1_500)).toBe(500);
  });
});

describe('quota limits at their boundaries', () => {
  it('maxVmsPerNode allows the VM that reaches the limit and refuses the next, per node', () => {
    const q = quota({ maxVmsPerNode: 2 });
    const usage = usageOf([{ nodeId: 'a', memoryMiB: 1, vcpus: 1 }]);
    expect(vmsPerNodeAllows(q, usage, 'a')).toBe(true);
    expect(vmsPerNodeAllows(q, applyPlacement(usage, { nodeId: 'a', memoryMiB: 1, vcpus: 1 }), 'a')).toBe(false);
    expect(vmsPerNodeAllows(q, applyPlacement(usage, { nodeId: 'a', memoryMiB: 1, vcpus: 1 }), 'b')).toBe(true);
    expect(vmsPerNodeAllows(quota({}), usage, 'a')).toBe(true);
    expect(vmsPerNodeAllows(quota({ maxVmsPerNode: 0 }), emptyUsage(), 'a')).toBe(false);
  });

  it('checks maxVmsPerNode only against the named node, with its figures', () => {
    const q = quota({ maxVmsPerNode: 1 });
    const usage = usageOf([{ nodeId: 'a', memoryMiB: 1, vcpus: 1 }]);
    expect(checkQuota(q, usage, { memoryMiB: 1, vcpus: 1 }).ok).toBe(true);
    expect(checkQuota(q, usage, { memoryMiB: 1, vcpus: 1, nodeId: 'b' }).ok).toBe(true);
    expect(checkQuota(q, usage, { memoryMiB: 1, vcpus: 1, nodeId: 'a' })).toEqual({
      ok: false,
      error: {
        code: 'quota_exceeded',
        message: 'tenant acme: VMs on node a 1 + 1 would exceed the per-node limit of 1',
        details: { tenantId: 'acme', limit: 'maxVmsPerNode', limitValue: 1, current: 1, requested: 1, exceeded: ['maxVmsPerNode'] },
      },
    });
  });

  it('names every crossed limit in check order, and the messages give the figures', () => {
    const q = quota({ maxVms: 1, maxVmsPerNode: 1, maxVcpus: 2, maxMemoryMiB: 100 });
    const usage = usageOf([{ nodeId: 'a', memoryMiB: 60, vcpus: 2 }]);
    const refused = checkQuota(q, usage, { memoryMiB: 50, vcpus: 1, nodeId: 'a' });
    expect(!refused.ok && refused.error.details?.['exceeded']).toEqual(['maxVms', 'maxVmsPerNode', 'maxVcpus', 'maxMemoryMiB']);
    expect(!refused.ok && refused.error.message).toBe('tenant acme: VMs 1 + 1 would exceed the limit of 1');
    const vcpus = checkQuota(quota({ maxVcpus: 2 }), usage, { memoryMiB: 1, vcpus: 1 });
    expect(!vcpus.ok && vcpus.error.message).toBe('tenant acme: vCPUs 2 + 1 would exceed the limit of 2');
    const memory = checkQuota(quota({ maxMemoryMiB: 100 }), usage, { memoryMiB: 41, vcpus: 1 });
    expect(!memory.ok && memory.error.message).toBe('tenant acme: memory 60 MiB + 41 MiB would exceed the limit of 100 MiB');
    expect(checkQuota(quota({ maxMemoryMiB: 100 }), usage, { memoryMiB: 40, vcpus: 1 }).ok).toBe(true);
  });

  it('refuses invalid figures naming the field, without counting anything', () => {
    const r = checkQuota(quota({}), emptyUsage(), { memoryMiB: -1, vcpus: 1 });
    expect(!r.ok && r.error).toMatchObject({ code: 'invalid_request', details: { field: 'memoryMiB' } });
    expect(!r.ok && r.error.message).toMatch(/^quota check: memoryMiB: /);
  });
});

describe('usage records', () => {
  it('refuses a quota of another tenant, naming the field', () => {
    const r = withQuota(emptyUsageRecord('acme'), quota({ tenantId: 'other' }));
    expect(r).toEqual({
      ok: false,
      error: {
        code: 'invalid_request',
        message: "quota.tenantId: other is not the record's tenant acme",
        details: { field: 'quota.tenantId' },
      },
    });
  });

  it('moves a VM to another node within maxVmsPerNode, refusing a full node with its figures', () => {
    const vm = { nodeId: 'a', memoryMiB: 512, vcpus: 2 };
    const record = recordWith({ maxVmsPerNode: 1 }, [vm, { nodeId: 'b', memoryMiB: 64, vcpus: 1 }]);
    const toC = movePlacement(record, vm, 'c');
    expect(toC.ok && toC.value.usage).toEqual({ vms: 2, vcpus: 3, memoryMiB: 576, vmsPerNode: { b: 1, c: 1 } });
    expect(movePlacement(record, vm, 'b')).toEqual({
      ok: false,
      error: {
        code: 'quota_exceeded',
        message: 'tenant acme: VMs on node b 1 + 1 would exceed the per-node limit of 1',
        details: { tenantId: 'acme', limit: 'maxVmsPerNode', limitValue: 1, current: 1, requested: 1, exceeded: ['maxVmsPerNode'] },
      },
    });
    // Back onto its own node: what it leaves makes room for it.
    expect(movePlacement(record, vm, 'a').ok).toBe(true);
    // Without a quota every move is allowed.
    const free = { ...emptyUsageRecord('acme'), usage: usageOf([vm, vm]) };
    const moved = movePlacement(free, vm, 'b');
    expect(moved.ok && moved.value.usage.vmsPerNode).toEqual({ a: 1, b: 1 });
  });

  it('admits without a quota and releases what was counted, node by node', () => {
    const admitted = admitPlacement(emptyUsageRecord('acme'), { nodeId: 'a', memoryMiB: 100, vcpus: 2 });
    if (!admitted.ok) throw new Error(admitted.error.message);
    const twice = admitPlacement(admitted.value, { nodeId: 'a', memoryMiB: 50, vcpus: 1 });
    if (!twice.ok) throw new Error(twice.error.message);
    expect(twice.value.usage).toEqual({ vms: 2, vcpus: 3, memoryMiB: 150, vmsPerNode: { a: 2 } });
    const released = releasePlacement(twice.value, { nodeId: 'a', memoryMiB: 100, vcpus: 2 });
    expect(released.usage).toEqual({ vms: 1, vcpus: 1, memoryMiB: 50, vmsPerNode: { a: 1 } });
    expect(twice.value.usage.vms).toBe(2);
    expect(applyRelease(released.usage, { nodeId: 'a', memoryMiB: 50, vcpus: 1 })).toEqual(emptyUsage());
    expect(() => applyRelease(released.usage, { nodeId: 'a', memoryMiB: 1, vcpus: -1 })).toThrow(
      /invalid placement figures \(memoryMiB 1, vcpus -1\)/,
    );
  });
});

describe('more edges', () => {
  it('a used tenant becomes the newest: eviction looks at the least recently used first', () => {
    const sizeAfter = (reuseB: boolean): number => {
      const limiter = new RateLimiter({ maxTenants: 2, evictionScan: 1 });
      expect(limiter.admit(quota({ tenantId: 'b', placeRates: [{ count: 1, per: 'second' }] }), 'place', T0).ok).toBe(true);
      expect(limiter.admit(quota({ tenantId: 'a', placeRates: [{ count: 1, per: 'hour' }] }), 'place', T0).ok).toBe(true);
      if (reuseB)
        expect(limiter.admit(quota({ tenantId: 'b', placeRates: [{ count: 1, per: 'second' }] }), 'place', T0 + 1_000).ok).toBe(true);
      // At T0 + 2 s b is full again, a (hourly) is not: only b can be dropped, and only if it is the oldest.
      expect(limiter.admit(quota({ tenantId: 'c', placeRates: [{ count: 1, per: 'second' }] }), 'place', T0 + 2_000).ok).toBe(true);
      return limiter.size;
    };
    expect(sizeAfter(false)).toBe(2);
    expect(sizeAfter(true)).toBe(3);
  });

  it('drops nobody while under the tenant bound', () => {
    const limiter = new RateLimiter({ maxTenants: 10 });
    for (const t of ['a', 'b', 'c'])
      expect(
        limiter.admit(quota({ tenantId: t, placeRates: [{ count: 1, per: 'second' }] }), 'place', T0 + (t === 'c' ? 5_000 : 0)).ok,
      ).toBe(true);
    expect(limiter.size).toBe(3);
  });

  it('sweeps a tenant only when every one of its buckets is full', () => {
    const limiter = new RateLimiter();
    expect(
      limiter.admit(
        quota({
          placeRates: [
            { count: 1, per: 'second' },
            { count: 5, per: 'hour' },
          ],
        }),
        'place',
        T0,
      ).ok,
    ).toBe(true);
    expect(limiter.sweep(T0 + 1_000)).toBe(0);
    expect(limiter.sweep(T0 + 720_000)).toBe(1);
  });

  it('a full bucket waits 0, not less', () => {
    const bucket = new TokenBucket({ count: 3, per: 'second' }, T0);
    expect(bucket.waitFor(T0)).toBe(0);
    expect(bucket.waitFor(T0, 3)).toBe(0);
  });

  it('checks maxVmsPerNode 0 only once a node is named', () => {
    const q = quota({ maxVmsPerNode: 0 });
    expect(checkQuota(q, emptyUsage(), { memoryMiB: 1, vcpus: 1 }).ok).toBe(true);
    expect(checkQuota(q, emptyUsage(), { memoryMiB: 1, vcpus: 1, nodeId: 'a' }).ok).toBe(false);
  });

  it('names (root) when the request is not an object', () => {
    const r = checkQuota(quota({}), emptyUsage(), null as never);
    expect(!r.ok && r.error).toMatchObject({ code: 'invalid_request', details: { field: '(root)' } });
    expect(!r.ok && r.error.message).toMatch(/^quota check: \(root\): ./);
  });

  it('validates a stored usage record: its counters and that its quota is its own', () => {
    const record = { version: 2, tenantId: 'acme', quota: quota({ maxVms: 1 }), usage: usageOf([{ nodeId: 'a', memoryMiB: 1, vcpus: 1 }]) };
    expect(TenantUsageRecordSchema.safeParse(record).success).toBe(true);
    expect(TenantUsageRecordSchema.safeParse({ version: 2, tenantId: 'acme', usage: emptyUsage() }).success).toBe(true);
    const other = TenantUsageRecordSchema.safeParse({ ...record, quota: quota({ tenantId: 'other' }) });
    expect(other.success).toBe(false);
    expect(other.error?.issues[0]).toMatchObject({ message: 'quota.tenantId must be the record tenantId', path: ['quota', 'tenantId'] });
    expect(TenantUsageRecordSchema.safeParse({ ...record, usage: { ...record.usage, vms: -1 } }).success).toBe(false);
    expect(TenantUsageRecordSchema.safeParse({ ...record, usage: { ...record.usage, vmsPerNode: { a: 0 } } }).success).toBe(false);
    expect(PlacementSchema.safeParse({ nodeId: 'a', memoryMiB: 1, vcpus: 1 }).success).toBe(true);
    expect(PlacementSchema.safeParse({ nodeId: 'a', memoryMiB: 1.5, vcpus: 1 }).success).toBe(false);
  });

  it('counts a VM without memory, and throws on fractional memory', () => {
    expect(applyPlacement(emptyUsage(), { nodeId: 'a', memoryMiB: 0, vcpus: 1 })).toEqual({
      vms: 1,
      vcpus: 1,
      memoryMiB: 0,
      vmsPerNode: { a: 1 },
    });
    expect(() => applyPlacement(emptyUsage(), { nodeId: 'a', memoryMiB: 1.5, vcpus: 1 })).toThrow(RangeError);
    expect(() => applyPlacement(emptyUsage(), { nodeId: 'a', memoryMiB: -1, vcpus: 1 })).toThrow(RangeError);
  });
});
