import { HealthThresholdsSchema, LimitsSchema, type ConfigProblem, type HealthThresholds, type HostProbe, type LimitsInput, type Result } from '@allot/core';
import { systemClock, type Clock } from '../clock.ts';
import { CountingSlice } from '../generic/counting-slice.ts';
import { LocalManager } from '../host/local-manager.ts';
import type { Journal } from '../host/records.ts';
import { invalidConfig, problemsOf } from '../builder-result.ts';

export interface MemoryManagerOptions {
  /** Capacity and reserve in MiB; validated with LimitsSchema. */
  readonly limits: LimitsInput;
  readonly probe?: HostProbe;
  readonly thresholds?: Partial<HealthThresholds>;
  readonly nodeId?: string;
  readonly journal?: Journal;
  readonly clock?: Clock;
  readonly releasedRetentionMs?: number;
}

/**
 * The host's memory manager: an actor over a MemoryPool (MiB), `used` read from the probe, refusing what does not fit
 * with the figures. Standalone it keeps its own allocations; added to a HostManager it hands its pool to the
 * composite, which then owns every change.
 */
export class MemoryManager extends LocalManager {
  readonly slice: CountingSlice;

  private constructor(slice: CountingSlice, options: MemoryManagerOptions) {
    super({ name: 'memory', nodeId: options.nodeId ?? 'memory', slices: [slice], journal: options.journal, clock: options.clock, releasedRetentionMs: options.releasedRetentionMs });
    this.slice = slice;
  }

  /** Validates the options, returning every problem. */
  static create(options: MemoryManagerOptions): Result<MemoryManager> {
    const problems: ConfigProblem[] = [];
    const limits = LimitsSchema.safeParse(options.limits);
    if (!limits.success) problems.push(...problemsOf('limits', limits.error));
    const thresholds = HealthThresholdsSchema.safeParse(options.thresholds ?? {});
    if (!thresholds.success) problems.push(...problemsOf('health', thresholds.error));
    if (!limits.success || !thresholds.success || problems.length > 0) return invalidConfig(problems);
    const clock = options.clock ?? systemClock;
    const slice = new CountingSlice({ type: 'memory', limits: limits.data, thresholds: thresholds.data, clock, probe: options.probe });
    return { ok: true, value: new MemoryManager(slice, options) };
  }

  static builder(): MemoryManagerBuilder {
    return new MemoryManagerBuilder();
  }
}

/** `MemoryManager.builder().capacity(16384).overcommit(1.5).reserve(1024).probe(p).build()`: every problem at build. */
export class MemoryManagerBuilder {
  #limits: Partial<Record<keyof LimitsInput, unknown>> = {};
  #options: Omit<MemoryManagerOptions, 'limits'> = {};

  capacity(mib: number): this {
    this.#limits.capacity = mib;
    return this;
  }
  overcommit(ratio: number): this {
    this.#limits.overcommitRatio = ratio;
    return this;
  }
  reserve(mib: number): this {
    this.#limits.systemReserve = mib;
    return this;
  }
  softLimit(mib: number): this {
    this.#limits.softLimit = mib;
    return this;
  }
  hardLimit(mib: number): this {
    this.#limits.hardLimit = mib;
    return this;
  }
  probe(probe: HostProbe): this {
    this.#options = { ...this.#options, probe };
    return this;
  }
  thresholds(thresholds: Partial<HealthThresholds>): this {
    this.#options = { ...this.#options, thresholds };
    return this;
  }
  nodeId(nodeId: string): this {
    this.#options = { ...this.#options, nodeId };
    return this;
  }
  journal(journal: Journal): this {
    this.#options = { ...this.#options, journal };
    return this;
  }
  clock(clock: Clock): this {
    this.#options = { ...this.#options, clock };
    return this;
  }

  build(): Result<MemoryManager> {
    return MemoryManager.create({ ...this.#options, limits: this.#limits as LimitsInput });
  }
}

