import { deferred, deferredUntil, type Behavior, type HandlerResult } from '@allot/actor';
import { ok, type Allocation, type AllocationRequest, type Result } from '@allot/core';
import type { Clock } from '../clock.ts';
import type { FenceAnswer, HostState, Preemption, ReleaseRequest } from './host-state.ts';
import type { HostRecord, Journal } from './records.ts';

/** A message to a manager: a function run against the current behaviour inside one turn. */
export type Turn = (core: ManagerCore) => HandlerResult<unknown>;

export interface ManagerCoreOptions {
  readonly state: HostState;
  readonly journal: Journal;
  readonly clock: Clock;
  /** Posts a message to the manager's own mailbox (the reservation-expiry timer uses it). */
  readonly post: (turn: Turn) => void;
  /** Called with the new seq once a change is durable. */
  readonly changed: (seq: number) => void;
}

/**
 * The behaviour of a manager actor: its HostState plus the journal. Mutations check, apply to memory, hand the
 * record to the journal and reply deferred (see @allot/actor's module doc for why that never over-commits).
 * A new ManagerCore is built from durable state at every restart.
 */
export class ManagerCore implements Behavior<Turn, unknown> {
  readonly state: HostState;
  readonly #journal: Journal;
  readonly #clock: Clock;
  readonly #post: ManagerCoreOptions['post'];
  readonly #changed: ManagerCoreOptions['changed'];
  #timer: unknown;
  #timerAt: number | undefined;
  /** The last append handed to the journal: once it is durable, so is every record before it (the journal keeps order). */
  #tail: Promise<void> = Promise.resolve();
  /** Set by the supervisor's recover path when this incarnation was replaced: its timer must not act. */
  retired = false;

  constructor(options: ManagerCoreOptions) {
    this.state = options.state;
    this.#journal = options.journal;
    this.#clock = options.clock;
    this.#post = options.post;
    this.#changed = options.changed;
  }

  receive(turn: Turn): HandlerResult<unknown> {
    return turn(this);
  }

  #append(record: HostRecord): Promise<void> {
    const durable = this.#journal.append(record);
    this.#tail = durable;
    return durable;
  }

  /**
   * Replies `reply` once everything this incarnation has applied is durable: the answer to a retry or a reconciling
   * read, which the state in memory may hold only because a record still waits in the group-commit queue. A journal
   * failure fails the reply as it fails the original's (fatal, see @allot/actor).
   */
  whenDurable<T>(reply: T): HandlerResult<T> {
    return deferredUntil(this.#tail, reply);
  }

  /** Resolves once every append handed to the journal has settled, durable or failed (a rebuild waits for it). */
  settled(): Promise<void> {
    return this.#tail.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Journals records in order; resolves when the last is durable (the journal keeps order, so all are). */
  journal(records: readonly HostRecord[]): Promise<void> {
    let last: Promise<void> = this.#tail;
    for (const record of records) last = this.#append(record);
    const seq = this.state.seq;
    return last.then(() => this.#changed(seq));
  }

  /** Expires overdue reservations first, so a check never counts a hold whose time is up. */
  expireDue(): Promise<void> | undefined {
    if (!this.state.hasDue()) return undefined;
    const records = this.state.expireDue();
    if (records.length === 0) return undefined;
    this.schedule();
    const durable = this.journal(records);
    // Nobody awaits an expiry made on the way to another operation (callers `void` it); its failure still crashes the actor through the turn's own record.
    durable.catch(() => undefined);
    return durable;
  }

  /**
   * Journals one record and replies `reply` once it is durable (the seq announced then): the hot path, one journal
   * call and one Promise reaction, no intermediate promise chain.
   */
  #durably<T>(record: HostRecord, reply: T): HandlerResult<T> {
    const seq = this.state.seq;
    const changed = this.#changed;
    return deferredUntil(this.#append(record), reply, () => changed(seq));
  }

  /** Keeps one timer, set for the earliest reservation expiry (on the monotonic clock, as timers run). */
  schedule(): void {
    const at = this.state.nextDue;
    if (at === this.#timerAt) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === undefined) return;
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = undefined;
        if (this.retired) return;
        this.#post((core) => {
          const durable = core.expireDue();
          core.schedule();
          return durable === undefined ? undefined : deferred(durable);
        });
      },
      Math.max(0, at - this.#clock.monotonic()),
    );
  }

  /** Stops the timer (stop, or replaced after a crash). */
  retire(): void {
    this.retired = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * With a fence (a coordinator's drive): a replay or a refusal first records the fence when it is higher than the
   * recorded one, and answers once that is durable; so after a refusal at fence f no allocate at f or below commits.
   */
  allocate(request: AllocationRequest, reservation: boolean, fence?: number): HandlerResult<Result<Allocation>> {
    void this.expireDue();
    const change = this.state.allocate(request, reservation, fence);
    if (change.ok && change.value.record !== undefined) {
      if (reservation) this.schedule();
      return this.#durably(change.value.record, ok(change.value.allocation));
    }
    if (!change.ok && fence === undefined) return change;
    const reply: Result<Allocation> = change.ok ? ok(change.value.allocation) : change;
    const raised = fence === undefined ? undefined : this.state.raiseFence(request.requestId, fence);
    return raised === undefined ? this.whenDurable(reply) : this.#durably(raised, reply);
  }

  /**
   * Preemption in one turn and one record (HostState.preempt). Fenced like allocate: a refusal at a fence records it
   * first, so after a refused preempt at f no allocate or preempt of the request id at f or below commits.
   */
  preempt(request: AllocationRequest, victims: readonly string[], fence?: number, graceMs?: number): HandlerResult<Result<Preemption>> {
    void this.expireDue();
    const change = this.state.preempt(request, victims, fence, graceMs);
    if (change.ok && change.value.record !== undefined) {
      this.schedule();
      return this.#durably(change.value.record, ok({ allocation: change.value.allocation, victims: change.value.victims }));
    }
    if (!change.ok && fence === undefined) return change;
    const reply: Result<Preemption> = change.ok ? ok({ allocation: change.value.allocation, victims: change.value.victims }) : change;
    const raised = fence === undefined ? undefined : this.state.raiseFence(request.requestId, fence);
    return raised === undefined ? this.whenDurable(reply) : this.#durably(raised, reply);
  }

  /** Records `fence` for a request id (the highest is kept) and answers what is held for it, once durable. */
  fence(requestId: string, fence: number): HandlerResult<Result<FenceAnswer>> {
    void this.expireDue();
    const raised = this.state.raiseFence(requestId, fence);
    const reply = ok(this.state.fenceOf(requestId));
    return raised === undefined ? this.whenDurable(reply) : this.#durably(raised, reply);
  }

  release(target: ReleaseRequest): HandlerResult<Result<Allocation>> {
    void this.expireDue();
    const change = this.state.release(target);
    if (!change.ok) return change;
    const { allocation, record } = change.value;
    if (record === undefined) return this.whenDurable(ok(allocation));
    this.schedule();
    return this.#durably(record, ok(allocation));
  }

  activate(allocationId: string, requestId: string): HandlerResult<Result<Allocation>> {
    void this.expireDue();
    const change = this.state.activate(allocationId, requestId);
    if (!change.ok) return change;
    const { allocation, record } = change.value;
    if (record === undefined) return this.whenDurable(ok(allocation));
    this.schedule();
    return this.#durably(record, ok(allocation));
  }

  /** Runs a mutation that produced records (or a refusal) and replies once they are durable. */
  commit<T>(result: Result<{ value: T; records: readonly HostRecord[] }>): HandlerResult<Result<T>> {
    if (!result.ok) return result;
    if (result.value.records.length === 0) return this.whenDurable(ok(result.value.value));
    const value = result.value.value;
    return deferred(this.journal(result.value.records).then(() => ok(value)));
  }
}
