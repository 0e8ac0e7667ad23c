/** Options of waitFor; `message` says what was awaited, so a timeout reads as a sentence. */
export type WaitOptions = { timeoutMs?: number; intervalMs?: number; message?: string };

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or the time is up (throws, naming what was
 * awaited and the last error the predicate threw). The predicate may be async and may throw while not ready.
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.message ?? 'a condition'}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
