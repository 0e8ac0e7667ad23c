import {
  AllotEventSchema,
  decode,
  EVENTS_STREAM,
  EVENTS_SUBJECT_PREFIX,
  PROTOCOL_HEADER,
  protocolVersionProblem,
  type AllotEvent,
} from '@allot/protocol';
import { err, ok, type Result } from '@allot/core';
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { metrics, type Counter } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { DroppedInput, eventSubjectMismatch } from './dropped-input.ts';
import type { ReleaseCause } from './intents.ts';
import type { IntentStore } from './intents/intent-store.ts';
import { endPlacement, MOVED_REASON } from './moves/move.ts';

/**
 * Quota follows the agents' durable events (finding 5a): a reservation placed through a coordinator that expires on its
 * agent, an allocation released on the agent directly, or one preempted, ends its placement intent (released) and so
 * gives the tenant's quota back, in the same atomic write (IntentStore.released). Without this, only releases that went
 * through a coordinator were ever given back.
 *
 * Every coordinator consumes ALLOT_EVENTS through ONE shared durable consumer, so each event is handled by about one of
 * them (redelivered after a crash or a missed ack). Handling is idempotent by request id anyway: an intent already
 * released, failed, or naming another node (or another allocation) is left alone. Events that are not valid, name no
 * request id, or no intent, are counted and acknowledged: hostile data never stops the consumer.
 */

/** The one durable consumer every coordinator shares. */
export const QUOTA_EVENTS_DURABLE = 'allot-quota-events';
/** The event kinds that end an allocation on its agent. */
export const ENDING_KINDS = ['expired', 'released', 'preempted'] as const;

/** What handling one event did, for metrics and tests. */
export type QuotaEventOutcome =
  /** The intent was moved to released: its quota is given back. */
  | 'released'
  /** The intent had already ended (released or failed): nothing to do. */
  | 'already_ended'
  /** The intent names another node or another allocation (an orphan or an undo elsewhere): not this placement. */
  | 'not_this_placement'
  /** No intent for the request id (not placed through a coordinator, or long expired). */
  | 'no_intent'
  /** From a node decommissioned and removed (its agent came back): dropped, its placements were settled already. */
  | 'decommissioned_node'
  /** The source of a move released by the move's confirm: the confirm's batch moves its count (moves/move.ts). */
  | 'move_confirming'
  /** The event names no request id (an agent from before expiry events carried one). */
  | 'no_request_id'
  /** Not an allot event, or not a kind that ends an allocation. */
  | 'invalid';

function causeOf(event: AllotEvent): ReleaseCause {
  if (event.kind === 'expired') return 'expiry';
  if (event.kind === 'preempted' || event.reason?.startsWith('preempted') === true) return 'preemption';
  if (event.reason?.startsWith('orphan') === true) return 'sweep';
  return 'agent';
}

/** Handles one ending event against the intents: pure of NATS, so unit tests and the simulator drive it directly. */
export async function handleEndingEvent(intents: IntentStore, event: AllotEvent): Promise<Result<QuotaEventOutcome>> {
  if (!(ENDING_KINDS as readonly string[]).includes(event.kind)) return ok('invalid');
  const requestId = event.requestId;
  if (requestId === undefined) return ok('no_request_id');
  // A concurrent transition of the same intent (the place flow, the sweep) makes the release a conflict: read again.
  for (let round = 0; round < 4; round++) {
    const read = await intents.get(requestId);
    if (!read.ok) return read;
    const at = read.value;
    if (at === null) return ok('no_intent');
    const intent = at.value;
    if (intent.state === 'released' || intent.state === 'failed') return ok('already_ended');
    if (intent.nodeId !== event.nodeId) return ok('not_this_placement');
    const allocationId = intent.reply?.allocation.id;
    if (allocationId !== undefined && event.allocationId !== undefined && allocationId !== event.allocationId)
      return ok('not_this_placement');
    // Ending it here would give its quota back before the destination counts (the tenant could place into that gap).
    if (intent.movingTo !== undefined && event.kind === 'released' && event.reason?.startsWith(MOVED_REASON) === true)
      return ok('move_confirming');
    const released = await endPlacement(intents, at, causeOf(event), event.preemptedBy?.requestId); // a moving source hands over its count
    if (released.ok) return ok('released');
    if (released.error.code !== 'conflict') return released;
  }
  return err('unavailable', `placement ${requestId}: still changing under the event; retry`, { requestId });
}

export interface QuotaEventsOptions {
  readonly logger: Logger;
  /** Events handled at once by this coordinator (each is a KV read, and for a live intent an atomic write). */
  readonly concurrency?: number;
  /** Wait before an event whose handling failed (KV unavailable) is delivered again. */
  readonly retryDelayMs?: number;
  /** Counts and rate-limits the log of dropped events (source `quota_events`). */
  readonly dropped?: DroppedInput;
  /** Whether the node is decommissioned and removed: its agent's events are dropped (counted as decommissioned_node). */
  readonly refusedNode?: (nodeId: string) => boolean;
}

/** Counts per outcome, for tests and the log. */
export type QuotaEventCounts = Record<QuotaEventOutcome | 'error', number>;

/** A running consumer; stop() ends it (the durable stays for the other coordinators). */
export interface QuotaEventsFollower {
  readonly counts: Readonly<QuotaEventCounts>;
  stop(): Promise<void>;
}

/** Creates the shared durable consumer (or brings its filter up to date), idempotent across coordinators. */
async function ensureDurable(js: JetStreamClient): Promise<void> {
  const jsm = await js.jetstreamManager();
  const config = {
    durable_name: QUOTA_EVENTS_DURABLE,
    ack_policy: AckPolicy.Explicit,
    // Events from before the first coordinator of this version started are left to the anti-entropy sweep.
    deliver_policy: DeliverPolicy.New,
    filter_subjects: ENDING_KINDS.map((kind) => `${EVENTS_SUBJECT_PREFIX}.*.${kind}`),
    ack_wait: nanos(30_000),
    max_ack_pending: 1_000,
  };
  try {
    await jsm.consumers.info(EVENTS_STREAM, QUOTA_EVENTS_DURABLE);
  } catch {
    try {
      await jsm.consumers.add(EVENTS_STREAM, config);
    } catch (e) {
      // Another coordinator created it meanwhile: fine; anything else is for the caller.
      await jsm.consumers.info(EVENTS_STREAM, QUOTA_EVENTS_DURABLE).catch(() => {
        throw e;
      });
    }
  }
}

/** Starts consuming the shared durable: each ending event is handled, acked when done, redelivered when it failed. */
export async function followQuotaEvents(
  js: JetStreamClient,
  intents: IntentStore,
  opts: QuotaEventsOptions,
): Promise<Result<QuotaEventsFollower>> {
  try {
    await ensureDurable(js);
  } catch (e) {
    return err('unavailable', `cannot create the ${QUOTA_EVENTS_DURABLE} consumer on ${EVENTS_STREAM}: ${(e as Error).message}`);
  }
  const counter: Counter = metrics.getMeter('allot').createCounter('allot_quota_events_total', {
    description: 'Agent events that end an allocation (expired, released, preempted), by what handling them did',
  });
  const counts: QuotaEventCounts = {
    released: 0,
    already_ended: 0,
    not_this_placement: 0,
    no_intent: 0,
    decommissioned_node: 0,
    move_confirming: 0,
    no_request_id: 0,
    invalid: 0,
    error: 0,
  };
  const dropped = opts.dropped ?? new DroppedInput(opts.logger);
  const concurrency = opts.concurrency ?? 16;
  const retryDelayMs = opts.retryDelayMs ?? 1_000;
  let messages: ConsumerMessages;
  try {
    const consumer = await js.consumers.get(EVENTS_STREAM, QUOTA_EVENTS_DURABLE);
    messages = await consumer.consume({ max_messages: concurrency * 2 });
  } catch (e) {
    return err('unavailable', `cannot consume ${QUOTA_EVENTS_DURABLE}: ${(e as Error).message}`);
  }

  const handle = async (m: JsMsg): Promise<void> => {
    const event = decode(AllotEventSchema, m.data);
    let outcome: QuotaEventOutcome | 'error';
    // Only agent X publishes under allot.events.X (NATS permissions), and coordinators never publish an ending kind:
    // an event whose body names another node than its subject is forged and must not end anyone's placement.
    const mismatch =
      protocolVersionProblem(m.headers?.get(PROTOCOL_HEADER)) !== undefined
        ? 'protocol_version'
        : event.ok
          ? eventSubjectMismatch(m.subject, EVENTS_SUBJECT_PREFIX, event.value)
          : undefined;
    if (!event.ok || mismatch !== undefined) {
      outcome = 'invalid';
      dropped.drop('quota_events', mismatch ?? 'invalid', {
        subject: m.subject,
        seq: m.seq,
        ...(event.ok ? {} : { error: event.error.message }),
      });
    } else if (opts.refusedNode?.(event.value.nodeId) === true) {
      outcome = 'decommissioned_node';
    } else {
      let handled: Result<QuotaEventOutcome>;
      try {
        handled = await handleEndingEvent(intents, event.value);
      } catch (e) {
        handled = err('internal', (e as Error).message);
      }
      if (handled.ok) outcome = handled.value;
      else {
        outcome = 'error';
        opts.logger.warn(
          { subject: m.subject, requestId: event.value.requestId, err: handled.error },
          'quota events: event not handled; it will be delivered again',
        );
        counts.error += 1;
        counter.add(1, { outcome });
        m.nak(retryDelayMs);
        return;
      }
      if (outcome === 'released')
        opts.logger.info(
          { requestId: event.value.requestId, node: event.value.nodeId, kind: event.value.kind },
          'quota given back: the allocation ended on its agent',
        );
    }
    counts[outcome] += 1;
    counter.add(1, { outcome });
    m.ack();
  };

  const inFlight = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const m of messages) {
      const p = handle(m).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
  })().catch((e: unknown) => opts.logger.error({ err: (e as Error).message }, 'quota events: the consumer stopped'));

  return ok({
    counts,
    stop: async () => {
      await messages.close();
      await loop;
      await Promise.all(inFlight);
    },
  });
}
