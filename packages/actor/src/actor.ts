/**
 * A small actor: private state behind a mailbox that handles one message at a time, so a handler's
 * check-then-commit is atomic without locks.
 *
 * Why written here rather than taken from npm: we looked at nact (last release 2020, its own persistence and
 * scheduling model, callbacks), comedy (process/cluster actors, heavy), xstate (state charts, not a mailbox) and
 * generic queues (p-queue: one Promise chain per task, no ask/reply, no supervision). None offers the one thing allot
 * needs most, deferred replies (below), and each adds at least a macrotask or two per message; an ask to an idle
 * actor here costs one Promise and runs the handler inline. The whole runtime is about 250 lines.
 *
 * Handlers return one of three things:
 * - a plain value: the reply, available at once;
 * - `deferred(promise)`: the handler finished its turn (checked, applied to in-memory state, handed a record to an
 *   ordered journal) and the reply waits for the record to be durable. The mailbox moves on to the next message
 *   WITHOUT awaiting that promise, so many commits share one fsync (group commit) instead of one fsync per request;
 * - a Promise (a plain async handler, e.g. one that must await another actor): the mailbox awaits it before the next
 *   message, so its awaits stay inside its turn.
 *
 * Why deferred replies never over-commit: every turn applies its change to memory before the next turn checks, so
 * the in-memory state is always the sequence of applied operations, each admitted against the state left by the
 * ones before it. The journal is ordered, so what is durable at any moment is a prefix of that sequence; a prefix of
 * admissible operations is itself admissible (each was admitted against a state holding at least as much), so the
 * state recovered after a crash never over-commits. A caller is only told "done" once its record is durable, so
 * nothing acknowledged is lost. A journal failure breaks the prefix argument for the memory state (memory is now
 * ahead of disk with a hole), so it is fatal: the deferred reply becomes `internal`, the actor is marked crashed and
 * its supervisor rebuilds it from durable state.
 *
 * Timeouts: `ask(msg, { timeoutMs })` rejects with `timeout` when no reply arrives in time, but the message stays in
 * the mailbox and MAY still be processed (and committed) afterwards. A caller that times out must retry with the
 * same request id (allot's operations are idempotent by request id), never assume nothing happened.
 */
import { AllotFailure, errorOf, toAllotError, type AllotError } from '@allot/core';
import { Deferred, type Behavior, type HandlerResult } from './behavior.ts';
import type { Supervisor } from './supervisor.ts';

export interface AskOptions {
  /** Reject with `timeout` after this long; the message may still be processed later (see module doc). */
  readonly timeoutMs?: number;
}

export interface ActorOptions<Msg, Reply> {
  /** For error messages and health reasons. */
  readonly name?: string;
  /** Restarts the behaviour from durable state when a handler throws or a deferred reply fails. */
  readonly supervisor?: Supervisor<Msg, Reply>;
  /**
   * Called once if the actor stops by itself: it crashed and could not be recovered (no supervisor, or the supervisor
   * gave up). Never for stop(). The owner must not keep serving a dead actor: the agent exits and recovers from disk.
   */
  readonly onFailed?: (error: AllotError) => void;
}

interface Envelope<Reply> {
  readonly msg: unknown;
  /** Absent for tell. */
  readonly resolve?: (reply: Reply) => void;
  readonly reject?: (error: unknown) => void;
  timer?: ReturnType<typeof setTimeout>;
  settled: boolean;
}

type Phase = 'running' | 'stopping' | 'stopped';

/** The thrown value a deferred reply fails with when the journal fails: marks the actor crashed. */
function journalFailure(name: string, cause: unknown): AllotFailure {
  return new AllotFailure(errorOf('internal', `${name}: durable write failed, the outcome is unknown: ${toAllotError(cause).message}`));
}

/**
 * An actor. `ask` returns the reply; `tell` sends without waiting; `stop` drains the mailbox then refuses with
 * `unavailable`. Crashes (a handler throwing anything, a deferred reply failing with anything but an AllotFailure)
 * go to the supervisor, which swaps in a behaviour recovered from durable state; without one the actor stops.
 */
export class Actor<Msg, Reply> {
  readonly name: string;
  #behavior: Behavior<Msg, Reply>;
  readonly #supervisor: Supervisor<Msg, Reply> | undefined;
  // A plain array with a moving head: shift() is O(n) on long queues.
  #queue: Envelope<Reply>[] = [];
  #head = 0;
  /** True while a turn runs or an async handler is awaited or a restart is in progress. */
  #busy = false;
  #phase: Phase = 'running';
  #inFlightDeferred = 0;
  /** Bumped at every restart so a late failure of an old incarnation's deferred reply does not restart the new one. */
  #generation = 0;
  #drained: (() => void) | undefined;
  readonly #onFailed: ((error: AllotError) => void) | undefined;

  constructor(behavior: Behavior<Msg, Reply>, options: ActorOptions<Msg, Reply> = {}) {
    this.#behavior = behavior;
    this.name = options.name ?? 'actor';
    this.#supervisor = options.supervisor;
    this.#onFailed = options.onFailed;
  }

  /** Messages waiting (not counting the one being handled). */
  get mailboxSize(): number {
    return this.#queue.length - this.#head;
  }

  get isRunning(): boolean {
    return this.#phase === 'running';
  }

  /** Sends a message and resolves with its reply; rejects with an AllotFailure (`unavailable`, `timeout`, `internal`, or the handler's own). */
  ask(msg: Msg, options?: AskOptions): Promise<Reply> {
    if (this.#phase !== 'running') return Promise.reject(this.#stoppedFailure());
    return new Promise<Reply>((resolve, reject) => {
      const envelope: Envelope<Reply> = { msg, resolve, reject, settled: false };
      const timeoutMs = options?.timeoutMs;
      if (timeoutMs !== undefined) {
        envelope.timer = setTimeout(() => {
          if (envelope.settled) return;
          envelope.settled = true;
          reject(
            new AllotFailure(
              errorOf(
                'timeout',
                `${this.name}: no reply within ${timeoutMs} ms; the message may still be processed, retry with the same request id`,
                { timeoutMs },
              ),
            ),
          );
        }, timeoutMs);
      }
      this.#enqueue(envelope);
    });
  }

  /** Fire and forget; a crash still goes to the supervisor. Ignored once stopping. */
  tell(msg: Msg): void {
    if (this.#phase !== 'running') return;
    this.#enqueue({ msg, settled: false });
  }

  /** Refuses new messages with `unavailable`, lets queued and deferred replies finish, then resolves. */
  stop(): Promise<void> {
    if (this.#phase === 'stopped') return Promise.resolve();
    this.#phase = 'stopping';
    if (this.#isIdle()) {
      this.#phase = 'stopped';
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const previous = this.#drained;
      this.#drained = () => {
        previous?.();
        resolve();
      };
    });
  }

  #isIdle(): boolean {
    return !this.#busy && this.mailboxSize === 0 && this.#inFlightDeferred === 0;
  }

  #stoppedFailure(): AllotFailure {
    return new AllotFailure(errorOf('unavailable', `${this.name} is stopped`));
  }

  #enqueue(envelope: Envelope<Reply>): void {
    this.#queue.push(envelope);
    if (!this.#busy) this.#drain();
  }

  /** Runs turns until the mailbox is empty or an async handler must be awaited. */
  #drain(): void {
    this.#busy = true;
    while (this.#head < this.#queue.length) {
      const envelope = this.#queue[this.#head] as Envelope<Reply>;
      this.#queue[this.#head] = undefined as unknown as Envelope<Reply>;
      this.#head += 1;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      let result: HandlerResult<Reply>;
      try {
        result = this.#behavior.receive(envelope.msg as Msg);
      } catch (thrown) {
        if (thrown instanceof AllotFailure) {
          // A typed refusal thrown on purpose: the caller gets it, the actor is fine.
          this.#fail(envelope, thrown);
          continue;
        }
        this.#fail(
          envelope,
          new AllotFailure(errorOf('internal', `${this.name} crashed handling a message: ${toAllotError(thrown).message}`)),
        );
        this.#crash(thrown);
        return;
      }
      if (result instanceof Deferred) {
        this.#awaitDeferred(envelope, result as Deferred<Reply>);
      } else if (result instanceof Promise) {
        // A plain async handler: its awaits belong to its turn, so the mailbox waits.
        result.then(
          (reply) => {
            this.#succeed(envelope, reply);
            this.#drain();
          },
          (thrown: unknown) => {
            if (thrown instanceof AllotFailure) {
              this.#fail(envelope, thrown);
              this.#drain();
              return;
            }
            this.#fail(
              envelope,
              new AllotFailure(errorOf('internal', `${this.name} crashed handling a message: ${toAllotError(thrown).message}`)),
            );
            this.#crash(thrown);
          },
        );
        return;
      } else {
        this.#succeed(envelope, result);
      }
    }
    // Empty: start the array over instead of letting it grow to the compaction threshold.
    this.#queue.length = 0;
    this.#head = 0;
    this.#busy = false;
    this.#maybeDrained();
  }

  #awaitDeferred(envelope: Envelope<Reply>, reply: Deferred<Reply>): void {
    this.#inFlightDeferred += 1;
    const generation = this.#generation;
    reply.promise.then(
      (value) => {
        this.#inFlightDeferred -= 1;
        if (reply.onDurable !== undefined) {
          try {
            reply.onDurable();
          } catch {
            // A notification's failure must not lose a durable reply.
          }
        }
        this.#succeed(envelope, reply.fixed ? (reply.reply as Reply) : (value as Reply));
        this.#maybeDrained();
      },
      (thrown: unknown) => {
        this.#inFlightDeferred -= 1;
        if (thrown instanceof AllotFailure && thrown.error.code !== 'internal') {
          this.#fail(envelope, thrown);
        } else {
          // The journal failed: memory is ahead of disk. Fatal for this incarnation (see module doc).
          this.#fail(envelope, journalFailure(this.name, thrown));
          if (generation === this.#generation && !this.#busy) this.#crash(thrown);
          else if (generation === this.#generation) this.#pendingCrash = { cause: thrown };
        }
        this.#maybeDrained();
      },
    );
  }

  /** A journal failure noticed while a turn was running: handled when the turn ends. */
  #pendingCrash: { cause: unknown } | undefined = undefined;

  #succeed(envelope: Envelope<Reply>, reply: Reply): void {
    if (envelope.settled) return;
    envelope.settled = true;
    if (envelope.timer !== undefined) clearTimeout(envelope.timer);
    envelope.resolve?.(reply);
  }

  #fail(envelope: Envelope<Reply>, failure: AllotFailure): void {
    if (envelope.settled) return;
    envelope.settled = true;
    if (envelope.timer !== undefined) clearTimeout(envelope.timer);
    envelope.reject?.(failure);
  }

  /** The behaviour can no longer be trusted: restart it from durable state, or stop when unsupervised. */
  #crash(cause: unknown): void {
    this.#busy = true;
    this.#generation += 1;
    this.#pendingCrash = undefined;
    const supervisor = this.#supervisor;
    if (supervisor === undefined) {
      this.#failed(errorOf('unavailable', `${this.name} crashed and has no supervisor: ${toAllotError(cause).message}`));
      return;
    }
    supervisor.restart(cause).then(
      (behavior) => {
        this.#behavior = behavior;
        this.#drain();
      },
      (recoverFailure: unknown) =>
        this.#failed(errorOf('unavailable', `${this.name} could not recover: ${toAllotError(recoverFailure).message}`)),
    );
  }

  /** Stops for good after a crash it cannot recover from, and tells the owner. */
  #failed(error: AllotError): void {
    const wasRunning = this.#phase !== 'stopped';
    this.#phase = 'stopped';
    this.#refuseQueued(error);
    this.#busy = false;
    this.#maybeDrained();
    if (!wasRunning) return;
    try {
      this.#onFailed?.(error);
    } catch {
      // The owner's handler must not turn a stop into an unhandled throw inside a promise reaction.
    }
  }

  #refuseQueued(error: AllotError): void {
    while (this.#head < this.#queue.length) {
      const envelope = this.#queue[this.#head] as Envelope<Reply>;
      this.#head += 1;
      this.#fail(envelope, new AllotFailure(error));
    }
    this.#queue = [];
    this.#head = 0;
  }

  #maybeDrained(): void {
    if (this.#pendingCrash !== undefined && !this.#busy) {
      this.#crash(this.#pendingCrash.cause);
      return;
    }
    if (this.#phase === 'running' || !this.#isIdle()) return;
    this.#phase = 'stopped';
    const drained = this.#drained;
    this.#drained = undefined;
    drained?.();
  }
}
