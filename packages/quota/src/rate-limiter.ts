import { err, ok, type Rate, type Result, type TenantQuota } from '@allot/core';
import { TokenBucket } from './token-bucket.ts';

/** The operations a tenant's rates apply to. */
export type RateOperation = 'place' | 'release';

/** What the limiter needs of a quota: whose it is and its rates. */
export type TenantRates = Pick<TenantQuota, 'tenantId' | 'placeRates' | 'releaseRates'>;

export interface RateLimiterOptions {
  /**
   * Tenants tracked before the least recently used ones are dropped. Only a tenant whose buckets are all full is dropped
   * (a new full bucket is then exactly the same); a tenant still refilling is kept even above this bound, because
   * dropping it would hand it a fresh burst. So memory is bounded by maxTenants plus the tenants active within their
   * longest period. Default 10_000.
   */
  readonly maxTenants?: number;
  /** How many least recently used tenants one admission looks at for eviction (amortised cost). Default 8. */
  readonly evictionScan?: number;
}

interface OperationBuckets {
  /** The rates these buckets were built for, to notice a quota change. */
  readonly rates: readonly Rate[];
  readonly buckets: readonly TokenBucket[];
}

type TenantBuckets = Partial<Record<RateOperation, OperationBuckets>>;

/**
 * Several token buckets per tenant and operation (say 10 per second and 100 per hour). A request passes only when every
 * bucket has a token, and then takes one from each: never a partial take that would spend one bucket's token on a
 * refused request. Time is injected; no timers.
 */
export class RateLimiter {
  readonly #maxTenants: number;
  readonly #evictionScan: number;
  /** Insertion order is use order: a use moves the tenant to the end (LRU). */
  readonly #tenants = new Map<string, TenantBuckets>();

  constructor(options: RateLimiterOptions = {}) {
    this.#maxTenants = options.maxTenants ?? 10_000;
    this.#evictionScan = options.evictionScan ?? 8;
  }

  /** Tenants currently tracked. */
  get size(): number {
    return this.#tenants.size;
  }

  /**
   * Admit one `operation` request of the tenant at `now`, or refuse with rate_limited and the exact wait after which
   * every bucket has a token again (the longest of the buckets' waits, since buckets only fill up meanwhile).
   * A tenant without rates for the operation is always admitted and costs no memory. `cost`: requests this one counts
   * as (a batch's members); each bucket takes at most its burst, so a batch above a burst waits for a full bucket.
   */
  admit(quota: TenantRates, operation: RateOperation, now: number, cost = 1): Result<void> {
    const rates = operation === 'place' ? quota.placeRates : quota.releaseRates;
    if (rates.length === 0) return ok(undefined);
    const buckets = this.#bucketsFor(quota.tenantId, operation, rates, now);

    let slowest: TokenBucket | undefined;
    let retryAfterMs = 0;
    const tokens = (bucket: TokenBucket): number => Math.min(cost, bucket.rate.count);
    for (const bucket of buckets) {
      const wait = bucket.waitFor(now, tokens(bucket));
      if (wait > retryAfterMs) {
        retryAfterMs = wait;
        slowest = bucket;
      }
    }
    if (slowest !== undefined) {
      const { count, per } = slowest.rate;
      return err(
        'rate_limited',
        `tenant ${quota.tenantId}: more than ${count} ${operation} requests per ${per}; retry in ${retryAfterMs} ms`,
        {
          tenantId: quota.tenantId,
          operation,
          rate: { count, per },
          retryAfterMs,
        },
      );
    }
    for (const bucket of buckets) bucket.take(now, tokens(bucket));
    return ok(undefined);
  }

  /** Drop every tenant whose buckets are all full at `now`: a periodic sweep for a caller that wants memory back. */
  sweep(now: number): number {
    let dropped = 0;
    for (const [tenantId, tenant] of this.#tenants) {
      if (allFull(tenant, now)) {
        this.#tenants.delete(tenantId);
        dropped += 1;
      }
    }
    return dropped;
  }

  /** Forget a tenant (its quota was deleted). */
  forget(tenantId: string): void {
    this.#tenants.delete(tenantId);
  }

  #bucketsFor(tenantId: string, operation: RateOperation, rates: readonly Rate[], now: number): readonly TokenBucket[] {
    let tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) {
      tenant = {};
      this.#evictIdle(now);
    } else {
      this.#tenants.delete(tenantId);
    }
    this.#tenants.set(tenantId, tenant);

    const current = tenant[operation];
    if (current !== undefined && sameRates(current.rates, rates)) return current.buckets;
    // New or changed rates: keep the bucket of a rate that did not change, so a quota edit is not a free refill.
    const reusable = [...(current?.buckets ?? [])];
    const buckets = rates.map((rate) => {
      const i = reusable.findIndex((b) => b.rate.count === rate.count && b.rate.per === rate.per);
      return i === -1 ? new TokenBucket(rate, now) : (reusable.splice(i, 1)[0] as TokenBucket);
    });
    tenant[operation] = { rates: rates.map((r) => ({ count: r.count, per: r.per })), buckets };
    return buckets;
  }

  #evictIdle(now: number): void {
    if (this.#tenants.size < this.#maxTenants) return;
    let scanned = 0;
    for (const [tenantId, tenant] of this.#tenants) {
      if (scanned >= this.#evictionScan || this.#tenants.size < this.#maxTenants) break;
      scanned += 1;
      if (allFull(tenant, now)) this.#tenants.delete(tenantId);
    }
  }
}

function allFull(tenant: TenantBuckets, now: number): boolean {
  for (const op of [tenant.place, tenant.release]) {
    if (op !== undefined && !op.buckets.every((b) => b.isFull(now))) return false;
  }
  return true;
}

function sameRates(a: readonly Rate[], b: readonly Rate[]): boolean {
  return a.length === b.length && a.every((r, i) => r.count === b[i]?.count && r.per === b[i]?.per);
}
