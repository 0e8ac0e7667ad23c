/**
 * The one wait loop of allot's processes: connecting to NATS, waiting for JetStream, taking a lease. Capped exponential
 * backoff with "equal jitter" (AWS Architecture Blog, "Exponential Backoff and Jitter"): each wait is half the step plus
 * a random part of the other half, so a fleet that lost NATS together does not come back in lockstep (a thundering
 * herd on the servers), and no host waits less than half its step (no tight loop). Hand-written because the loops also
 * need stop checks, a deadline and a log line per wait, which no small library gives together.
 */
export interface BackoffOptions {
  /** First step, in ms (default 500). */
  readonly initialMs?: number;
  /** Largest step, in ms (default 10,000). */
  readonly maxMs?: number;
  /** [0, 1); tests pass a fixed one. */
  readonly random?: () => number;
}

/** The waits of one retry loop, in ms: step n is min(max, initial * 2^n), and each wait is in [step/2, step). */
export function* backoffDelays(options: BackoffOptions = {}): Generator<number, never, void> {
  const maxMs = options.maxMs ?? 10_000;
  const random = options.random ?? Math.random;
  let step = Math.min(options.initialMs ?? 500, maxMs);
  for (;;) {
    const half = step / 2;
    yield Math.floor(half + random() * half);
    step = Math.min(step * 2, maxMs);
  }
}

export interface RetryOptions<T> extends BackoffOptions {
  /** Whether this outcome is worth another try (a refused credential is not; an unreachable server is). */
  readonly retryable: (outcome: T) => boolean;
  /** Told before each wait (log it: what failed and when the next try is). */
  readonly onWait?: (outcome: T, waitMs: number, attempt: number) => void;
  /** Checked before each try and after each wait; true ends the loop with the last outcome. */
  readonly stopped?: () => boolean;
  /** No new try starts after this many ms; the last outcome is returned. */
  readonly deadlineMs?: number;
  /**
   * Whether a wait keeps the process alive (default true: a start-up awaiting its connection must not end as an
   * unsettled top-level await). False for background loops that must not delay an exit.
   */
  readonly holdsProcess?: boolean;
  /** Replaces the timer (tests). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Monotonic ms for the deadline (default performance.now). */
  readonly now?: () => number;
}

const sleepFor =
  (holdsProcess: boolean) =>
  (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      if (!holdsProcess) timer.unref();
    });

/** Runs `attempt` until its outcome is not retryable, the loop is stopped, or the deadline passed; returns the last outcome. */
export async function retryWithBackoff<T>(attempt: (n: number) => Promise<T>, options: RetryOptions<T>): Promise<T> {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const sleep = options.sleep ?? sleepFor(options.holdsProcess ?? true);
  const delays = backoffDelays(options);
  for (let n = 1; ; n++) {
    const outcome = await attempt(n);
    if (!options.retryable(outcome) || options.stopped?.() === true) return outcome;
    const waitMs = delays.next().value;
    if (options.deadlineMs !== undefined && now() - started + waitMs > options.deadlineMs) return outcome;
    options.onWait?.(outcome, waitMs, n);
    await sleep(waitMs);
    if (options.stopped?.() === true) return outcome;
  }
}
