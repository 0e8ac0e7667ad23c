/**
 * Publishes a changing state without flooding: at most one publish per `minIntervalMs`, always of the latest state,
 * and a heartbeat (the latest state again) every `heartbeatMs` when nothing changed, so readers can tell a quiet
 * node from a dead one. One publish at a time; a failed publish is retried at the next tick. Intervals are measured
 * on the monotonic clock: a wall-clock step back must not hold the next publish (and the heartbeat) for the step.
 */
export type CoalescerOptions<T> = {
  minIntervalMs: number;
  heartbeatMs: number;
  /** Resolves true when the state was published (false or a throw: retry later). */
  publish: (state: T) => Promise<boolean>;
  onError?: (e: unknown) => void;
};

export class Coalescer<T> {
  readonly #opts: CoalescerOptions<T>;
  #latest: T | undefined;
  #hasState = false;
  #dirty = false;
  #publishing = false;
  #lastPublishAt = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  /** Publishes attempted and succeeded, for metrics and tests. */
  readonly counts = { published: 0, failed: 0, heartbeats: 0 };

  constructor(opts: CoalescerOptions<T>) {
    if (!(opts.minIntervalMs >= 0 && opts.heartbeatMs > 0)) throw new RangeError('minIntervalMs must be >= 0 and heartbeatMs > 0');
    this.#opts = opts;
  }

  /** Records the new state; it is published now or as soon as the interval allows. */
  update(state: T): void {
    if (this.#stopped) return;
    this.#latest = state;
    this.#hasState = true;
    this.#dirty = true;
    this.#schedule();
  }

  /** Publishes the pending state now, whatever the interval (on shutdown, say). */
  async flush(): Promise<void> {
    if (!this.#hasState || !this.#dirty || this.#publishing) return;
    await this.#publishNow(false);
  }

  /** No more publishes or timers. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#stopped || this.#publishing || !this.#hasState) return;
    if (this.#timer) clearTimeout(this.#timer);
    const sinceLast = performance.now() - this.#lastPublishAt;
    const wait = this.#dirty ? Math.max(0, this.#opts.minIntervalMs - sinceLast) : Math.max(0, this.#opts.heartbeatMs - sinceLast);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#publishNow(!this.#dirty);
    }, wait);
  }

  async #publishNow(heartbeat: boolean): Promise<void> {
    if (this.#stopped || this.#publishing) return;
    this.#publishing = true;
    const state = this.#latest as T;
    this.#dirty = false;
    this.#lastPublishAt = performance.now();
    let published = false;
    try {
      published = await this.#opts.publish(state);
    } catch (e) {
      this.#opts.onError?.(e);
    }
    this.#publishing = false;
    if (published) {
      this.counts.published += 1;
      if (heartbeat) this.counts.heartbeats += 1;
    } else {
      this.counts.failed += 1;
      // Publish it again: the state may be newer by now, which is what we want anyway.
      this.#dirty = true;
    }
    this.#schedule();
  }
}
