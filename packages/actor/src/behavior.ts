// What an actor's behaviour is and what its handler may return (deferred replies: see actor.ts's module doc). A leaf:
// the actor and its supervisor both speak of behaviours.

/**
 * A reply that becomes available later (when a journal record is durable); the mailbox does not wait for it.
 * Either the promise's own value is the reply (`deferred`), or the reply is known now and only its release waits
 * for the promise (`deferredUntil`, one Promise fewer per message on the hot path).
 */
export class Deferred<Reply> {
  readonly promise: Promise<unknown>;
  /** True when `reply` is the reply (deferredUntil); false when the promise's value is (deferred). */
  readonly fixed: boolean;
  readonly reply: Reply | undefined;
  /** Run once the promise has fulfilled, just before the reply is delivered (e.g. a change notification). */
  readonly onDurable: (() => void) | undefined;
  constructor(promise: Promise<unknown>, fixed = false, reply?: Reply, onDurable?: () => void) {
    this.promise = promise;
    this.fixed = fixed;
    this.reply = reply;
    this.onDurable = onDurable;
  }
}

/** Wraps a promise as a deferred reply: see the module doc. */
export function deferred<Reply>(promise: Promise<Reply>): Deferred<Reply> {
  return new Deferred<Reply>(promise);
}

/**
 * A reply known now, delivered once `durable` fulfils (after `onDurable`, when given); when `durable` rejects, the
 * same as a failed deferred reply (see the module doc).
 */
export function deferredUntil<Reply>(durable: Promise<unknown>, reply: Reply, onDurable?: () => void): Deferred<Reply> {
  return new Deferred<Reply>(durable, true, reply, onDurable);
}

/** What an actor's handler may return. */
export type HandlerResult<Reply> = Reply | Deferred<Reply> | Promise<Reply>;

/** An actor's state and behaviour: one method that handles one message inside its turn. */
export interface Behavior<Msg, Reply> {
  receive(msg: Msg): HandlerResult<Reply>;
}
