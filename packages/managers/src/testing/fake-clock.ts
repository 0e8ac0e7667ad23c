import type { Clock } from '../clock.ts';

interface Timer {
  readonly id: number;
  /** Monotonic ms (timers, like Node's, do not move with the wall clock). */
  readonly at: number;
  readonly fn: () => void;
}

/**
 * A clock tests move by hand: `advance(ms)` moves wall and monotonic time together and runs every timer that falls
 * due, in order; `stepWall(ms)` moves the wall clock alone (an NTP correction, `date -s`).
 */
export class FakeClock implements Clock {
  #now: number;
  #monotonic = 0;
  #timers: Timer[] = [];
  #nextId = 1;

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  monotonic(): number {
    return this.#monotonic;
  }

  /** The wall clock jumps by `ms` (forward or back); monotonic time and timers do not move. */
  stepWall(ms: number): void {
    this.#now += ms;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: this.#nextId++, at: this.#monotonic + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Timers still pending. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward, firing due timers in time order (a timer set by a timer fires too if it falls due). */
  advance(ms: number): void {
    const target = this.#monotonic + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.#timers[0];
      if (next === undefined || next.at > target) break;
      this.#timers.shift();
      this.#move(next.at);
      next.fn();
    }
    this.#move(target);
  }

  #move(monotonic: number): void {
    const by = Math.max(0, monotonic - this.#monotonic);
    this.#monotonic += by;
    this.#now += by;
  }
}
