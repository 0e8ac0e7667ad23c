import { encode, PROTOCOL_HEADER, PROTOCOL_VERSION } from '@allot/protocol';
import { err, ok, type Result } from '@allot/core';
import { createInbox, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { DurableAck } from './publish.ts';

/** A JetStream publish ack as the server sends it (JSON), or its error. */
type PubAckJson = { stream?: string; seq?: number; duplicate?: boolean; error?: { code?: number; description?: string } };

type Pending = { resolve: (r: Result<DurableAck>) => void; subject: string; deadline: number };

/**
 * JetStream publishing with many acks outstanding, for a high-rate stream of small messages (the agent's audit events).
 *
 * Written by hand because nats.js v3 has no asynchronous JetStream publish: `js.publish` is a request per message,
 * and each one builds its own reply mux entry, timer and, on completion, an Error object for "cancelled" — about a
 * fifth of a busy agent's CPU in our profiles. Here every message is a plain publish with a reply subject under one
 * inbox this publisher subscribes to once (the server sends the PubAck there, as for any JetStream publish), pending
 * acks are found by their token, and one sweep timer fails those whose deadline passed. Ordering is the connection's:
 * messages reach the stream in the order they were published.
 */
export class AsyncJetStreamPublisher {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #sub: Subscription;
  readonly #pending = new Map<string, Pending>();
  readonly #timeoutMs: number;
  #next = 0;
  #sweep: ReturnType<typeof setInterval> | undefined;

  constructor(nc: NatsConnection, options: { timeoutMs?: number } = {}) {
    this.#nc = nc;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    // The connection's own inbox prefix: a secured identity may subscribe only to `_INBOX_<its key>.>` (as nats.js's
    // request mux and JetStream consumers do; the option is not on the public interface).
    this.#prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
    this.#sub = nc.subscribe(`${this.#prefix}*`, { callback: (e, msg) => (e ? undefined : this.#onAck(msg)) });
  }

  /** Publishes and resolves when the stream stored it (or refused it, or the deadline passed). Never throws. */
  publish(subject: string, payload: unknown, msgId?: string): Promise<Result<DurableAck>> {
    let data: Uint8Array;
    try {
      data = encode(payload);
    } catch (e) {
      return Promise.resolve(err('invalid_request', `payload: cannot be encoded: ${(e as Error).message}`, { field: 'payload' }));
    }
    const token = (this.#next++).toString(36);
    const reply = this.#prefix + token;
    return new Promise((resolve) => {
      this.#pending.set(token, { resolve, subject, deadline: Date.now() + this.#timeoutMs });
      this.#ensureSweep();
      try {
        const h = natsHeaders();
        h.set(PROTOCOL_HEADER, String(PROTOCOL_VERSION));
        if (msgId !== undefined) h.set('Nats-Msg-Id', msgId);
        this.#nc.publish(subject, data, { reply, headers: h });
      } catch (e) {
        this.#pending.delete(token);
        resolve(err('unavailable', `publish to ${subject} failed: ${(e as Error).message}`, { subject }));
      }
    });
  }

  get pending(): number {
    return this.#pending.size;
  }

  #onAck(msg: Msg): void {
    const token = msg.subject.slice(this.#prefix.length);
    const waiting = this.#pending.get(token);
    if (waiting === undefined) return; // already timed out
    this.#pending.delete(token);
    // A 503 status with no body: no stream listens on the subject.
    if (msg.headers?.hasError && msg.headers.code === 503) {
      waiting.resolve(err('unavailable', `no stream takes ${waiting.subject}`, { subject: waiting.subject }));
      return;
    }
    let ack: PubAckJson;
    try {
      ack = JSON.parse(new TextDecoder().decode(msg.data)) as PubAckJson;
    } catch {
      waiting.resolve(err('internal', `unreadable JetStream ack for ${waiting.subject}`, { subject: waiting.subject }));
      return;
    }
    if (ack.error !== undefined || ack.stream === undefined || ack.seq === undefined) {
      waiting.resolve(
        err('unavailable', `JetStream refused ${waiting.subject}: ${ack.error?.description ?? 'no ack'}`, {
          subject: waiting.subject,
          code: ack.error?.code,
        }),
      );
      return;
    }
    waiting.resolve(ok({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true }));
  }

  #ensureSweep(): void {
    if (this.#sweep !== undefined) return;
    this.#sweep = setInterval(
      () => {
        const now = Date.now();
        for (const [token, p] of this.#pending) {
          if (p.deadline > now) continue;
          this.#pending.delete(token);
          p.resolve(
            err('timeout', `no ack from JetStream for ${p.subject} within ${this.#timeoutMs} ms`, {
              subject: p.subject,
              timeoutMs: this.#timeoutMs,
            }),
          );
        }
        if (this.#pending.size === 0 && this.#sweep !== undefined) {
          clearInterval(this.#sweep);
          this.#sweep = undefined;
        }
      },
      Math.min(1_000, this.#timeoutMs),
    );
    this.#sweep.unref();
  }

  /** Fails whatever waits and stops listening for acks. */
  close(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
    for (const [, p] of this.#pending)
      p.resolve(err('unavailable', `publisher closed before ${p.subject} was acknowledged`, { subject: p.subject }));
    this.#pending.clear();
    this.#sub.unsubscribe();
  }
}
