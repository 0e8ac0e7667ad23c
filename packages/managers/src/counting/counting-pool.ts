import {
  effectiveCapacity,
  err,
  LimitsSchema,
  ok,
  zodToAllotError,
  type Limits,
  type LimitsInput,
  type ResourceType,
  type Result,
} from '@allot/core';

/** One holder's share of a counting pool. */
interface Hold {
  readonly amount: number;
  reserved: boolean;
}

/** What a counting pool reports; `used` comes from the caller (the probe), never from the pool. */
export interface CountingUsage {
  readonly capacity: number;
  readonly systemReserve: number;
  readonly effectiveCapacity: number;
  readonly committed: number;
  readonly reserved: number;
  readonly used: number;
  readonly allocationCount: number;
}

/** A limits change: any subset of the fields; `hardLimit: null` / `softLimit: null` removes the limit. */
export type LimitsChange = Partial<Omit<LimitsInput, 'hardLimit' | 'softLimit'>> & { hardLimit?: number | null; softLimit?: number | null };

/** Applies a change to limits and validates the result with the core schema, every problem reported. */
export function changeLimits(current: Limits, change: LimitsChange): Result<Limits> {
  const merged: Record<string, unknown> = { ...current, ...change };
  if (change.hardLimit === null) delete merged.hardLimit;
  if (change.softLimit === null) delete merged.softLimit;
  const parsed = LimitsSchema.safeParse(merged);
  return parsed.success ? ok(parsed.data) : { ok: false, error: zodToAllotError(parsed.error) };
}

/**
 * Pure, synchronous accounting of one integer-counted resource (memory in MiB, or units of a custom type):
 * committed <= effective capacity, always, except right after a forced shrink, when nothing new is admitted until
 * committed is back under. No I/O, no clock: the managers own those.
 */
export class CountingPool {
  readonly resourceType: ResourceType;
  readonly unitName: string;
  #limits: Limits;
  #effective: number;
  readonly #holds = new Map<string, Hold>();
  #committed = 0;
  #reserved = 0;

  constructor(resourceType: ResourceType, unitName: string, limits: Limits) {
    this.resourceType = resourceType;
    this.unitName = unitName;
    this.#limits = limits;
    this.#effective = effectiveCapacity(limits);
  }

  get committed(): number {
    return this.#committed;
  }
  get reserved(): number {
    return this.#reserved;
  }
  get effectiveCapacity(): number {
    return this.#effective;
  }
  /** Free capacity; 0 (not negative) after a forced shrink below committed. */
  get available(): number {
    return Math.max(0, this.#effective - this.#committed);
  }
  get holdCount(): number {
    return this.#holds.size;
  }

  /** True when committed has crossed the soft limit (health Degraded; nothing is refused for it). */
  get softLimitCrossed(): boolean {
    return this.#limits.softLimit !== undefined && this.#committed > this.#limits.softLimit;
  }

  /** Would `amount` fit now? The refusal carries the figures. */
  check(amount: number): Result<void> {
    if (!Number.isSafeInteger(amount) || amount < 0) {
      return err('invalid_request', `${this.resourceType}: amount must be a non-negative integer, got ${amount}`, {
        field: 'amount',
        amount,
      });
    }
    if (amount > this.available) {
      return err(
        'insufficient_capacity',
        `${this.resourceType}: requested ${amount} ${this.unitName}, free ${this.available} ${this.unitName} of ${this.#effective} ${this.unitName} effective capacity`,
        { resourceType: this.resourceType, requested: amount, free: this.available, effectiveCapacity: this.#effective },
      );
    }
    return ok(undefined);
  }

  /** Commits `amount` for `holderId` if it fits; a holder holds at most once. */
  take(holderId: string, amount: number, opts?: { reservation?: boolean }): Result<number> {
    if (this.#holds.has(holderId)) return err('conflict', `${this.resourceType}: ${holderId} already holds capacity`, { holderId });
    const fits = this.check(amount);
    if (!fits.ok) return fits;
    this.#add(holderId, amount, opts?.reservation === true);
    return ok(amount);
  }

  /**
   * Re-installs a hold read back from durable state. It does not check capacity: the hold was admitted when it was
   * committed, and a forced shrink since may legitimately leave committed above capacity.
   */
  restore(holderId: string, amount: number, opts?: { reservation?: boolean }): Result<void> {
    if (this.#holds.has(holderId)) return err('conflict', `${this.resourceType}: ${holderId} already holds capacity`, { holderId });
    if (!Number.isSafeInteger(amount) || amount < 0)
      return err('invalid_request', `${this.resourceType}: amount must be a non-negative integer`, { amount });
    this.#add(holderId, amount, opts?.reservation === true);
    return ok(undefined);
  }

  #add(holderId: string, amount: number, reservation: boolean): void {
    this.#holds.set(holderId, { amount, reserved: reservation });
    this.#committed += amount;
    if (reservation) this.#reserved += amount;
  }

  /**
   * Changes what `holderId` holds to `amount`: a shrink always succeeds, a grow only when the growth fits what is
   * free (the refusal carries requested = the growth, free, effectiveCapacity). A refusal changes nothing.
   */
  resize(holderId: string, amount: number): Result<number> {
    const hold = this.#holds.get(holderId);
    if (hold === undefined) return err('not_found', `${this.resourceType}: ${holderId} holds nothing`, { holderId });
    if (!Number.isSafeInteger(amount) || amount < 0)
      return err('invalid_request', `${this.resourceType}: amount must be a non-negative integer, got ${amount}`, {
        field: 'amount',
        amount,
      });
    const growth = amount - hold.amount;
    if (growth > 0) {
      const fits = this.check(growth);
      if (!fits.ok) return fits;
    }
    this.#holds.delete(holderId);
    this.#committed -= hold.amount;
    if (hold.reserved) this.#reserved -= hold.amount;
    this.#add(holderId, amount, hold.reserved);
    return ok(amount);
  }

  /** A reservation becomes an allocation: still committed, no longer counted as reserved. */
  markActive(holderId: string): void {
    const hold = this.#holds.get(holderId);
    if (hold === undefined || !hold.reserved) return;
    hold.reserved = false;
    this.#reserved -= hold.amount;
  }

  /** Returns the holder's capacity; false when it held nothing. */
  free(holderId: string): boolean {
    const hold = this.#holds.get(holderId);
    if (hold === undefined) return false;
    this.#holds.delete(holderId);
    this.#committed -= hold.amount;
    if (hold.reserved) this.#reserved -= hold.amount;
    return true;
  }

  holds(holderId: string): boolean {
    return this.#holds.has(holderId);
  }

  /** Whether the holder's share is a reservation's (false when it holds nothing). */
  isReservation(holderId: string): boolean {
    return this.#holds.get(holderId)?.reserved === true;
  }

  usage(used: number): CountingUsage {
    return {
      capacity: this.#limits.capacity,
      systemReserve: this.#limits.systemReserve,
      effectiveCapacity: this.#effective,
      committed: this.#committed,
      reserved: this.#reserved,
      used,
      allocationCount: this.#holds.size,
    };
  }

  limits(): Limits {
    return { ...this.#limits };
  }

  /** Changes the limits; shrinking the effective capacity below committed is a `conflict` with the figures unless forced. */
  reconfigure(change: LimitsChange, force = false): Result<Limits> {
    const next = changeLimits(this.#limits, change);
    if (!next.ok) return next;
    const nextEffective = effectiveCapacity(next.value);
    if (nextEffective < this.#committed && !force) {
      return err(
        'conflict',
        `${this.resourceType}: new effective capacity ${nextEffective} ${this.unitName} is below the ${this.#committed} ${this.unitName} committed; release first or force`,
        { resourceType: this.resourceType, effectiveCapacity: nextEffective, committed: this.#committed },
      );
    }
    this.#limits = next.value;
    this.#effective = nextEffective;
    return ok(this.limits());
  }
}
