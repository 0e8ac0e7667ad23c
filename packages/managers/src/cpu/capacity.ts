/*
 * The pool's capacity arithmetic, integers only. The overcommit ratio r is applied as the integer percentage
 * p = round(r x 100), so vCPUs on k cores = floor(k x p / 100) exactly.
 *
 *   full        = floor((C - R) x r)                      C logical cores, R reserved
 *   effective   = min(full, hardLimit)                    what usage reports as effectiveCapacity
 *   sharedRaw   = floor(S x r)                            S shared-pool cores (C - R - exclusive)
 *   X           = full - sharedRaw                        the capacity exclusive cores removed from the pool
 *   sharedCap   = min(sharedRaw, hardLimit - X)           the shared pool's vCPU capacity
 *   committed   = sharedCommitted + X  (= sharedCommitted + effective - sharedCap while hardLimit >= X)
 *
 * so committed <= effective exactly when sharedCommitted <= sharedCap: one invariant to keep, on the shared pool.
 */

/** The ratio as an integer percentage (two decimals at most, so exact). */
export function ratioPercent(ratio: number): number {
  return Math.round(ratio * 100);
}

/** floor(cores x percent / 100) without a float division. */
export function vcpusOn(cores: number, percent: number): number {
  const scaled = Math.max(0, cores) * percent;
  return (scaled - (scaled % 100)) / 100;
}

/** The figures a pool's state implies; see the module comment. */
export interface CapacityFigures {
  /** floor((C - R) x r), before the hard limit. */
  readonly full: number;
  readonly effective: number;
  /** May be negative only after a forced reconfiguration lowered the hard limit below what exclusives took. */
  readonly sharedCapUnclamped: number;
  readonly sharedCap: number;
  /** Capacity the exclusive cores removed from the shared pool. */
  readonly exclusiveCost: number;
}

export function capacityFigures(
  nonReservedCores: number,
  sharedCores: number,
  percent: number,
  hardLimit: number | undefined,
): CapacityFigures {
  const full = vcpusOn(nonReservedCores, percent);
  const sharedRaw = vcpusOn(sharedCores, percent);
  const exclusiveCost = full - sharedRaw;
  const effective = hardLimit === undefined ? full : Math.min(full, hardLimit);
  const sharedCapUnclamped = hardLimit === undefined ? sharedRaw : Math.min(sharedRaw, hardLimit - exclusiveCost);
  return { full, effective, sharedCapUnclamped, sharedCap: Math.max(0, sharedCapUnclamped), exclusiveCost };
}
