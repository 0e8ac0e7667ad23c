import type { Rate } from '@allot/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PERIOD_MS, TokenBucket } from './token-bucket.ts';

const T0 = 1_700_000_000_000;

/** Takes until refused; returns how many were admitted and the refusal. */
function drain(bucket: TokenBucket, now: number) {
  let admitted = 0;
  for (;;) {
    const r = bucket.take(now);
    if (!r.ok) return { admitted, retryAfterMs: r.retryAfterMs };
    admitted += 1;
  }
}

describe('TokenBucket', () => {
  it.each([
    [{ count: 10, per: 'second' }, 100],
    [{ count: 30, per: 'minute' }, 2_000],
    [{ count: 100, per: 'hour' }, 36_000],
    [{ count: 7, per: 'hour' }, 514_286],
  ] as const)('admits a burst of exactly count for %o, then refuses with the exact wait of %i ms', (rate, wait) => {
    const bucket = new TokenBucket(rate, T0);
    expect(drain(bucket, T0)).toEqual({ admitted: rate.count, retryAfterMs: wait });
  });

  it('admits the 101st request of an hourly limit of 100 exactly 36 s after the burst, never a rate of zero', () => {
    const bucket = new TokenBucket({ count: 100, per: 'hour' }, T0);
    expect(drain(bucket, T0).admitted).toBe(100);
    expect(bucket.take(T0 + 35_999)).toEqual({ ok: false, retryAfterMs: 1 });
    expect(bucket.take(T0 + 36_000)).toEqual({ ok: true });
    expect(bucket.take(T0 + 36_000)).toEqual({ ok: false, retryAfterMs: 36_000 });
  });

  it("refills at the rate's pace: one per-minute token every 2 s for 30 per minute, full after a minute", () => {
    const bucket = new TokenBucket({ count: 30, per: 'minute' }, T0);
    drain(bucket, T0);
    expect(bucket.available(T0 + 1_999)).toBe(0);
    expect(bucket.available(T0 + 2_000)).toBe(1);
    expect(bucket.available(T0 + 20_000)).toBe(10);
    expect(bucket.available(T0 + 60_000)).toBe(30);
    expect(bucket.available(T0 + 10 * 60_000)).toBe(30);
    expect(bucket.isFull(T0 + 10 * 60_000)).toBe(true);
  });

  it('tells the exact wait for several tokens and takes none when refusing', () => {
    const bucket = new TokenBucket({ count: 10, per: 'second' }, T0);
    expect(bucket.take(T0, 10).ok).toBe(true);
    expect(bucket.take(T0 + 150, 3)).toEqual({ ok: false, retryAfterMs: 150 });
    expect(bucket.available(T0 + 150)).toBe(1);
  });

  it('refills nothing when the clock steps back', () => {
    const bucket = new TokenBucket({ count: 2, per: 'second' }, T0);
    drain(bucket, T0 + 1_000);
    expect(bucket.take(T0)).toEqual({ ok: false, retryAfterMs: 1_500 });
    expect(bucket.available(T0 + 1_499)).toBe(0);
  });

  it('stays exact at the largest rate after a very long idle', () => {
    const bucket = new TokenBucket({ count: 1_000_000_000, per: 'hour' }, 0);
    expect(bucket.take(0, 1_000_000_000).ok).toBe(true);
    expect(bucket.available(Number.MAX_SAFE_INTEGER)).toBe(1_000_000_000);
  });

  it('throws when asked for more tokens than it can ever hold', () => {
    expect(() => new TokenBucket({ count: 5, per: 'second' }, T0).take(T0, 6)).toThrow(RangeError);
  });

  it('never admits in any window more than count plus the refill within it, and its waits are exact', () => {
    const rateArb = fc.record({ count: fc.integer({ min: 1, max: 20 }), per: fc.constantFrom<Rate['per']>('second', 'minute', 'hour') });
    const stepArb = fc.record({ advanceFraction: fc.integer({ min: 0, max: 1500 }), n: fc.integer({ min: 1, max: 3 }) });
    fc.assert(
      fc.property(rateArb, fc.array(stepArb, { maxLength: 200 }), (rate, steps) => {
        const period = PERIOD_MS[rate.per];
        const bucket = new TokenBucket(rate, 0);
        const admitted: number[] = [];
        let now = 0;
        for (const step of steps) {
          // advance by 0..1.5 token intervals, so runs of bursts and of idling both occur
          now += Math.floor((step.advanceFraction * period) / rate.count / 1000);
          const n = Math.min(step.n, rate.count);
          const r = bucket.take(now, n);
          if (r.ok) {
            for (let i = 0; i < n; i += 1) admitted.push(now);
            continue;
          }
          // exact wait: one millisecond earlier is still refused, at the wait it passes
          expect(r.retryAfterMs).toBeGreaterThan(0);
          expect(bucket.take(now + r.retryAfterMs - 1, n).ok).toBe(false);
          now += r.retryAfterMs;
          expect(bucket.take(now, n).ok).toBe(true);
          for (let i = 0; i < n; i += 1) admitted.push(now);
        }
        // admissions in [admitted[i], admitted[j]] <= count + tokens refilled over that span
        for (let i = 0; i < admitted.length; i += 1) {
          for (let j = i; j < admitted.length; j += 1) {
            const span = (admitted[j] as number) - (admitted[i] as number);
            expect(j - i + 1).toBeLessThanOrEqual(rate.count + Math.floor((span * rate.count) / period));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
