import {
  err,
  ok,
  type Allocation,
  type AllocationRequest,
  type CpuGrant,
  type Health,
  type HealthThresholds,
  type HostProbe,
  type HostSample,
  type ResourceType,
  type ResourceUsage,
  type Result,
} from '@allot/core';
import type { Clock } from '../clock.ts';
import { CountingPool } from './counting-pool.ts';
import {
  sliceHealth,
  type ResizeAmounts,
  type ResourceSlice,
  type SliceChange,
  type SliceConfig,
  type SliceFigures,
} from '../host/slice.ts';

export interface CountingSliceOptions {
  readonly type: ResourceType;
  readonly limits: SliceConfig['limits'];
  readonly thresholds: HealthThresholds;
  readonly clock: Clock;
  /** Memory: the probe whose samples give `used`. Other types have no probe figure: used stays 0. */
  readonly probe?: HostProbe;
}

/** Shared take options and reply: nothing here is kept or changed by a caller. */
const AS_RESERVATION = Object.freeze({ reservation: true });
const AS_ALLOCATION = Object.freeze({ reservation: false });
const NO_GRANT: Result<CpuGrant | null> = Object.freeze({ ok: true, value: null });

function usedFrom(type: ResourceType, sample: HostSample | undefined): number {
  if (sample === undefined || type !== 'memory') return 0;
  return Math.max(0, Math.round(sample.memory.usedMiB));
}

/** A slice counting integer units: memory (MiB, used from the probe) or any other type (units, no probe figure). */
export class CountingSlice implements ResourceSlice {
  readonly type: ResourceType;
  readonly probe: HostProbe | undefined;
  thresholds: HealthThresholds;
  readonly #base: SliceConfig;
  readonly #clock: Clock;
  #pool: CountingPool;

  constructor(options: CountingSliceOptions) {
    this.type = options.type;
    this.probe = options.probe;
    this.thresholds = options.thresholds;
    this.#clock = options.clock;
    this.#base = { limits: options.limits };
    this.#pool = this.#newPool(options.limits);
  }

  #newPool(limits: SliceConfig['limits']): CountingPool {
    return new CountingPool(this.type, this.type === 'memory' ? 'MiB' : 'units', limits);
  }

  /** The pool itself, for tests and figures. */
  get pool(): CountingPool {
    return this.#pool;
  }

  amountOf(request: AllocationRequest): number {
    if (this.type === 'memory') return request.resources.memoryMiB;
    return request.resources.extra?.[this.type] ?? 0;
  }

  figures(request: AllocationRequest): SliceFigures {
    return { requested: this.amountOf(request), free: this.#pool.available, effectiveCapacity: this.#pool.effectiveCapacity };
  }

  check(request: AllocationRequest): Result<void> {
    return this.#pool.check(this.amountOf(request));
  }

  take(allocationId: string, request: AllocationRequest, reservation: boolean): Result<CpuGrant | null> {
    const taken = this.#pool.take(allocationId, this.amountOf(request), reservation ? AS_RESERVATION : AS_ALLOCATION);
    return taken.ok ? NO_GRANT : taken;
  }

  /** Memory follows `to.memoryMiB`; other counted types are not resized (their share stays). */
  resize(allocation: Allocation, to: ResizeAmounts): Result<CpuGrant | null> {
    if (this.type !== 'memory' || to.memoryMiB === allocation.granted.memoryMiB) return NO_GRANT;
    const resized = this.#pool.resize(allocation.id, to.memoryMiB);
    if (resized.ok) return NO_GRANT;
    if (resized.error.code !== 'insufficient_capacity') return resized;
    return {
      ok: false,
      error: { ...resized.error, details: { ...resized.error.details, from: allocation.granted.memoryMiB, to: to.memoryMiB } },
    };
  }

  /** The holder's amount set to what `allocation` holds (counted pools check no collisions, so free and restore do). */
  reshape(allocation: Allocation): Result<void> {
    const reservation = this.#pool.isReservation(allocation.id);
    this.#pool.free(allocation.id);
    return this.restore(allocation, reservation);
  }

  restore(allocation: Allocation, reservation: boolean): Result<void> {
    const amount = this.type === 'memory' ? allocation.granted.memoryMiB : (allocation.granted.extra?.[this.type] ?? 0);
    return this.#pool.restore(allocation.id, amount, { reservation });
  }

  free(allocationId: string): boolean {
    return this.#pool.free(allocationId);
  }

  markActive(allocationId: string): void {
    this.#pool.markActive(allocationId);
  }

  holds(allocationId: string): boolean {
    return this.#pool.holds(allocationId);
  }

  get committed(): number {
    return this.#pool.committed;
  }

  usage(): ResourceUsage {
    const u = this.#pool.usage(usedFrom(this.type, this.probe?.latest()));
    return { resourceType: this.type, unit: this.type === 'memory' ? 'MiB' : 'unit', ...u };
  }

  config(): SliceConfig {
    return { limits: this.#pool.limits() };
  }

  reconfigure(change: SliceChange, force: boolean): Result<SliceConfig> {
    if (change.reservedCores !== undefined || change.policy !== undefined) {
      return err('invalid_request', `${this.type}: reservedCores and policy apply to cpu only`, {
        field: change.policy !== undefined ? 'policy' : 'reservedCores',
      });
    }
    const next = this.#pool.reconfigure(change, force);
    return next.ok ? ok({ limits: next.value }) : next;
  }

  health(): Health {
    const u = this.usage();
    return sliceHealth(this.type, { ...u, softLimit: this.#pool.limits().softLimit }, this.thresholds, this.probe, this.#clock.now());
  }

  reset(config?: SliceConfig): void {
    this.#pool = this.#newPool((config ?? this.#base).limits);
  }
}
