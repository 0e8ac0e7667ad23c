import { decode, encode, PROTOCOL_HEADER, PROTOCOL_VERSION, protocolVersionProblem, replySchema } from '@allot/protocol';
import { err, errorOf, type Result } from '@allot/core';
import { headers as natsHeaders, NoRespondersError, RequestError, TimeoutError, type NatsConnection } from '@nats-io/transport-node';
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { Output, Schema } from './schema.ts';
import { injectTraceContext, type LazyHeaders } from './trace.ts';

export type RequestTypedOptions = {
  timeoutMs: number;
  /** Extra headers (Allot-Request-Id...); trace context is added by itself. */
  headers?: Record<string, string>;
};

// replySchema() builds a new zod schema; building it per request would cost more than the decode.
const envelopes = new WeakMap<Schema, Schema>();
const tracer = trace.getTracer('allot');
function envelopeOf(valueSchema: Schema): Schema {
  let envelope = envelopes.get(valueSchema);
  if (!envelope) {
    envelope = replySchema(valueSchema);
    envelopes.set(valueSchema, envelope);
  }
  return envelope;
}

/**
 * Sends a msgpack request and returns the reply envelope as a Result. Never throws: no answer in time is `timeout`
 * (the outcome is unknown; retry with the same request id), nobody listening is `unavailable` naming the subject, a
 * reply that is not a valid envelope is `internal`.
 */
export async function requestTyped<S extends Schema>(
  nc: NatsConnection,
  subject: string,
  payload: unknown,
  valueSchema: S,
  opts: RequestTypedOptions,
): Promise<Result<Output<S>>> {
  let data: Uint8Array;
  try {
    data = encode(payload);
  } catch (e) {
    return err('invalid_request', `payload: cannot be encoded: ${(e as Error).message}`, { field: 'payload' });
  }
  const carrier: LazyHeaders = { headers: natsHeaders() };
  carrier.headers?.set(PROTOCOL_HEADER, String(PROTOCOL_VERSION));
  for (const [k, v] of Object.entries(opts.headers ?? {})) carrier.headers?.set(k, v);
  // A client span only inside a recorded trace (a span is active): with no SDK there never is one, and nothing is made.
  const active = context.active();
  const parent = trace.getSpan(active);
  let span: Span | undefined;
  if (parent !== undefined && parent.isRecording()) {
    span = tracer.startSpan(
      `request ${subject}`,
      { kind: SpanKind.CLIENT, attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject } },
      active,
    );
    injectTraceContext(carrier, trace.setSpan(active, span));
  } else injectTraceContext(carrier, active);

  let reply;
  try {
    reply = await nc.request(
      subject,
      data,
      carrier.headers ? { timeout: opts.timeoutMs, headers: carrier.headers } : { timeout: opts.timeoutMs },
    );
  } catch (e) {
    return ended(span, { ok: false, error: requestFailure(e, subject, opts.timeoutMs, data.byteLength, nc) });
  }
  const theirs = reply.headers?.get(PROTOCOL_HEADER);
  const incompatible = protocolVersionProblem(theirs);
  if (incompatible !== undefined)
    return ended(
      span,
      err('invalid_request', `${subject} answered in ${incompatible}`, {
        subject,
        reason: 'protocol_version',
        theirs: theirs ?? '',
        ours: PROTOCOL_VERSION,
      }),
    );
  const envelope = decode(envelopeOf(valueSchema), reply.data, Number.POSITIVE_INFINITY);
  if (!envelope.ok) {
    const serviceError = reply.headers?.get('Nats-Service-Error');
    const why = serviceError ? `service error ${serviceError}` : envelope.error.message;
    return ended(span, err('internal', `malformed reply from ${subject}: ${why}`, { subject }));
  }
  return ended(span, envelope.value as Result<Output<S>>);
}

/** Ends the client span (if any) with the reply's outcome, and passes the reply on. */
function ended<T>(span: Span | undefined, result: Result<T>): Result<T> {
  if (span !== undefined) {
    if (!result.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: result.error.code });
    span.end();
  }
  return result;
}

function requestFailure(e: unknown, subject: string, timeoutMs: number, bytes: number, nc: NatsConnection) {
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : undefined;
  if (e instanceof TimeoutError || cause instanceof TimeoutError) {
    return errorOf('timeout', `no reply from ${subject} within ${timeoutMs} ms`, { subject, timeoutMs });
  }
  if (e instanceof NoRespondersError || cause instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) {
    return errorOf('unavailable', `no responders on ${subject}`, { subject });
  }
  const message = e instanceof Error ? e.message : String(e);
  const maxPayload = nc.info?.max_payload;
  if (maxPayload !== undefined && bytes > maxPayload) {
    return errorOf('invalid_request', `payload: ${bytes} bytes, more than the server's max_payload ${maxPayload}`, {
      field: 'payload',
      bytes,
      maxPayload,
    });
  }
  // Closed, draining or disconnected connections: try later or elsewhere.
  return errorOf('unavailable', `request to ${subject} failed: ${message}`, { subject });
}
