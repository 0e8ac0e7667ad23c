import { LimitsSchema, unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { CountingPool } from './counting-pool.ts';

const pool = (limits: object) => new CountingPool('memory', 'MiB', LimitsSchema.parse(limits));

describe('a counting pool of memory', () => {
  it('applies reserve and overcommit to get the effective capacity, capped by the hard limit', () => {
    expect(pool({ capacity: 16384, systemReserve: 1024, overcommitRatio: 1.5 }).effectiveCapacity).toBe(23040);
    expect(pool({ capacity: 16384, systemReserve: 1024, overcommitRatio: 1.5, hardLimit: 20000 }).effectiveCapacity).toBe(20000);
  });

  it('refuses a request that does not fit, with the figures', () => {
    const p = pool({ capacity: 16384, systemReserve: 1024, overcommitRatio: 1.5 });
    unwrap(p.take('a', 22016));
    const refused = p.take('b', 4096);
    expect(!refused.ok && refused.error).toEqual({
      code: 'insufficient_capacity',
      message: 'memory: requested 4096 MiB, free 1024 MiB of 23040 MiB effective capacity',
      details: { resourceType: 'memory', requested: 4096, free: 1024, effectiveCapacity: 23040 },
    });
    expect(p.committed).toBe(22016);
  });

  it('counts reservations apart until they are activated, and frees what it holds', () => {
    const p = pool({ capacity: 4096 });
    unwrap(p.take('r', 1000, { reservation: true }));
    expect(p.reserved).toBe(1000);
    p.markActive('r');
    expect(p.reserved).toBe(0);
    expect(p.free('r')).toBe(true);
    expect(p.free('r')).toBe(false);
    expect(p.committed).toBe(0);
  });

  it('refuses to shrink below what is committed unless forced, then admits nothing', () => {
    const p = pool({ capacity: 4096 });
    unwrap(p.take('a', 3000));
    const refused = p.reconfigure({ capacity: 2048 });
    expect(!refused.ok && refused.error.details).toEqual({ resourceType: 'memory', effectiveCapacity: 2048, committed: 3000 });
    unwrap(p.reconfigure({ capacity: 2048 }, true));
    expect(p.take('b', 1).ok).toBe(false);
  });

  it('reports the soft limit crossed without refusing', () => {
    const p = pool({ capacity: 4096, softLimit: 1000 });
    unwrap(p.take('a', 2000));
    expect(p.softLimitCrossed).toBe(true);
  });
});
