import { readFileSync } from 'node:fs';

/**
 * Time as the managers see it: injected so tests drive reservation expiry and probe staleness without sleeping.
 */
export interface Clock {
  /** Epoch ms: the instants written to the ledger (releasedAt, expiresAt). */
  now(): number;
  /**
   * Ms on the host's monotonic clock: never steps. The system's (CLOCK_MONOTONIC, from the host's boot, the same for
   * every process of that boot) when `bootId` is set; otherwise from an arbitrary origin in this process's life. What
   * durations that must not shrink when the wall clock steps are measured on (reservation holds and grace periods,
   * the retention of released request ids, fences, resizes).
   */
  monotonic(): number;
  /**
   * The boot `monotonic()` counts in (Linux: /proc/sys/kernel/random/boot_id); undefined when unknown. Journaled with
   * each deadline, so a process started later in the same boot reads that deadline on the same clock.
   */
  readonly bootId?: string | undefined;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Epoch ms that never jump inside a process: the wall clock read once, at start, plus the monotonic time elapsed
 * since. So a timestamp written while the process runs never moves when the host's wall clock steps (NTP, an
 * operator's `date -s`); a restarted process re-anchors on the wall clock, so a step shows in the instants it writes
 * from then on. Deadlines are decided on the monotonic clock (see HostState), not on these instants.
 */
export function anchoredClock(wall: () => number, monotonic: () => number): () => number {
  const anchorWall = wall();
  const anchorMono = monotonic();
  return () => anchorWall + Math.floor(monotonic() - anchorMono);
}

/**
 * CLOCK_MONOTONIC in ms: `process.hrtime` is libuv's uv_hrtime, clock_gettime(CLOCK_MONOTONIC) on Linux, counted from
 * the host's boot and shared by its processes. (`performance.now()` counts from this process's start, and
 * `performance.timeOrigin` is a wall-clock reading: neither survives a restart.) Like the kernel's clock it does not
 * advance while the host is suspended.
 */
export function systemMonotonic(): number {
  return Number(process.hrtime.bigint() / 1_000n) / 1_000;
}

/** The kernel's id of the current boot, or undefined where there is none to read (not Linux). */
export function readBootId(path = '/proc/sys/kernel/random/boot_id'): string | undefined {
  try {
    const id = readFileSync(path, 'utf8').trim();
    return id === '' ? undefined : id;
  } catch {
    return undefined;
  }
}

let bootId: string | null = null;

/** The real clock (see anchoredClock). Timers are unref'd: a pending reservation expiry must not keep a process alive on its own. */
export const systemClock: Clock = {
  now: anchoredClock(Date.now, systemMonotonic),
  monotonic: systemMonotonic,
  get bootId(): string | undefined {
    bootId ??= readBootId() ?? '';
    return bootId === '' ? undefined : bootId;
  },
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
