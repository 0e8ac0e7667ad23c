import { decode, PROTOCOL_HEADER, protocolVersionProblem, USAGE_STREAM, USAGE_SUBJECT_PREFIX } from '@allot/protocol';
import { UsageSnapshotSchema } from '@allot/core';
import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { DroppedInput, subjectNodeToken } from './dropped-input.ts';
import { followLatest } from './latest-feed.ts';
import type { JetStreamClient } from './nats-deps.ts';
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
 * Follows ALLOT_USAGE from the last snapshot of every node, then live (`followLatest`), so a restarted coordinator
 * rebuilds its view from one message per node.
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
  let applied = 0;
  let invalid = 0;
  const onMessage = (m: JsMsg, age: () => number) => {
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
    const refusedBefore = view.refusedNodes;
    const t = view.apply(snapshot.value, age());
    if (view.refusedNodes !== refusedBefore) dropped.drop('usage', 'view_full', { subject: m.subject, nodeId: snapshot.value.nodeId });
    if (t !== null) opts.onTransition(t);
  };
  // No subject filter: the stream holds only allot.usage.* (and filter_subjects needs a 2.10 server; we run on 2.9.10).
  const feed = await followLatest(js, USAGE_STREAM, { onMessage, guard: (handle) => dropped.guard('usage', handle) });
  return { caughtUp: feed.caughtUp, stats: () => ({ applied, invalid }), stop: () => feed.stop() };
}
