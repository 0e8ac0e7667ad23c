import { randomUUID } from 'node:crypto';
import { err, ok, type Result } from '@allot/core';
import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';

/**
 * Compare-and-set publishes into a JetStream stream: one message, or an atomic batch (nats-server 2.12+, ADR-50) that
 * stores every message or none. Each message may name the sequence its subject must still have
 * (`Nats-Expected-Last-Subject-Sequence`; 0 = no message on the subject) and a per-message TTL (nats-server 2.11+,
 * stream `allow_msg_ttl`). This is what a KV create/update is, with a TTL and across several keys.
 */

/** One message of a compare-and-set publish. */
export interface ExpectedMessage {
  readonly subject: string;
  readonly payload: Uint8Array;
  /** The sequence of the subject's last message the write expects (0: the subject has none); absent: no check. */
  readonly expectedLastSubjectSequence?: number;
  /** Removed by the server after this long (rounded up to whole seconds, at least 1 s). */
  readonly ttlMs?: number;
}

export interface ExpectedPublishOptions {
  /** Wait this long for the server's acknowledgement; on expiry the outcome is unknown (`unavailable`). */
  readonly timeoutMs: number;
}

/** The server's limit on messages in one atomic batch. */
export const MAX_ATOMIC_BATCH = 1000;

/** JetStream error codes of a failed expectation: 10071 (single server), 10164 (replicated, or a subject in flight). */
const WRONG_LAST_SEQUENCE = new Set([10071, 10164]);
/** Codes that say "not now": retry later. 10163 expected-sequence not ready, 10167 too many requests, 10176 abandoned batch. */
const TRANSIENT = new Set([10163, 10167, 10176]);

interface PubAckJson {
  stream?: string;
  seq?: number;
  count?: number;
  error?: { code?: number; err_code?: number; description?: string };
}

function headersOf(m: ExpectedMessage): MsgHdrs {
  const h = headers();
  if (m.expectedLastSubjectSequence !== undefined) h.set('Nats-Expected-Last-Subject-Sequence', String(m.expectedLastSubjectSequence));
  if (m.ttlMs !== undefined) h.set('Nats-TTL', `${Math.max(1, Math.ceil(m.ttlMs / 1000))}s`);
  return h;
}

function requestFailed(e: unknown, subject: string): Result<never> {
  // Timeout, no responders (no stream or no leader yet), connection closed: the message may or may not be stored.
  return err('unavailable', `publish to ${subject}: ${(e as Error).message}`, { subject });
}

/** Reads a JetStream publish acknowledgement: the stored sequence, or the error mapped to our codes. */
function parseAck(data: Uint8Array, subject: string): Result<PubAckJson & { seq: number }> {
  let ack: PubAckJson;
  try {
    ack = data.length === 0 ? {} : (JSON.parse(new TextDecoder().decode(data)) as PubAckJson);
  } catch {
    return err('internal', `publish to ${subject}: the acknowledgement is not JSON`, { subject });
  }
  const e = ack.error;
  if (e !== undefined) {
    const details = { subject, errCode: e.err_code ?? 0, status: e.code ?? 0 };
    const message = `publish to ${subject}: ${e.description ?? 'refused'}`;
    if (WRONG_LAST_SEQUENCE.has(details.errCode)) return err('conflict', message, details);
    if (TRANSIENT.has(details.errCode) || details.status === 503 || details.status === 429) return err('unavailable', message, details);
    return err('internal', message, details);
  }
  if (typeof ack.seq !== 'number' || ack.seq <= 0)
    return err('internal', `publish to ${subject}: acknowledgement without a sequence`, { subject });
  return ok({ ...ack, seq: ack.seq });
}

/** Publishes one message with its expectations; the stored sequence (the KV revision) or conflict / unavailable. */
export async function publishExpected(nc: NatsConnection, message: ExpectedMessage, opts: ExpectedPublishOptions): Promise<Result<number>> {
  let reply;
  try {
    reply = await nc.request(message.subject, message.payload, { headers: headersOf(message), timeout: opts.timeoutMs });
  } catch (e) {
    return requestFailed(e, message.subject);
  }
  const ack = parseAck(reply.data, message.subject);
  return ack.ok ? ok(ack.value.seq) : ack;
}

/**
 * Publishes the messages as one atomic batch: all stored, with consecutive sequences returned in order, or none
 * (`conflict` when an expectation failed). The stream needs `allow_atomic`. The first message is a request (the server
 * acknowledges the batch's start or refuses it), the middle ones are plain publishes, the last carries the commit; all
 * are sent at once, without waiting for the first acknowledgement, so a batch costs one round trip. Messages of one
 * connection reach the server in order, so the commit never overtakes its batch.
 */
export async function publishAtomicBatch(
  nc: NatsConnection,
  messages: readonly ExpectedMessage[],
  opts: ExpectedPublishOptions,
): Promise<Result<number[]>> {
  if (messages.length === 0) return ok([]);
  if (messages.length > MAX_ATOMIC_BATCH)
    return err('invalid_request', `an atomic batch holds at most ${MAX_ATOMIC_BATCH} messages, not ${messages.length}`, {
      count: messages.length,
    });
  const subjects = new Set(messages.map((m) => m.subject));
  if (subjects.size !== messages.length)
    return err(
      'invalid_request',
      'an atomic batch may write each subject once (the server checks expectations against the stream before the batch)',
      { count: messages.length },
    );
  const id = randomUUID();
  const last = messages.length - 1;
  const first = messages[0] as ExpectedMessage;
  const final = messages[last] as ExpectedMessage;
  const hdrs = messages.map((m, i) => {
    const h = headersOf(m);
    h.set('Nats-Batch-Id', id);
    h.set('Nats-Batch-Sequence', String(i + 1));
    if (i === last) h.set('Nats-Batch-Commit', '1');
    return h;
  });
  let started: Promise<Result<void>> = Promise.resolve(ok(undefined));
  if (last > 0) {
    started = nc.request(first.subject, first.payload, { headers: hdrs[0] as MsgHdrs, timeout: opts.timeoutMs }).then(
      (r) => {
        if (r.data.length === 0) return ok(undefined);
        const ack = parseAck(r.data, first.subject);
        return ack.ok ? ok(undefined) : ack;
      },
      (e: unknown) => requestFailed(e, first.subject),
    );
    for (let i = 1; i < last; i++) {
      const m = messages[i] as ExpectedMessage;
      try {
        nc.publish(m.subject, m.payload, { headers: hdrs[i] as MsgHdrs });
      } catch (e) {
        return requestFailed(e, m.subject);
      }
    }
  }
  const committed = nc.request(final.subject, final.payload, { headers: hdrs[last] as MsgHdrs, timeout: opts.timeoutMs }).then(
    (r) => parseAck(r.data, final.subject),
    (e: unknown) => requestFailed(e, final.subject),
  );
  const [start, commit] = await Promise.all([started, committed]);
  // A refused start explains a refused commit better ("not enabled on stream" rather than "batch unknown").
  if (!start.ok && !commit.ok) return start;
  if (!commit.ok) return commit;
  if (commit.value.count !== messages.length)
    return err('internal', `atomic batch ${id}: the server stored ${commit.value.count ?? 0} of ${messages.length} messages`, {
      count: messages.length,
    });
  const lastSeq = commit.value.seq;
  return ok(messages.map((_, i) => lastSeq - last + i));
}
