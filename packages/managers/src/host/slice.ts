import type {
  Allocation,
  AllocationRequest,
  CpuGrant,
  CpuPolicy,
  Health,
  HealthThresholds,
  HostProbe,
  Limits,
  MemoryGrant,
  ResourceType,
  ResourceUsage,
  Result,
} from '@allot/core';
import type { LimitsChange } from '../counting/counting-pool.ts';

/** The configuration of one slice that must survive a restart (journaled with every change). */
export interface SliceConfig {
  readonly limits: Limits;
  /** CPU only: which cores are kept for the host, and the placement policy. */
  readonly reservedCores?: readonly number[];
  readonly policy?: CpuPolicy;
}

/** A change to a slice's configuration: limits fields, and for CPU the reserved cores and policy. */
export type SliceChange = LimitsChange & { reservedCores?: readonly number[]; policy?: CpuPolicy };

/** What a resize sets: the allocation's new memory and vCPUs. */
export interface ResizeAmounts {
  readonly memoryMiB: number;
  readonly vcpus: number;
}

/** requested / free / effective capacity of one resource type for one request. */
export interface SliceFigures {
  readonly requested: number;
  readonly free: number;
  readonly effectiveCapacity: number;
}

/**
 * One resource type's accounting as a manager drives it: a pool plus its probe, thresholds and figures.
 * Synchronous and owned by exactly one actor (the HostManager it was built for), so the all-or-nothing take across
 * slices happens inside one synchronous turn.
 */
export interface ResourceSlice {
  readonly type: ResourceType;
  /** How much of this type the request asks for (0: the slice is not involved). */
  amountOf(request: AllocationRequest): number;
  figures(request: AllocationRequest): SliceFigures;
  /**
   * `numaNodes`, CPU only (the others ignore it): for a request bound to one NUMA node, the nodes its cores may use,
   * those where its memory and hugepages fit (host/numa-cell.ts).
   */
  check(request: AllocationRequest, numaNodes?: readonly number[]): Result<void>;
  /** Commits the request's share; returns the CPU grant for CPU, null otherwise. `numaNodes` as for check. */
  take(allocationId: string, request: AllocationRequest, reservation: boolean, numaNodes?: readonly number[]): Result<CpuGrant | null>;
  /**
   * Changes a live allocation's share in place to `to` (resize): a shrink always fits, a grow is checked like a take
   * of the growth and refused with the figures (requested = the growth). A refusal changes nothing. Returns the new
   * CPU grant for CPU, null otherwise; a type that `to` does not size keeps its share.
   */
  resize(allocation: Allocation, to: ResizeAmounts): Result<CpuGrant | null>;
  /**
   * Makes the share of a live allocation exactly what `allocation` (as a resize left it) holds, without a capacity
   * check: a resize's replay, or its undo in the same turn. Only what differs is touched.
   */
  reshape(allocation: Allocation): Result<void>;
  /** Re-installs a durable allocation's share without a capacity check (it was admitted when committed). */
  restore(allocation: Allocation, reservation: boolean): Result<void>;
  free(allocationId: string): boolean;
  /** Memory only: which NUMA node and hugepages the allocation's take or restore used (recorded on the allocation). */
  memoryGrantOf?(allocationId: string): MemoryGrant | undefined;
  markActive(allocationId: string): void;
  holds(allocationId: string): boolean;
  readonly committed: number;
  usage(): ResourceUsage;
  config(): SliceConfig;
  reconfigure(change: SliceChange, force: boolean): Result<SliceConfig>;
  health(): Health;
  /** Empties the pool and sets its configuration (the base one when omitted): the first step of a recovery. */
  reset(config?: SliceConfig): void;
  /** Settable: a configuration reload (SIGHUP) changes them in place; only health() reads them. */
  thresholds: HealthThresholds;
  readonly probe: HostProbe | undefined;
}

/** Per mille of `whole`, an integer (0 when whole is 0). */
/** A per-mille figure as a person reads it: 980 -> "98%", 985 -> "98.5%" (thresholds stay integers in per mille). */
export function percentText(pm: number): string {
  return `${pm % 10 === 0 ? pm / 10 : (pm / 10).toFixed(1)}%`;
}

export function permille(part: number, whole: number): number {
  return whole <= 0 ? 0 : Math.floor((part * 1000) / whole);
}

/** The health reasons every slice shares: probe freshness, committed and used thresholds, soft limit, forced shrink. */
export function sliceHealth(
  type: string,
  figures: { committed: number; effectiveCapacity: number; used: number; capacity: number; softLimit?: number },
  thresholds: HealthThresholds,
  probe: HostProbe | undefined,
  now: number,
): Health {
  const degraded: string[] = [];
  const unhealthy: string[] = [];
  if (probe !== undefined) {
    const sample = probe.latest();
    if (sample === undefined) degraded.push(`${type}: the probe has not reported yet; used is shown as 0`);
    else if (now - sample.at > thresholds.probeStaleMs)
      degraded.push(`${type}: the last probe sample is ${now - sample.at} ms old (stale after ${thresholds.probeStaleMs} ms)`);
  }
  const { committed, effectiveCapacity, used, capacity, softLimit } = figures;
  if (committed > effectiveCapacity)
    degraded.push(
      `${type}: committed ${committed} is above the effective capacity ${effectiveCapacity} after a forced shrink; nothing new is admitted`,
    );
  const committedPm = permille(committed, effectiveCapacity);
  if (effectiveCapacity > 0 && committedPm >= thresholds.committedDegradedPermille) {
    degraded.push(
      `${type}: ${percentText(committedPm)} of the effective capacity is committed (degraded at ${percentText(thresholds.committedDegradedPermille)})`,
    );
  }
  if (softLimit !== undefined && committed > softLimit)
    degraded.push(`${type}: committed ${committed} is above the soft limit ${softLimit}`);
  const usedPm = permille(used, capacity);
  if (usedPm >= thresholds.usedUnhealthyPermille)
    unhealthy.push(
      `${type}: ${percentText(usedPm)} of the capacity is really used (unhealthy at ${percentText(thresholds.usedUnhealthyPermille)})`,
    );
  else if (usedPm >= thresholds.usedDegradedPermille)
    degraded.push(
      `${type}: ${percentText(usedPm)} of the capacity is really used (degraded at ${percentText(thresholds.usedDegradedPermille)})`,
    );
  if (unhealthy.length > 0) return { status: 'unhealthy', reasons: [...unhealthy, ...degraded] };
  if (degraded.length > 0) return { status: 'degraded', reasons: degraded };
  return { status: 'healthy' };
}
