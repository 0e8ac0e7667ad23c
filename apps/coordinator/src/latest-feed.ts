import type { JsMsg } from '@nats-io/jetstream';
import { DeliverPolicy, type JetStreamClient } from './nats-deps.ts';

/** A stream followed from the last message of every subject, then live. */
export interface LatestFeed {
  /** Resolves once the messages stored when the feed started have been handled. */
  readonly caughtUp: Promise<void>;
  stop(): Promise<void>;
}

export interface LatestHandlers {
  /**
   * One message. `age()` is how old it is: 0 when live; when replayed, the newest JetStream timestamp known (the
   * stream's last message when the feed started, or a newer one aged since) minus its own, two server times never
   * compared with this machine's clock. Calling it counts the message's timestamp as known, so a handler calls it only
   * for a message it takes.
   */
  onMessage(m: JsMsg, age: () => number): void;
  /** Once, when the replay is done (at once for an empty stream). */
  onCaughtUp?(): void;
  /** Before each message is handled: the feed delivers. */
  onDelivered?(): void;
  /** The consumer's heartbeats stopped coming (its server went away; the ordered consumer recreates itself elsewhere). */
  onHeartbeatsMissed?(): void;
  /** Runs a message's handling; a throw must not end the loop (the follower would freeze with no one to catch it). */
  guard(handle: () => void): void;
}

/**
 * Follows `stream` with an ordered consumer that starts at the last message of every subject (deliver_policy
 * last_per_subject) and then stays live: how a restarted coordinator rebuilds what it derives from the latest message
 * per node (usage snapshots, node leases). Only the replay is aged by server times: live messages may come from a new
 * stream leader whose clock differs from the old one's.
 */
export async function followLatest(js: JetStreamClient, stream: string, handlers: LatestHandlers): Promise<LatestFeed> {
  const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.LastPerSubject });
  // Short pull expiry and heartbeat: when the server that holds this (ephemeral, ordered) consumer dies, two missed
  // heartbeats make the client recreate it elsewhere. With the defaults (30 s expiry) that took ~45 s in the chaos
  // suite, and every node looked silent to this coordinator meanwhile; the cost is a pull request every 5 s.
  // Batches of 1,000: with the client's default of 100 it asks again after every 25 messages, and at 10,000 hosts' 2,100
  // reports a second those pull requests' writes were 12% of a coordinator's CPU (2.7% with 1,000; docs/benchmarks.md).
  const messages = await consumer.consume({ expires: 5_000, idle_heartbeat: 2_000, max_messages: 1_000 });
  let replaying = true;
  let resolveCaughtUp: () => void = () => {};
  const caughtUp = new Promise<void>((resolve) => (resolveCaughtUp = resolve));
  const markCaughtUp = () => {
    if (!replaying) return;
    replaying = false;
    handlers.onCaughtUp?.();
    resolveCaughtUp();
  };
  let newestStoredAt = await lastStoredAt(js, stream);
  // An empty stream: nothing to rebuild. Otherwise the first message with nothing pending behind it marks the end.
  const info = await consumer.info(true).catch(() => undefined);
  if (info !== undefined && info.num_pending === 0) markCaughtUp();

  if (handlers.onHeartbeatsMissed !== undefined) {
    const missed = handlers.onHeartbeatsMissed;
    void (async () => {
      for await (const s of messages.status()) if (s.type === 'heartbeats_missed') missed();
    })().catch(() => undefined);
  }
  const loop = (async () => {
    for await (const m of messages) {
      handlers.onDelivered?.();
      const age = () => {
        // Nanoseconds past 2^53 lose precision as a number, far below the millisecond kept here.
        const storedAt = Math.floor(Number(m.info.timestampNanos) / 1e6);
        newestStoredAt = Math.max(newestStoredAt, storedAt);
        return replaying ? newestStoredAt - storedAt : 0;
      };
      handlers.guard(() => handlers.onMessage(m, age));
      if (m.info.pending === 0) markCaughtUp();
    }
  })();
  return {
    caughtUp,
    stop: async () => {
      await messages.close();
      await loop.catch(() => undefined);
    },
  };
}

/** The JetStream timestamp (ms) of a stream's last message; 0 when unknown (a replay is then aged by what it shows). */
async function lastStoredAt(js: JetStreamClient, stream: string): Promise<number> {
  try {
    const info = await (await js.jetstreamManager()).streams.info(stream);
    const at = Date.parse(info.state.last_ts);
    return Number.isFinite(at) ? at : 0;
  } catch {
    return 0;
  }
}
