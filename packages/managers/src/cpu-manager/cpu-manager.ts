import { CpuPolicySchema, HealthThresholdsSchema, LimitsSchema, type ConfigProblem, type CpuPolicy, type HealthThresholds, type HostProbe, type HostTopology, type Result } from '@allot/core';
import { invalidConfig, problemsOf } from '../builder-result.ts';
import { systemClock, type Clock } from '../clock.ts';
import { validateCpuPoolConfig } from '../cpu/index.ts';
import { LocalManager } from '../host/local-manager.ts';
import type { Journal } from '../host/records.ts';
import { CpuSlice } from './cpu-slice.ts';

export interface CpuManagerOptions {
  readonly topology: HostTopology;
  /** Explicit reserved core ids; when empty, `systemReserve` lowest cores are reserved. */
  readonly reservedCores?: readonly number[];
  readonly systemReserve?: number;
  readonly overcommitRatio?: number;
  readonly hardLimit?: number;
  readonly softLimit?: number;
  readonly policy?: CpuPolicy;
  readonly probe?: HostProbe;
  readonly thresholds?: Partial<HealthThresholds>;
  readonly nodeId?: string;
  readonly journal?: Journal;
  readonly clock?: Clock;
}

/**
 * The host's CPU manager: an actor over a CpuPool (shared vCPUs with overcommit, exclusive whole cores, NUMA policy),
 * per-core `used` read from the probe. Standalone or adopted by a HostManager, like MemoryManager.
 */
export class CpuManager extends LocalManager {
  readonly slice: CpuSlice;

  private constructor(slice: CpuSlice, options: CpuManagerOptions) {
    super({ name: 'cpu', nodeId: options.nodeId ?? 'cpu', slices: [slice], journal: options.journal, clock: options.clock });
    this.slice = slice;
  }

  /** Validates the options, returning every problem. */
  static create(options: CpuManagerOptions): Result<CpuManager> {
    const problems: ConfigProblem[] = [];
    const cores = options.topology?.cores?.length ?? 0;
    if (cores === 0) problems.push({ path: 'topology', message: 'a topology with at least one core is required' });
    const reservedCores = options.reservedCores ?? [];
    const limits = LimitsSchema.safeParse({
      capacity: cores,
      systemReserve: options.systemReserve ?? reservedCores.length,
      overcommitRatio: options.overcommitRatio ?? 1,
      ...(options.hardLimit !== undefined ? { hardLimit: options.hardLimit } : {}),
      ...(options.softLimit !== undefined ? { softLimit: options.softLimit } : {}),
    });
    if (!limits.success) problems.push(...problemsOf('limits', limits.error));
    const policy = CpuPolicySchema.safeParse(options.policy ?? 'first-fit');
    if (!policy.success) problems.push(...problemsOf('policy', policy.error));
    const thresholds = HealthThresholdsSchema.safeParse(options.thresholds ?? {});
    if (!thresholds.success) problems.push(...problemsOf('health', thresholds.error));
    if (!limits.success || !policy.success || !thresholds.success || problems.length > 0) return invalidConfig(problems);
    const poolProblems = validateCpuPoolConfig({
      topology: options.topology,
      reservedCores,
      systemReserve: limits.data.systemReserve,
      overcommitRatio: limits.data.overcommitRatio,
      policy: policy.data,
      ...(limits.data.hardLimit !== undefined ? { hardLimit: limits.data.hardLimit } : {}),
    });
    if (poolProblems.length > 0) return invalidConfig(poolProblems);
    const slice = new CpuSlice({
      topology: options.topology,
      reservedCores,
      systemReserve: limits.data.systemReserve,
      overcommitRatio: limits.data.overcommitRatio,
      hardLimit: limits.data.hardLimit,
      softLimit: limits.data.softLimit,
      policy: policy.data,
      thresholds: thresholds.data,
      clock: options.clock ?? systemClock,
      probe: options.probe,
    });
    return { ok: true, value: new CpuManager(slice, options) };
  }

  static builder(): CpuManagerBuilder {
    return new CpuManagerBuilder();
  }
}

/** `CpuManager.builder().topology(t).overcommit(2).reservedCores([0,1]).policy('affinity-aware').build()`. */
export class CpuManagerBuilder {
  #options: Partial<CpuManagerOptions> = {};
  #set(patch: Partial<CpuManagerOptions>): this {
    this.#options = { ...this.#options, ...patch };
    return this;
  }
  topology(topology: HostTopology): this {
    return this.#set({ topology });
  }
  overcommit(overcommitRatio: number): this {
    return this.#set({ overcommitRatio });
  }
  reservedCores(reservedCores: readonly number[]): this {
    return this.#set({ reservedCores });
  }
  reserve(systemReserve: number): this {
    return this.#set({ systemReserve });
  }
  hardLimit(hardLimit: number): this {
    return this.#set({ hardLimit });
  }
  softLimit(softLimit: number): this {
    return this.#set({ softLimit });
  }
  policy(policy: CpuPolicy): this {
    return this.#set({ policy });
  }
  probe(probe: HostProbe): this {
    return this.#set({ probe });
  }
  thresholds(thresholds: Partial<HealthThresholds>): this {
    return this.#set({ thresholds });
  }
  nodeId(nodeId: string): this {
    return this.#set({ nodeId });
  }
  journal(journal: Journal): this {
    return this.#set({ journal });
  }
  clock(clock: Clock): this {
    return this.#set({ clock });
  }
  build(): Result<CpuManager> {
    return CpuManager.create(this.#options as CpuManagerOptions);
  }
}
