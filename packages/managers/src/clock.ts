/**
 * Time as the managers see it: injected so tests drive reservation expiry and probe staleness without sleeping.
 */
export interface Clock {
  /** Epoch ms: the instants written to the ledger (releasedAt, expiresAt). */
  now(): number;
  /**
   * Ms since an arbitrary origin in this process's life; never steps, restarts with the process. What durations that
   * must not shrink when the wall clock steps are measured on (the retention of released request ids, fences, resizes).
   */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Epoch ms that never jump inside a process: the wall clock read once, at start, plus the monotonic time elapsed
 * since (`performance.now()`). So a reservation's expiry and a release's retention never move when the host's wall
 * clock steps (NTP, an operator's `date -s`): a step neither expires a hold early nor keeps it late. Instants that
 * survive a restart (expiresAt, releasedAt) stay epoch ms; a restarted process re-anchors on the wall clock, so a
 * step is taken into account once, at the next start, never in the middle of a process's life.
 */
export function anchoredClock(wall: () => number, monotonic: () => number): () => number {
  const anchorWall = wall();
  const anchorMono = monotonic();
  return () => anchorWall + Math.floor(monotonic() - anchorMono);
}

/** The real clock (see anchoredClock). Timers are unref'd: a pending reservation expiry must not keep a process alive on its own. */
export const systemClock: Clock = {
  now: anchoredClock(Date.now, () => performance.now()),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
