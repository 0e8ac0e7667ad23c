import type { Scheduler } from './scheduler.ts';

/**
 * How hostile this run is. Each seed draws its own mix (swarm testing: a run with many disk failures and no network
 * faults finds different bugs than one with everything a little), and `quiet()` turns every fault off for settling.
 * Probabilities are per opportunity (per message, per flush, per step).
 */
export interface Faults {
  /** A disk flush takes long (ms range of a stall). */
  diskStallP: number;
  /** A flush fails: the journal is broken, the agent stops and restarts from disk. */
  diskFailP: number;
  /** An append throws synchronously (a bug or EIO surfacing inside a turn: the actor's supervisor path). */
  appendThrowP: number;
  /** A flush makes only a prefix of the queued records durable before the next one. */
  partialFlushP: number;
  /** A request or a reply is lost. */
  dropP: number;
  /** A request is delivered twice. */
  duplicateP: number;
  /** Largest network delay (ms); delays are drawn uniformly up to it, so messages reorder. */
  maxDelayMs: number;
  /** Per driver step: crash an agent / a coordinator. */
  agentCrashP: number;
  coordinatorCrashP: number;
  /** A KV write is applied but its caller is told `unavailable`. */
  kvUnknownP: number;
  /** A KV operation fails before reaching the store. */
  kvFailP: number;
  /** Per driver step: step some process's wall clock (by one of CLOCK_STEPS_MS). */
  clockStepP: number;
}

export const QUIET: Faults = {
  diskStallP: 0,
  diskFailP: 0,
  appendThrowP: 0,
  partialFlushP: 0,
  dropP: 0,
  duplicateP: 0,
  maxDelayMs: 5,
  agentCrashP: 0,
  coordinatorCrashP: 0,
  kvUnknownP: 0,
  kvFailP: 0,
  clockStepP: 0,
};

/** Each fault is on in about half the seeds, at a rate drawn for the seed. */
export function drawFaults(sched: Scheduler): Faults {
  const maybe = (max: number): number => (sched.chance(0.5) ? sched.random() * max : 0);
  return {
    diskStallP: maybe(0.3),
    diskFailP: maybe(0.03),
    appendThrowP: maybe(0.02),
    partialFlushP: maybe(0.5),
    dropP: maybe(0.1),
    duplicateP: maybe(0.1),
    maxDelayMs: sched.pick([2, 20, 200, 2_000]),
    agentCrashP: maybe(0.02),
    coordinatorCrashP: maybe(0.02),
    kvUnknownP: maybe(0.05),
    kvFailP: maybe(0.05),
    clockStepP: maybe(0.01),
  };
}

export function describeFaults(f: Faults): string {
  return Object.entries(f)
    .filter(([, v]) => v !== 0)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : (v as number).toFixed(3)}`)
    .join(' ');
}

/**
 * Wall-clock steps (NTP, `date -s`): small ones, and ones past the agents' 120 s retention window, so a window measured
 * on the wall clock would forget a released request id early and a retry would allocate it again (principle 4).
 */
export const CLOCK_STEPS_MS = [-150_000, -60_000, -5_000, 5_000, 60_000, 150_000];
