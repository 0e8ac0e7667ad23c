/*
 * What the benchmarks share: a quantile of sorted samples, and running an operation many times with a fixed number in
 * flight. Imported by path (not through the harness index) so a package's bench pulls in nothing else.
 */

/** The q-quantile (0..1) of ascending samples; NaN when there are none. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/**
 * Runs `op(0..count-1)` with `window` calls in flight (each worker starts the next index when its call ends), stopping
 * early once `capMs` has passed. Returns how many completed and the elapsed ms.
 */
export async function inFlight(
  count: number,
  window: number,
  op: (i: number) => Promise<unknown>,
  capMs = Number.POSITIVE_INFINITY,
): Promise<{ done: number; ms: number }> {
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + capMs;
  const capped = Number.isFinite(capMs);
  const worker = async (): Promise<void> => {
    while (next < count && (!capped || performance.now() < deadline)) {
      const i = next++;
      await op(i);
      done += 1;
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return { done, ms: performance.now() - t0 };
}
