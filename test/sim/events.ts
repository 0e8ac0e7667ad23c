import type { AllotEvent } from '@allot/protocol';
import type { Result } from '@allot/core';
import { ENDING_KINDS } from '../../apps/coordinator/src/quota-events.ts';
import type { Faults } from './faults.ts';
import type { Scheduler } from './scheduler.ts';

/** A process that can take a delivery of the shared durable consumer (a live coordinator). */
export interface EventConsumer {
  readonly up: boolean;
  readonly name: string;
  /** Handles one event; never settles when the process dies while handling it (no ack, no nak). */
  handleEvent(event: AllotEvent): Promise<Result<unknown>>;
}

/** The consumer's ack_wait (quota-events.ts): an event handled by nobody in that time is delivered again. */
const ACK_WAIT_MS = 30_000;
/** The nak delay after a failed handling (QuotaEventsOptions.retryDelayMs). */
const RETRY_MS = 1_000;

/**
 * ALLOT_EVENTS and the one durable consumer `allot-quota-events` every coordinator shares: the agents publish each
 * durable record's event (deduplicated by `<nodeId>-<seq>`, as the stream's duplicate window does), the consumer's
 * filter keeps the ending kinds, and each event is delivered to one live coordinator at a time, at least once: acked
 * when handled, delivered again after a nak (the handler failed) or after ack_wait (the coordinator died holding it, or
 * its ack was lost).
 */
export class SimEventStream {
  readonly #sched: Scheduler;
  readonly #faults: () => Faults;
  readonly #consumers: () => readonly EventConsumer[];
  readonly #seen = new Set<string>();
  /** Events stored and not yet acknowledged. */
  #unacked = 0;
  stored = 0;

  constructor(options: { sched: Scheduler; faults: () => Faults; consumers: () => readonly EventConsumer[] }) {
    this.#sched = options.sched;
    this.#faults = options.faults;
    this.#consumers = options.consumers;
  }

  get unacked(): number {
    return this.#unacked;
  }

  publish(event: AllotEvent, msgId: string): void {
    if (this.#seen.has(msgId)) return;
    this.#seen.add(msgId);
    if (!(ENDING_KINDS as readonly string[]).includes(event.kind)) return;
    this.stored++;
    this.#unacked++;
    const entry = { event, msgId, acked: false, delivery: 0 };
    this.#sched.after(this.#sched.int(0, this.#faults().maxDelayMs), `event ${msgId} deliver`, () => this.#deliver(entry));
  }

  #deliver(entry: { event: AllotEvent; msgId: string; acked: boolean; delivery: number }): void {
    if (entry.acked) return;
    const live = this.#consumers().filter((c) => c.up);
    if (live.length === 0) {
      this.#sched.after(RETRY_MS, `event ${entry.msgId} waits for a consumer`, () => this.#deliver(entry));
      return;
    }
    const consumer = this.#sched.pick(live);
    const delivery = ++entry.delivery;
    const tag = `event ${entry.msgId} (${entry.event.kind} ${entry.event.requestId ?? '-'}) delivery ${delivery} to ${consumer.name}`;
    this.#sched.trace(tag);
    const ackWait = this.#sched.after(ACK_WAIT_MS, `${tag} ack wait`, () => this.#deliver(entry));
    void consumer.handleEvent(entry.event).then((handled) => {
      if (entry.acked || entry.delivery !== delivery) return;
      ackWait.cancel();
      if (!handled.ok) {
        this.#sched.trace(`${tag}: nak (${handled.error.code})`);
        this.#sched.after(RETRY_MS, `${tag} nak`, () => this.#deliver(entry));
        return;
      }
      if (this.#sched.chance(this.#faults().dropP)) {
        // The ack is lost: delivered again after ack_wait.
        this.#sched.trace(`${tag}: ${JSON.stringify(handled.value)}, ack lost`);
        this.#sched.after(ACK_WAIT_MS, `${tag} ack lost`, () => this.#deliver(entry));
        return;
      }
      this.#sched.trace(`${tag}: ${JSON.stringify(handled.value)}`);
      entry.acked = true;
      this.#unacked--;
    });
  }
}
