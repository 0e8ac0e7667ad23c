import { AllotEventSchema, decode, EVENTS_STREAM } from '@allot/core';
import type { Logger } from 'pino';
import { DeliverPolicy, type JetStreamClient } from '../nats-deps.ts';
import type { FeedEvent } from './api.ts';

/**
 * Follows ALLOT_EVENTS with an ordered consumer (ephemeral, no acks, recreated by the client after a gap) starting
 * `lookbackMs` ago, so a page opened now still sees what just happened. Invalid events are skipped.
 * Returns the stop function.
 */
export async function followEvents(js: JetStreamClient, onEvent: (e: FeedEvent) => void, opts: { logger: Logger; now: () => number; lookbackMs: number }): Promise<() => Promise<void>> {
  const start = new Date(opts.now() - opts.lookbackMs).toISOString();
  const consumer = await js.consumers.get(EVENTS_STREAM, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start });
  // Recovers within seconds when the server holding this ordered consumer dies (see usage-feed.ts).
  const messages = await consumer.consume({ expires: 5_000, idle_heartbeat: 2_000 });
  const loop = (async () => {
    for await (const m of messages) {
      const e = decode(AllotEventSchema, m.data, Number.POSITIVE_INFINITY);
      if (e.ok) onEvent({ ...e.value, seq: m.seq });
      else opts.logger.debug({ subject: m.subject, seq: m.seq, error: e.error.message }, 'invalid event skipped by the dashboard feed');
    }
  })();
  return async () => {
    await messages.close();
    await loop.catch(() => undefined);
  };
}
