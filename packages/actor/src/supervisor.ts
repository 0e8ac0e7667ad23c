import { toAllotError, type Health } from '@allot/core';
import type { Behavior } from './behavior.ts';

export interface SupervisorOptions<Msg, Reply> {
  /** Rebuilds the behaviour from its last durable state (a journal replay); may be async (reading a file). */
  readonly recover: () => Behavior<Msg, Reply> | Promise<Behavior<Msg, Reply>>;
  /** How long after a crash health stays Degraded with the crash's reason. Default 5 minutes. */
  readonly degradedWindowMs?: number;
  /** More restarts than this within degradedWindowMs: give up, the actor stops (a crash loop helps nobody). Default 10. */
  readonly maxRestartsInWindow?: number;
  /** Injected clock for tests. */
  readonly now?: () => number;
}

/** What the supervisor remembers of one crash. */
export interface CrashReport {
  readonly at: number;
  readonly reason: string;
}

/**
 * Restarts a crashed actor from durable state. The actor keeps its identity (callers hold the same reference, as with
 * an Akka ActorRef); only its behaviour is replaced. The message that crashed got `internal`; messages queued
 * behind it wait for the restart and are then handled by the recovered behaviour.
 */
export class Supervisor<Msg, Reply> {
  readonly #recover: SupervisorOptions<Msg, Reply>['recover'];
  readonly #windowMs: number;
  readonly #maxRestarts: number;
  readonly #now: () => number;
  #restarts = 0;
  #crashes: CrashReport[] = [];

  constructor(options: SupervisorOptions<Msg, Reply>) {
    this.#recover = options.recover;
    this.#windowMs = options.degradedWindowMs ?? 300_000;
    this.#maxRestarts = options.maxRestartsInWindow ?? 10;
    this.#now = options.now ?? Date.now;
  }

  /** Restarts since creation. */
  get restarts(): number {
    return this.#restarts;
  }

  /** The most recent crash, if any. */
  get lastCrash(): CrashReport | undefined {
    return this.#crashes[this.#crashes.length - 1];
  }

  /** Called by the actor on a crash: records it and returns the recovered behaviour (or rejects: the actor stops). */
  async restart(cause: unknown): Promise<Behavior<Msg, Reply>> {
    const now = this.#now();
    this.#crashes = this.#crashes.filter((c) => now - c.at < this.#windowMs);
    this.#crashes.push({ at: now, reason: toAllotError(cause).message });
    if (this.#crashes.length > this.#maxRestarts) {
      throw new Error(`${this.#crashes.length} crashes within ${this.#windowMs} ms, giving up`);
    }
    const behavior = await this.#recover();
    this.#restarts += 1;
    return behavior;
  }

  /** Degraded with the crash reasons while a crash is recent, healthy otherwise. */
  health(): Health {
    const now = this.#now();
    const recent = this.#crashes.filter((c) => now - c.at < this.#windowMs);
    if (recent.length === 0) return { status: 'healthy' };
    return {
      status: 'degraded',
      reasons: recent
        .slice(-3)
        .map((c) =>
          `crashed at ${new Date(c.at).toISOString()} and was restarted from durable state (${recent.length} in window): ${c.reason}`.slice(
            0,
            512,
          ),
        ),
    };
  }
}
