import { TenantQuotaSchema, type TenantQuota } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.ts';

const T0 = 1_700_000_000_000;
const quota = (q: Partial<TenantQuota>): TenantQuota => TenantQuotaSchema.parse({ tenantId: 'acme', ...q });

describe('RateLimiter', () => {
  it('refuses with rate_limited, the rate and the exact wait once the hourly budget is spent', () => {
    const limiter = new RateLimiter();
    const q = quota({ placeRates: [{ count: 100, per: 'hour' }] });
    for (let i = 0; i < 100; i += 1) expect(limiter.admit(q, 'place', T0).ok).toBe(true);
    expect(limiter.admit(q, 'place', T0)).toEqual({
      ok: false,
      error: {
        code: 'rate_limited',
        message: 'tenant acme: more than 100 place requests per hour; retry in 36000 ms',
        details: { tenantId: 'acme', operation: 'place', rate: { count: 100, per: 'hour' }, retryAfterMs: 36_000 },
      },
    });
    expect(limiter.admit(q, 'place', T0 + 36_000).ok).toBe(true);
  });

  it('admits only when every bucket has a token, and then takes from all of them', () => {
    const limiter = new RateLimiter();
    const q = quota({
      placeRates: [
        { count: 2, per: 'second' },
        { count: 3, per: 'minute' },
      ],
    });
    expect(limiter.admit(q, 'place', T0).ok).toBe(true);
    expect(limiter.admit(q, 'place', T0).ok).toBe(true);
    const perSecond = limiter.admit(q, 'place', T0);
    expect(!perSecond.ok && perSecond.error.details).toMatchObject({ rate: { count: 2, per: 'second' }, retryAfterMs: 500 });
    // The refusal took nothing from the minute bucket: one token is left there.
    expect(limiter.admit(q, 'place', T0 + 1_000).ok).toBe(true);
    const perMinute = limiter.admit(q, 'place', T0 + 2_000);
    // Minute bucket empty at T0+1000: next token at T0 + 20 s, i.e. 18 s from now; the second bucket is full again.
    expect(!perMinute.ok && perMinute.error.details).toMatchObject({ rate: { count: 3, per: 'minute' }, retryAfterMs: 18_000 });
  });

  it('reports the longest wait when several buckets are empty', () => {
    const limiter = new RateLimiter();
    const q = quota({
      placeRates: [
        { count: 1, per: 'second' },
        { count: 1, per: 'minute' },
      ],
    });
    expect(limiter.admit(q, 'place', T0).ok).toBe(true);
    const r = limiter.admit(q, 'place', T0);
    expect(!r.ok && r.error.details).toMatchObject({ rate: { count: 1, per: 'minute' }, retryAfterMs: 60_000 });
  });

  it('limits place and release separately and lets through an operation without rates', () => {
    const limiter = new RateLimiter();
    const q = quota({ placeRates: [{ count: 1, per: 'minute' }] });
    expect(limiter.admit(q, 'place', T0).ok).toBe(true);
    expect(limiter.admit(q, 'place', T0).ok).toBe(false);
    for (let i = 0; i < 1000; i += 1) expect(limiter.admit(q, 'release', T0).ok).toBe(true);
  });

  it('keeps tenants apart', () => {
    const limiter = new RateLimiter();
    const rates = [{ count: 1, per: 'hour' as const }];
    expect(limiter.admit(quota({ tenantId: 'a', placeRates: rates }), 'place', T0).ok).toBe(true);
    expect(limiter.admit(quota({ tenantId: 'b', placeRates: rates }), 'place', T0).ok).toBe(true);
    expect(limiter.admit(quota({ tenantId: 'a', placeRates: rates }), 'place', T0).ok).toBe(false);
  });

  it('keeps the bucket of an unchanged rate when the quota changes, so an edit is no free refill', () => {
    const limiter = new RateLimiter();
    const hourly = { count: 1, per: 'hour' as const };
    expect(limiter.admit(quota({ placeRates: [hourly] }), 'place', T0).ok).toBe(true);
    const edited = quota({ placeRates: [{ count: 100, per: 'second' }, hourly] });
    expect(limiter.admit(edited, 'place', T0 + 1).ok).toBe(false);
  });

  it('stays within its tenant bound by dropping idle tenants whose buckets are full', () => {
    const limiter = new RateLimiter({ maxTenants: 100 });
    const rates = [{ count: 5, per: 'second' as const }];
    for (let i = 0; i < 1000; i += 1) {
      // Each tenant uses one token; 1 s later its bucket is full again and it may be dropped without loss.
      expect(limiter.admit(quota({ tenantId: `t${i}`, placeRates: rates }), 'place', T0 + i * 1_000).ok).toBe(true);
      expect(limiter.size).toBeLessThanOrEqual(100);
    }
  });

  it('keeps a tenant that is still refilling even above the bound, rather than give it a fresh burst', () => {
    const limiter = new RateLimiter({ maxTenants: 2 });
    const rates = [{ count: 1, per: 'hour' as const }];
    for (const t of ['a', 'b', 'c']) expect(limiter.admit(quota({ tenantId: t, placeRates: rates }), 'place', T0).ok).toBe(true);
    expect(limiter.size).toBe(3);
    expect(limiter.admit(quota({ tenantId: 'a', placeRates: rates }), 'place', T0 + 1).ok).toBe(false);
    expect(limiter.sweep(T0 + 3_600_000)).toBe(3);
    expect(limiter.size).toBe(0);
  });
});
