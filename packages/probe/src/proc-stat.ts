/**
 * /proc/stat CPU counters and the busy share between two readings. Parsed by hand because the periodic sample must
 * be cheap: systeminformation's currentLoad spawns `cat /proc/stat | grep cpu` synchronously on every call on Linux.
 */

/** Cumulative jiffies of one logical CPU: busy and total (busy + idle + iowait). */
export interface CpuCounters {
  readonly busy: number;
  readonly total: number;
}

/** Counters per logical CPU id plus the `cpu` aggregate line. */
export interface ProcStat {
  readonly perCore: ReadonlyMap<number, CpuCounters>;
  readonly all: CpuCounters;
}

/**
 * Columns: user nice system idle iowait irq softirq steal guest guest_nice. guest and guest_nice are already
 * counted in user and nice, so they are not added again. steal is busy: that time was not ours to use.
 */
function countersOf(fields: readonly string[]): CpuCounters | undefined {
  const n = (i: number): number => {
    const v = fields[i];
    return v === undefined ? 0 : Number(v);
  };
  if (fields.length < 4) return undefined;
  const idle = n(3) + n(4);
  const busy = n(0) + n(1) + n(2) + n(5) + n(6) + n(7);
  if (!Number.isFinite(idle) || !Number.isFinite(busy)) return undefined;
  return { busy, total: busy + idle };
}

export function parseProcStat(text: string): ProcStat | undefined {
  const perCore = new Map<number, CpuCounters>();
  let all: CpuCounters | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) {
      // The cpu lines come first; stop at the first other line instead of scanning the long intr line.
      if (all !== undefined) break;
      continue;
    }
    const fields = line.split(/\s+/);
    const label = fields[0] ?? '';
    const counters = countersOf(fields.slice(1));
    if (counters === undefined) return undefined;
    if (label === 'cpu') all = counters;
    else {
      const id = Number(label.slice(3));
      if (!Number.isInteger(id)) return undefined;
      perCore.set(id, counters);
    }
  }
  return all === undefined ? undefined : { perCore, all };
}

/** Busy share between two readings, per mille, clamped to 0..1000; 0 when no time passed. */
export function busyPermille(previous: CpuCounters | undefined, current: CpuCounters): number {
  const busy = current.busy - (previous?.busy ?? 0);
  const total = current.total - (previous?.total ?? 0);
  if (total <= 0 || busy <= 0) return 0;
  return Math.min(1000, Math.round((busy * 1000) / total));
}
