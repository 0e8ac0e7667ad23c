import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCpuList } from './cpulist.ts';
import { parseMeminfo } from './proc-meminfo.ts';
import { busyPermille, parseProcStat } from './proc-stat.ts';

describe('Linux CPU lists', () => {
  it('expands ranges and single ids in order', () => {
    expect(parseCpuList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('5')).toEqual([5]);
    expect(parseCpuList('')).toEqual([]);
  });

  it('refuses malformed lists instead of guessing', () => {
    expect(parseCpuList('0-')).toBeUndefined();
    expect(parseCpuList('3-1')).toBeUndefined();
    expect(parseCpuList('a,b')).toBeUndefined();
  });
});

const STAT = [
  'cpu  300 0 100 500 100 0 0 0 50 0',
  'cpu0 200 0 50 200 50 0 0 0 50 0',
  'cpu1 100 0 50 300 50 0 0 0 0 0',
  'intr 1 2 3',
  'ctxt 99',
].join('\n');

describe('/proc/stat counters', () => {
  it('reads busy and total jiffies per core, counting guest time once (it is already in user)', () => {
    const stat = parseProcStat(STAT);
    expect(stat?.all).toEqual({ busy: 400, total: 1000 });
    expect(stat?.perCore.get(0)).toEqual({ busy: 250, total: 500 });
    expect(stat?.perCore.get(1)).toEqual({ busy: 150, total: 500 });
  });

  it('gives the busy share between two readings per mille', () => {
    expect(busyPermille({ busy: 100, total: 1000 }, { busy: 350, total: 1500 })).toBe(500);
    expect(busyPermille({ busy: 100, total: 1000 }, { busy: 100, total: 1000 })).toBe(0);
  });

  it('keeps every busy share an integer between 0 and 1000, whatever the counters do', () => {
    const counters = fc.record({ busy: fc.nat(1e12), total: fc.nat(1e12) });
    fc.assert(
      fc.property(counters, counters, (a, b) => {
        const permille = busyPermille(a, b);
        return Number.isInteger(permille) && permille >= 0 && permille <= 1000;
      }),
    );
  });

  it('refuses a file without the cpu line', () => {
    expect(parseProcStat('intr 1 2\n')).toBeUndefined();
  });
});

describe('/proc/meminfo', () => {
  it('gives total and available in whole MiB, rounded down, and used as total minus available', () => {
    const sample = parseMeminfo('MemTotal:       24683656 kB\nMemFree:        100 kB\nMemAvailable:   24374016 kB\n');
    expect(sample).toEqual({ totalMiB: 24105, availableMiB: 23802, usedMiB: 303 });
  });

  it('refuses a file without MemAvailable rather than inventing it', () => {
    expect(parseMeminfo('MemTotal: 1024 kB\nMemFree: 10 kB\n')).toBeUndefined();
  });
});
