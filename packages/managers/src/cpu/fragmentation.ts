import { capacityFigures } from './capacity.ts';
import type { CapacityFigures } from './capacity.ts';
import type { CoreTable } from './core-table.ts';

/**
 * How well the free capacity serves requests of one reference size.
 * - fragmentation: the share (0..1) of free capacity that cannot serve one more reference request, however many
 *   are placed: 0 when all of it could be used, 1 when none of it could.
 * - fits: how many reference requests would fit now, one after another.
 */
export interface Fragmentation {
  fragmentation: number;
  fits: number;
}

/**
 * Exclusive reference (n cores): free capacity = idle pool cores. A request is counted as NUMA-local (one node, as
 * affinity-aware or numa `require` would place it), so the idle cores a node has beyond a multiple of n are
 * stranded: fragmentation = (idle - n x sum over nodes of floor(nodeIdle / n)) / idle. fits is that sum, further
 * limited by the shared pool: each request shrinks the pool, which must still cover the committed shared vCPUs.
 *
 * Shared reference (n vCPUs): free capacity = free shared vCPUs. A request needs n vCPUs on n distinct pool cores
 * and the pool has no per-core cap, so fits = floor(free / n) when n <= pool cores, else 0; what is stranded is the
 * remainder (free - fits x n), or everything when n exceeds the pool's core count.
 *
 * An invalid reference size (not a positive integer) gives { fragmentation: 0, fits: 0 }.
 */
export function fragmentationOf(
  table: CoreTable,
  figures: CapacityFigures,
  sharedCommitted: number,
  percent: number,
  hardLimit: number | undefined,
  referenceVcpus: number,
  exclusive: boolean,
): Fragmentation {
  const n = referenceVcpus;
  if (!Number.isInteger(n) || n < 1) return { fragmentation: 0, fits: 0 };
  if (!exclusive) {
    const free = Math.max(0, figures.sharedCapUnclamped - sharedCommitted);
    const fits = n > table.poolCount ? 0 : Math.floor(free / n);
    return { fragmentation: free === 0 ? 0 : (free - fits * n) / free, fits };
  }
  const idle = table.idleCount;
  let local = 0;
  for (const nodeIdle of table.nodeIdle) local += Math.floor(nodeIdle / n);
  const fragmentation = idle === 0 ? 0 : (idle - local * n) / idle;
  // Each request takes n cores out of the pool; the smaller pool must still hold the shared vCPUs committed.
  const nonReserved = table.count - table.reservedCount;
  let fits = local;
  while (fits > 0 && capacityFigures(nonReserved, table.poolCount - fits * n, percent, hardLimit).sharedCapUnclamped < sharedCommitted)
    fits -= 1;
  return { fragmentation, fits };
}
