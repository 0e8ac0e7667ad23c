import { anchoredClock, type Clock } from '../../packages/managers/src/clock.ts';
import type { CoordinatorClock } from '../../apps/coordinator/src/store/clock.ts';
import type { Scheduled, Scheduler } from './scheduler.ts';

/** A host's boot: the kernel's boot id and the true instant its monotonic clock (CLOCK_MONOTONIC) counts from. */
export interface HostBoot {
  readonly id: string;
  readonly at: number;
}

/**
 * One process's view of simulated time: its wall clock is the true time plus a skew that can be stepped (NTP, an
 * operator), its monotonic clock never steps and counts from its host's boot (an agent: every incarnation of the
 * host reads on from the last, until the host reboots) or, without one, from the process's start. Timers are
 * scheduler events; killing the process (a crash) cancels every timer it set, so a dead incarnation never acts again.
 */
export class ProcessClock implements Clock, CoordinatorClock {
  readonly #sched: Scheduler;
  readonly #name: string;
  readonly #bootedAt: number;
  readonly bootId: string | undefined;
  readonly #timers = new Set<Scheduled>();
  #skewMs: number;
  #dead = false;

  constructor(sched: Scheduler, name: string, skewMs: number, boot?: HostBoot) {
    this.#sched = sched;
    this.#name = name;
    this.#skewMs = skewMs;
    this.#bootedAt = boot?.at ?? sched.now;
    this.bootId = boot?.id;
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
   * plus monotonic time since, so a step is seen only by the next incarnation; monotonic time and the boot id are the
   * host's.
   */
  anchored(): Clock {
    return {
      bootId: this.bootId,
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
