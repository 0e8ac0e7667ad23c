import type { Limits } from '@allot/core';
import { CountingPool } from './counting-pool.ts';

/**
 * Pure, synchronous memory accounting in MiB: capacity, system reserve, overcommit ratio, soft and hard limits.
 * A request that does not fit is `insufficient_capacity` with requested, free and effective capacity.
 */
export class MemoryPool extends CountingPool {
  constructor(limits: Limits) {
    super('memory', 'MiB', limits);
  }

  /** Memory has no placement (the pool is one number, no per-NUMA limits), so nothing free is ever stranded. */
  fragmentation(referenceMiB: number): { fragmentation: number; fits: number } {
    return { fragmentation: 0, fits: referenceMiB > 0 ? Math.floor(this.available / referenceMiB) : 0 };
  }
}
