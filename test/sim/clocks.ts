import { anchoredClock, type Clock } from '../../packages/managers/src/clock.ts';
import type { CoordinatorClock } from '../../apps/coordinator/src/store/clock.ts';
import type { Scheduled, Scheduler } from './scheduler.ts';

/**
 * One process's view of simulated time: its wall clock is the true time plus a skew that can be stepped (NTP, an
 * operator), its monotonic clock counts from its boot and never steps. Timers are scheduler events; killing the
 * process (a crash) cancels every timer it set, so a dead incarnation never acts again.
 */
export class ProcessClock implements Clock, CoordinatorClock {
  readonly #sched: Scheduler;
  readonly #name: string;
  readonly #bootedAt: number;
  readonly #timers = new Set<Scheduled>();
  #skewMs: number;
  #dead = false;

  constructor(sched: Scheduler, name: string, skewMs: number) {
    this.#sched = sched;
    this.#name = name;
    this.#skewMs = skewMs;
    this.#bootedAt = sched.now;
  }

  get skewMs(): number {
    return this.#skewMs;
  }

  /** The wall clock jumps (forward or back) by `deltaMs`. */
  step(deltaMs: number): void {
    this.#skewMs += deltaMs;
    this.#sched.trace(`${this.#name} wall clock stepped by ${deltaMs} ms (skew now ${this.#skewMs} ms)`);
  }

  // Managers' Clock

  now(): number {
    return this.#sched.now + this.#skewMs;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    if (this.#dead) return undefined;
    const handle: Scheduled = this.#sched.after(ms, `${this.#name} timer`, () => {
      this.#timers.delete(handle);
      if (!this.#dead) fn();
    });
    this.#timers.add(handle);
    return handle;
  }

  clearTimeout(handle: unknown): void {
    if (handle === undefined) return;
    (handle as Scheduled).cancel();
    this.#timers.delete(handle as Scheduled);
  }

  // CoordinatorClock

  wall(): number {
    return this.now();
  }

  monotonic(): number {
    return this.#sched.now - this.#bootedAt;
  }

  /**
   * The managers' clock as an agent process has it (systemClock): `now` is the wall clock read at this process's start
   * plus monotonic time since, so a step is seen only by the next incarnation.
   */
  anchored(): Clock {
    return {
      now: anchoredClock(
        () => this.now(),
        () => this.monotonic(),
      ),
      monotonic: () => this.monotonic(),
      setTimeout: (fn, ms) => this.setTimeout(fn, ms),
      clearTimeout: (handle) => this.clearTimeout(handle),
    };
  }

  /** The process died: its timers never fire. */
  kill(): void {
    this.#dead = true;
    for (const timer of this.#timers) timer.cancel();
    this.#timers.clear();
  }
}
