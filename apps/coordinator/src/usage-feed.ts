import { decode, PROTOCOL_HEADER, protocolVersionProblem, USAGE_STREAM, USAGE_SUBJECT_PREFIX } from '@allot/protocol';
import { UsageSnapshotSchema } from '@allot/core';
import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { DroppedInput, subjectNodeToken } from './dropped-input.ts';
import { DeliverPolicy, type JetStreamClient } from './nats-deps.ts';
import type { ClusterView, LivenessTransition } from './view.ts';

/** A running usage feed. */
export interface UsageFeed {
  /** Resolves once the snapshots stored when the feed started have been applied (the view is rebuilt). */
  readonly caughtUp: Promise<void>;
  /** Snapshots applied and rejected (invalid payloads, or naming another node than their subject) so far. */
  stats(): { applied: number; invalid: number };
  stop(): Promise<void>;
}

/**
 * Follows ALLOT_USAGE with an ordered consumer that starts at the last snapshot of every node (deliver_policy
 * last_per_subject) and then stays live, so a restarted coordinator rebuilds its view from one message per node.
 * A live snapshot counts as received now (the view measures silence on this coordinator's monotonic clock). A snapshot
 * replayed on a cold start may be old: its age is the newest JetStream timestamp known (the stream's last message, or a
 * newer one seen since) minus its own, both written by the server, never compared with this machine's clock. Only the
 * replay is aged this way: live messages may come from a new stream leader whose clock differs from the old one's.
 */
export async function followUsage(
  js: JetStreamClient,
  view: ClusterView,
  opts: { logger: Logger; onTransition: (t: LivenessTransition) => void; dropped?: DroppedInput },
): Promise<UsageFeed> {
  const dropped = opts.dropped ?? new DroppedInput(opts.logger);
  // No subject filter: the stream holds only allot.usage.* (and filter_subjects needs a 2.10 server; we run on 2.9.10).
  const consumer = await js.consumers.get(USAGE_STREAM, { deliver_policy: DeliverPolicy.LastPerSubject });
  // Short pull expiry and heartbeat: when the server that holds this (ephemeral, ordered) consumer dies, two missed
  // heartbeats make the client recreate it elsewhere. With the defaults (30 s expiry) that took ~45 s in the chaos
  // suite, and every node looked silent to this coordinator meanwhile; the cost is a pull request every 5 s.
  // Batches of 1,000: with the client's default of 100 it asks again after every 25 messages, and at 10,000 hosts' 2,100
  // reports a second those pull requests' writes were 12% of a coordinator's CPU (2.7% with 1,000; docs/benchmarks.md).
  const messages = await consumer.consume({ expires: 5_000, idle_heartbeat: 2_000, max_messages: 1_000 });
  let applied = 0;
  let invalid = 0;
  let replaying = true;
  let resolveCaughtUp: () => void = () => {};
  const caughtUp = new Promise<void>((resolve) => (resolveCaughtUp = resolve));
  const markCaughtUp = () => {
    replaying = false;
    resolveCaughtUp();
  };
  // The server's time of the newest stored snapshot: replayed ones are aged against it.
  let newestStoredAt = await lastStoredAt(js, USAGE_STREAM);
  // An empty stream: nothing to rebuild. Otherwise the first message with nothing pending behind it marks the end.
  const info = await consumer.info(true).catch(() => undefined);
  if (info !== undefined && info.num_pending === 0) markCaughtUp();

  const onMessage = (m: JsMsg) => {
    // Written by an agent more than one protocol version away: its shape is not ours to guess.
    const version = protocolVersionProblem(m.headers?.get(PROTOCOL_HEADER));
    if (version !== undefined) {
      invalid += 1;
      dropped.drop('usage', 'protocol_version', { subject: m.subject, seq: m.seq, error: version });
      return;
    }
    const snapshot = decode(UsageSnapshotSchema, m.data, Number.POSITIVE_INFINITY);
    if (!snapshot.ok) {
      invalid += 1;
      dropped.drop('usage', 'invalid', { subject: m.subject, seq: m.seq, error: snapshot.error.message });
      return;
    }
    // Identity comes from the subject (NATS permissions let agent X publish only allot.usage.X); a body naming another
    // node is a forgery, or a bug: once it made a phantom node appear ready.
    if (subjectNodeToken(m.subject, USAGE_SUBJECT_PREFIX) !== snapshot.value.nodeId) {
      invalid += 1;
      dropped.drop('usage', 'node_mismatch', { subject: m.subject, seq: m.seq, nodeId: snapshot.value.nodeId });
      return;
    }
    applied += 1;
    // Nanoseconds past 2^53 lose precision as a number, far below the millisecond kept here.
    const storedAt = Math.floor(Number(m.info.timestampNanos) / 1e6);
    newestStoredAt = Math.max(newestStoredAt, storedAt);
    const refusedBefore = view.refusedNodes;
    const t = view.apply(snapshot.value, replaying ? newestStoredAt - storedAt : 0);
    if (view.refusedNodes !== refusedBefore) dropped.drop('usage', 'view_full', { subject: m.subject, nodeId: snapshot.value.nodeId });
    if (t !== null) opts.onTransition(t);
  };
  const loop = (async () => {
    for await (const m of messages) {
      // A throw here would end the loop (the view would freeze) and reject with no one to catch it.
      dropped.guard('usage', () => onMessage(m));
      if (m.info.pending === 0) markCaughtUp();
    }
  })();
  return {
    caughtUp,
    stats: () => ({ applied, invalid }),
    stop: async () => {
      await messages.close();
      await loop.catch(() => undefined);
    },
  };
}

/** The JetStream timestamp (ms) of a stream's last message; 0 when unknown (a replay is then aged by what it shows). */
export async function lastStoredAt(js: JetStreamClient, stream: string): Promise<number> {
  try {
    const info = await (await js.jetstreamManager()).streams.info(stream);
    const at = Date.parse(info.state.last_ts);
    return Number.isFinite(at) ? at : 0;
  } catch {
    return 0;
  }
}
