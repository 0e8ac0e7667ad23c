import type { Clock } from '../clock.ts';

interface Timer {
  readonly id: number;
  /** Monotonic ms (timers, like Node's, do not move with the wall clock). */
  readonly at: number;
  readonly fn: () => void;
}

export interface FakeClockOptions {
  /** The host's boot id (Clock.bootId). Default: none, a clock that cannot tell boots apart. */
  readonly bootId?: string;
  /** Where monotonic time starts (ms since the host's boot). Default 0. */
  readonly monotonic?: number;
}

/**
 * A clock tests move by hand: `advance(ms)` moves wall and monotonic time together and runs every timer that falls
 * due, in order; `stepWall(ms)` moves the wall clock alone (an NTP correction, `date -s`); `nextProcess` is the clock
 * of the host's next process in the same boot (a restart: monotonic time reads on, the wall clock may have stepped).
 */
export class FakeClock implements Clock {
  readonly bootId: string | undefined;
  #now: number;
  #monotonic: number;
  #timers: Timer[] = [];
  #nextId = 1;

  constructor(start = 1_700_000_000_000, options: FakeClockOptions = {}) {
    this.#now = start;
    this.#monotonic = options.monotonic ?? 0;
    this.bootId = options.bootId;
  }

  /**
   * The clock a process started `downMs` after this one sees, in the same boot: monotonic time has gone on by
   * `downMs`, the wall clock by `downMs` plus `wallStepMs` (a step while the process was down). No timers carry over.
   */
  nextProcess(downMs: number, wallStepMs = 0): FakeClock {
    const options =
      this.bootId === undefined ? { monotonic: this.#monotonic + downMs } : { bootId: this.bootId, monotonic: this.#monotonic + downMs };
    return new FakeClock(this.#now + downMs + wallStepMs, options);
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
