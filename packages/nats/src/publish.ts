import { encode, PROTOCOL_HEADER, PROTOCOL_VERSION } from '@allot/protocol';
import { err, ok, type Result } from '@allot/core';
import type { JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders, NoRespondersError, TimeoutError } from '@nats-io/transport-node';

export type PublishDurableOptions = {
  /** JetStream dedupe id (Nats-Msg-Id): a retry with the same id within the stream's duplicate window is stored once. */
  msgId?: string;
  /** How long to wait for the stream's ack; default 5 s. */
  timeoutMs?: number;
};

/** Where the stream stored the message. duplicate: it was already stored under that msgId. */
export type DurableAck = { stream: string; seq: number; duplicate: boolean };

/** Publishes msgpack to a JetStream stream and waits for the ack: stored (on a quorum of replicas) or an error. */
export async function publishDurable(
  js: JetStreamClient,
  subject: string,
  payload: unknown,
  opts: PublishDurableOptions = {},
): Promise<Result<DurableAck>> {
  let data: Uint8Array;
  try {
    data = encode(payload);
  } catch (e) {
    return err('invalid_request', `payload: cannot be encoded: ${(e as Error).message}`, { field: 'payload' });
  }
  const timeoutMs = opts.timeoutMs ?? 5_000;
  try {
    // Every stored message says which protocol wrote it, so a reader further than one version away drops it by name.
    const headers = natsHeaders();
    headers.set(PROTOCOL_HEADER, String(PROTOCOL_VERSION));
    const ack = await js.publish(
      subject,
      data,
      opts.msgId === undefined ? { timeout: timeoutMs, headers } : { timeout: timeoutMs, msgID: opts.msgId, headers },
    );
    return ok({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate });
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause : undefined;
    if (e instanceof TimeoutError || cause instanceof TimeoutError)
      return err('timeout', `no ack from JetStream for ${subject} within ${timeoutMs} ms`, { subject, timeoutMs });
    if (e instanceof NoRespondersError || cause instanceof NoRespondersError)
      return err('unavailable', `no stream takes ${subject}`, { subject });
    return err('unavailable', `publish to ${subject} failed: ${(e as Error).message}`, { subject });
  }
}
