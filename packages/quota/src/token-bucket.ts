import type { Rate } from '@allot/core';

/*
 * A token bucket with exact integer arithmetic. The legacy system computed a per-second rate as `limit / 3600` in
 * integers, so every hourly limit under 3600 became a rate of zero. Here nothing is divided until a wait is reported:
 *
 *   one token = periodMs units, the bucket refills `count` units per millisecond, capacity = count tokens.
 *
 * So 100 per hour is 3_600_000 units a token, refilled at 100 units/ms: one token every 36_000 ms, exactly. The largest
 * level, count x periodMs <= 1e9 x 3.6e6 = 3.6e15, stays below 2^53, so plain numbers are exact.
 * Time is injected (`now`, epoch ms); there are no timers.
 */

/** Length of each rate period in milliseconds. */
export const PERIOD_MS: Readonly<Record<Rate['per'], number>> = { second: 1_000, minute: 60_000, hour: 3_600_000 };

/** What take answers: a token (or n) was taken, or none was and the exact wait until they would be there. */
export type TakeResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };

export class TokenBucket {
  /** The rate this bucket enforces; capacity is rate.count (one full period's burst). */
  readonly rate: Rate;
  readonly #unitsPerToken: number;
  readonly #capacityUnits: number;
  #levelUnits: number;
  #updatedAt: number;

  /** A bucket starts full at `now`. */
  constructor(rate: Rate, now: number) {
    if (!Number.isSafeInteger(rate.count) || rate.count < 1 || PERIOD_MS[rate.per] === undefined) {
      throw new RangeError(`invalid rate ${rate.count} per ${rate.per}: validate with RateSchema first`);
    }
    this.rate = rate;
    this.#unitsPerToken = PERIOD_MS[rate.per];
    this.#capacityUnits = rate.count * this.#unitsPerToken;
    this.#levelUnits = this.#capacityUnits;
    this.#updatedAt = now;
  }

  /** Whole tokens available at `now`. */
  available(now: number): number {
    this.#refill(now);
    return Math.floor(this.#levelUnits / this.#unitsPerToken);
  }

  /** Whether the bucket is full at `now`: dropping it then and creating a new one loses nothing. */
  isFull(now: number): boolean {
    this.#refill(now);
    return this.#levelUnits === this.#capacityUnits;
  }

  /** 0 when n tokens are there at `now`, else the exact milliseconds until they will be. Takes nothing. */
  waitFor(now: number, n = 1): number {
    this.#checkAmount(n);
    this.#refill(now);
    const missing = n * this.#unitsPerToken - this.#levelUnits;
    if (missing <= 0) return 0;
    // Counted from the bucket's own time; a `now` behind it (the clock stepped back) waits that much longer.
    return Math.ceil(missing / this.rate.count) + Math.max(0, this.#updatedAt - now);
  }

  /** Take n tokens (1 by default) at `now`, or none and say how long to wait. n above the capacity is a bug and throws. */
  take(now: number, n = 1): TakeResult {
    const wait = this.waitFor(now, n);
    if (wait > 0) return { ok: false, retryAfterMs: wait };
    this.#levelUnits -= n * this.#unitsPerToken;
    return { ok: true };
  }

  #checkAmount(n: number): void {
    if (!Number.isSafeInteger(n) || n < 1 || n > this.rate.count) {
      throw new RangeError(`cannot take ${n} tokens from a bucket of ${this.rate.count}`);
    }
  }

  /** Adds what elapsed since the last update. A clock that steps back refills nothing and does not move time back. */
  #refill(now: number): void {
    if (now <= this.#updatedAt) return;
    const elapsed = now - this.#updatedAt;
    this.#updatedAt = now;
    const missing = this.#capacityUnits - this.#levelUnits;
    if (missing === 0) return;
    // elapsed x count could pass 2^53 after a long idle; compare in ms first so the product stays small.
    if (elapsed >= Math.ceil(missing / this.rate.count)) this.#levelUnits = this.#capacityUnits;
    else this.#levelUnits += elapsed * this.rate.count;
  }
}
