import { AllotEventSchema, CLUSTER_EVENT_NODE, decode, EVENTS_STREAM, EVENTS_SUBJECT_PREFIX } from '@allot/protocol';
import type { Logger } from 'pino';
import { DroppedInput, eventSubjectMismatch } from '../dropped-input.ts';
import { DeliverPolicy, type JetStreamClient } from '../nats-deps.ts';
import type { FeedEvent } from '@allot/protocol/http';

/**
 * Follows ALLOT_EVENTS with an ordered consumer (ephemeral, no acks, recreated by the client after a gap) starting
 * `lookbackMs` ago, so a page opened now still sees what just happened. Invalid events, events whose body names
 * another node or kind than their subject (only the coordinators' `cluster` subject may name other nodes), and events
 * the handler throws on are dropped and counted (source `events_feed`): the feed never stops on bad data.
 * Returns the stop function.
 */
export async function followEvents(
  js: JetStreamClient,
  onEvent: (e: FeedEvent) => void,
  opts: { logger: Logger; now: () => number; lookbackMs: number; dropped?: DroppedInput },
): Promise<() => Promise<void>> {
  const dropped = opts.dropped ?? new DroppedInput(opts.logger);
  const start = new Date(opts.now() - opts.lookbackMs).toISOString();
  const consumer = await js.consumers.get(EVENTS_STREAM, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start });
  // Recovers within seconds when the server holding this ordered consumer dies (see usage-feed.ts).
  const messages = await consumer.consume({ expires: 5_000, idle_heartbeat: 2_000 });
  const loop = (async () => {
    for await (const m of messages) {
      dropped.guard('events_feed', () => {
        const e = decode(AllotEventSchema, m.data, Number.POSITIVE_INFINITY);
        if (!e.ok) return dropped.drop('events_feed', 'invalid', { subject: m.subject, seq: m.seq, error: e.error.message });
        const mismatch = eventSubjectMismatch(m.subject, EVENTS_SUBJECT_PREFIX, e.value, CLUSTER_EVENT_NODE);
        if (mismatch !== undefined)
          return dropped.drop('events_feed', mismatch, { subject: m.subject, seq: m.seq, nodeId: e.value.nodeId, kind: e.value.kind });
        onEvent({ ...e.value, seq: m.seq });
      });
    }
  })();
  return async () => {
    await messages.close();
    await loop.catch(() => undefined);
  };
}
