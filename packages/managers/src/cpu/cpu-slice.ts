import {
  err,
  errorOf,
  ok,
  type AllotError,
  type Allocation,
  type AllocationRequest,
  type CpuGrant,
  type CpuPolicy,
  type Health,
  type HealthThresholds,
  type HostProbe,
  type HostTopology,
  type Limits,
  type ResourceUsage,
  type Result,
} from '@allot/core';
import type { Clock } from '../clock.ts';
import { CpuPool, type CpuPoolConfig, type CpuRequest } from './index.ts';
import {
  sliceHealth,
  type ResizeAmounts,
  type ResourceSlice,
  type SliceChange,
  type SliceConfig,
  type SliceFigures,
} from '../host/slice.ts';

export interface CpuSliceOptions {
  readonly topology: HostTopology;
  readonly reservedCores: readonly number[];
  readonly systemReserve: number;
  readonly overcommitRatio: number;
  readonly hardLimit?: number;
  readonly softLimit?: number;
  readonly policy: CpuPolicy;
  readonly thresholds: HealthThresholds;
  readonly clock: Clock;
  readonly probe?: HostProbe;
}

function cpuRequestOf(request: AllocationRequest, numaNodes: readonly number[] | undefined): CpuRequest {
  const { exclusive, numa, threadPolicy, policy } = request.cpu;
  return { vcpus: request.resources.vcpus, exclusive, numa, threadPolicy, policy, numaNodes };
}

/** Shared take options: the pool reads them during the call and keeps nothing. */
const AS_RESERVATION = Object.freeze({ reservation: true });
const AS_ALLOCATION = Object.freeze({ reservation: false });

/** The CPU slice: a CpuPool (another module's pure accounting) plus probe, thresholds, soft limit and figures. */
export class CpuSlice implements ResourceSlice {
  readonly type = 'cpu' as const;
  readonly probe: HostProbe | undefined;
  thresholds: HealthThresholds;
  readonly topology: HostTopology;
  readonly #clock: Clock;
  readonly #base: SliceConfig;
  #pool: CpuPool;
  #reservedCores: readonly number[];
  #softLimit: number | undefined;

  constructor(options: CpuSliceOptions) {
    this.topology = options.topology;
    this.probe = options.probe;
    this.thresholds = options.thresholds;
    this.#clock = options.clock;
    this.#reservedCores = [...options.reservedCores];
    this.#softLimit = options.softLimit;
    this.#pool = new CpuPool(this.#poolConfig(options));
    this.#base = this.config();
  }

  #poolConfig(o: {
    reservedCores: readonly number[];
    systemReserve: number;
    overcommitRatio: number;
    hardLimit?: number;
    policy: CpuPolicy;
  }): CpuPoolConfig {
    const config: CpuPoolConfig = {
      topology: this.topology,
      reservedCores: o.reservedCores,
      systemReserve: o.systemReserve,
      overcommitRatio: o.overcommitRatio,
      policy: o.policy,
    };
    if (o.hardLimit !== undefined) config.hardLimit = o.hardLimit;
    return config;
  }

  get pool(): CpuPool {
    return this.#pool;
  }

  amountOf(request: AllocationRequest): number {
    return request.resources.vcpus;
  }

  figures(request: AllocationRequest): SliceFigures {
    const u = this.#pool.usage();
    return {
      requested: request.resources.vcpus,
      free: Math.max(0, u.effectiveCapacity - u.committed),
      effectiveCapacity: u.effectiveCapacity,
    };
  }

  check(request: AllocationRequest, numaNodes?: readonly number[]): Result<void> {
    const bound = this.#overcommitRefusal(request);
    if (bound !== undefined) return bound;
    const grant = this.#pool.check(cpuRequestOf(request, numaNodes));
    return grant.ok ? ok(undefined) : this.#withFigures(grant.error, request);
  }

  take(allocationId: string, request: AllocationRequest, reservation: boolean, numaNodes?: readonly number[]): Result<CpuGrant | null> {
    const bound = this.#overcommitRefusal(request);
    if (bound !== undefined) return bound;
    const grant = this.#pool.take(allocationId, cpuRequestOf(request, numaNodes), reservation ? AS_RESERVATION : AS_ALLOCATION);
    return grant.ok ? grant : this.#withFigures(grant.error, request);
  }

  /**
   * A shared request whose bound on the host's CPU overcommit (cpu.maxOvercommit) is below this host's ratio: refused,
   * as placement filters such hosts out (the agent is the authority when the view was stale or the ratio changed).
   */
  #overcommitRefusal(request: AllocationRequest): Result<never> | undefined {
    const bound = request.cpu.maxOvercommit;
    if (bound === undefined || request.cpu.exclusive || request.resources.vcpus <= 0) return undefined;
    const ratio = this.#limits().overcommitRatio;
    if (Math.round(ratio * 100) <= Math.round(bound * 100)) return undefined;
    return this.#withFigures(
      errorOf('insufficient_capacity', `node overcommits CPU ${ratio}x; the request accepts at most ${bound}x on shared cores`, {
        reason: 'overcommit',
        overcommitRatio: ratio,
        maxOvercommit: bound,
      }),
      request,
    );
  }

  /** The pool's refusal, plus the figures every manager's refusal carries (resourceType, requested, free, effectiveCapacity). */
  #withFigures(error: AllotError, request: AllocationRequest): Result<never> {
    if (error.code !== 'insufficient_capacity') return { ok: false, error };
    return { ok: false, error: { ...error, details: { ...error.details, resourceType: 'cpu', ...this.figures(request) } } };
  }

  /** Grows or shrinks the allocation's cores in place (CpuPool.resize: policy-chosen additions, highest ids returned). */
  resize(allocation: Allocation, to: ResizeAmounts): Result<CpuGrant | null> {
    if (to.vcpus === allocation.granted.vcpus) return ok(allocation.cpu);
    const grant = this.#pool.resize(allocation.id, to.vcpus, allocation.request.cpu.numa, allocation.request.cpu.policy);
    if (grant.ok || grant.error.code !== 'insufficient_capacity') return grant;
    const u = this.#pool.usage();
    const figures = {
      resourceType: 'cpu',
      requested: to.vcpus - allocation.granted.vcpus,
      free: Math.max(0, u.effectiveCapacity - u.committed),
      effectiveCapacity: u.effectiveCapacity,
      from: allocation.granted.vcpus,
      to: to.vcpus,
    };
    return { ok: false, error: { ...grant.error, details: { ...grant.error.details, ...figures } } };
  }

  reshape(allocation: Allocation): Result<void> {
    if (allocation.cpu === null)
      return err('internal', `allocation ${allocation.id} holds ${allocation.granted.vcpus} vCPUs but has no CPU grant`);
    return this.#pool.reshape(allocation.id, allocation.cpu);
  }

  restore(allocation: Allocation, reservation: boolean): Result<void> {
    if (allocation.cpu === null)
      return err('internal', `allocation ${allocation.id} holds ${allocation.granted.vcpus} vCPUs but has no CPU grant`);
    return this.#pool.restore(allocation.id, allocation.cpu, { reservation });
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
    return this.#pool.usage().committed;
  }

  usage(): ResourceUsage {
    return this.#pool.usage(this.probe?.latest()?.cpu);
  }

  #limits(): Limits {
    const limits = this.#pool.limits();
    if (this.#softLimit !== undefined) limits.softLimit = this.#softLimit;
    return limits;
  }

  config(): SliceConfig {
    return { limits: this.#limits(), reservedCores: [...this.#reservedCores], policy: this.#pool.policyName };
  }

  reconfigure(change: SliceChange, force: boolean): Result<SliceConfig> {
    if (change.capacity !== undefined && change.capacity !== this.topology.cores.length) {
      return err(
        'invalid_request',
        `capacity: the host has ${this.topology.cores.length} logical cores; CPU capacity follows the topology`,
        { field: 'capacity', capacity: change.capacity, cores: this.topology.cores.length },
      );
    }
    const softLimit = change.softLimit === null ? undefined : (change.softLimit ?? this.#softLimit);
    const hard = change.hardLimit === null ? undefined : (change.hardLimit ?? this.#pool.limits().hardLimit);
    if (softLimit !== undefined && (!Number.isSafeInteger(softLimit) || softLimit < 0))
      return err('invalid_request', 'softLimit: a non-negative integer', { field: 'softLimit' });
    if (softLimit !== undefined && hard !== undefined && softLimit > hard)
      return err('invalid_request', 'softLimit: must not exceed hardLimit', { field: 'softLimit' });
    const poolChange: Parameters<CpuPool['reconfigure']>[0] = {};
    if (change.overcommitRatio !== undefined) poolChange.overcommitRatio = change.overcommitRatio;
    // With reservedCores the pool would otherwise take the reserve from them (0 for none): a full configuration
    // replayed from the journal names both, and both must stay as they were.
    if (
      change.systemReserve !== undefined &&
      (change.systemReserve !== this.#pool.limits().systemReserve || change.reservedCores !== undefined)
    )
      poolChange.systemReserve = change.systemReserve;
    if (change.reservedCores !== undefined) poolChange.reservedCores = change.reservedCores;
    if (change.hardLimit !== undefined) poolChange.hardLimit = change.hardLimit;
    if (change.policy !== undefined) poolChange.policy = change.policy;
    const next = this.#pool.reconfigure(poolChange, force);
    if (!next.ok) return next;
    if (change.reservedCores !== undefined) this.#reservedCores = [...change.reservedCores];
    else if (poolChange.systemReserve !== undefined) this.#reservedCores = [];
    this.#softLimit = softLimit;
    return ok(this.config());
  }

  health(): Health {
    const u = this.usage();
    return sliceHealth('cpu', { ...u, softLimit: this.#softLimit }, this.thresholds, this.probe, this.#clock.now());
  }

  reset(config?: SliceConfig): void {
    const c = config ?? this.#base;
    this.#reservedCores = [...(c.reservedCores ?? [])];
    this.#softLimit = c.limits.softLimit;
    const poolConfig = this.#poolConfig({
      reservedCores: this.#reservedCores,
      systemReserve: c.limits.systemReserve,
      overcommitRatio: c.limits.overcommitRatio,
      hardLimit: c.limits.hardLimit,
      policy: c.policy ?? this.#pool.policyName,
    });
    this.#pool = new CpuPool(poolConfig);
  }
}
