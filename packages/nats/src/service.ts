import {
  CONTENT_TYPE_HEADER,
  decode,
  decodeJsonWith,
  decodeWith,
  encode,
  encodeJson,
  JSON_CONTENT_TYPE,
  MAX_REQUEST_BYTES,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  protocolVersionProblem,
} from '@allot/protocol';
import { err, errorOf, ok, toAllotError, validate, type AllotError, type ErrorCode, type Result } from '@allot/core';
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { Svcm, type Service } from '@nats-io/services';
import { context, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { NatsLogger } from './logger.ts';
import type { Output, Schema } from './schema.ts';
import { extractTraceContext } from './trace.ts';

const tracer = trace.getTracer('allot');

/** What a handler gets besides its validated request. */
export type RequestContext = {
  /** The subject the request came in on (agents serve per-node subjects). */
  subject: string;
  /** The request's headers, if any (Allot-Request-Id, traceparent...). */
  headers: MsgHdrs | undefined;
  /** The span of this request (a non-recording one when no OpenTelemetry SDK is configured). */
  span: Span;
  /** The context carrying that span: pass it on to work done for this request. */
  traceContext: Context;
};

/** One request/reply endpoint: the framework decodes and validates, the handler decides. */
export type EndpointSpec<S extends Schema = Schema> = {
  /** Endpoint name in $SRV.INFO/STATS: letters, digits, `-` and `_` only. */
  name: string;
  subject: string;
  requestSchema: S;
  handler: (request: Output<S>, ctx: RequestContext) => Promise<Result<unknown>>;
  /** Largest accepted payload; default MAX_REQUEST_BYTES. */
  maxRequestBytes?: number;
  /** A validator to use instead of requestSchema on the hot path; it must accept and refuse exactly what the schema does. */
  parse?: (raw: unknown) => Result<Output<S>>;
};

/** Lets an array of endpoints with different schemas be typed one by one. */
export function endpoint<S extends Schema>(spec: EndpointSpec<S>): EndpointSpec {
  return spec as unknown as EndpointSpec;
}

export type ServiceSpec = {
  name: string;
  /** Semver, as the micro protocol requires. */
  version: string;
  description?: string;
  metadata?: Record<string, string>;
  /** Queue group (coordinators: COORDINATOR_QUEUE). Absent: no queue group, every subscriber gets every request. */
  queue?: string;
  endpoints: EndpointSpec[];
  logger: NatsLogger;
};

/** A running service. */
export type ServedService = {
  readonly id: string;
  /** Requests being handled right now. */
  inFlight(): number;
  /** Stops taking requests (drains the subscriptions), then waits until every request in flight has been answered. */
  stop(): Promise<void>;
};

/** The micro protocol's error code header values, after HTTP; clients read the envelope, tools read these. */
const SERVICE_ERROR_STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  quota_exceeded: 403,
  not_found: 404,
  conflict: 409,
  insufficient_capacity: 422,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  timeout: 504,
};

function isSpecValid(spec: ServiceSpec): Result<void> {
  const names = new Set<string>();
  for (const [i, e] of spec.endpoints.entries()) {
    if (!/^[-\w]+$/.test(e.name))
      return err('invalid_request', `endpoints.${i}.name: "${e.name}" may only hold letters, digits, - and _`, {
        field: `endpoints.${i}.name`,
      });
    if (names.has(e.name))
      return err('invalid_request', `endpoints.${i}.name: "${e.name}" is used twice`, { field: `endpoints.${i}.name` });
    names.add(e.name);
  }
  return ok(undefined);
}

/**
 * Serves typed endpoints as a NATS micro service ($SRV.PING/INFO/STATS work). Every request with a reply subject gets
 * exactly one reply, an envelope `{ ok: true, value }` or `{ ok: false, error }`: oversized or malformed payloads get
 * invalid_request (checked before decoding), a throwing handler gets internal, and nothing a client sends can crash
 * the process.
 */
export async function serveService(nc: NatsConnection, spec: ServiceSpec): Promise<Result<ServedService>> {
  const valid = isSpecValid(spec);
  if (!valid.ok) return valid;
  const errorsBySubject = new Map<string, Partial<Record<ErrorCode, number>>>();
  let service: Service;
  try {
    service = await new Svcm(nc).add({
      name: spec.name,
      version: spec.version,
      description: spec.description ?? '',
      metadata: spec.metadata ?? {},
      // The library defaults to queue "q"; an empty string means no queue group.
      queue: spec.queue ?? '',
      // The library's num_errors counts only handlers that throw synchronously, which an async one never does: error
      // replies are counted here, in each endpoint's `data`, through the public stats hook.
      statsHandler: (ep) => Promise.resolve({ errorsByCode: errorsBySubject.get(ep.subject) ?? {} }),
    });
  } catch (e) {
    return err('invalid_request', `service ${spec.name}: ${(e as Error).message}`, { field: 'name' });
  }

  let inFlight = 0;
  let idle: (() => void) | undefined;
  const finished = () => {
    inFlight -= 1;
    if (inFlight === 0 && idle) idle();
  };

  for (const ep of spec.endpoints) {
    const byCode: Partial<Record<ErrorCode, number>> = {};
    errorsBySubject.set(ep.subject, byCode);
    const onError = (error: AllotError) => {
      byCode[error.code] = (byCode[error.code] ?? 0) + 1;
    };
    try {
      service.addEndpoint(ep.name, {
        subject: ep.subject,
        metadata: {
          request: 'msgpack, or JSON with Content-Type: application/json',
          reply: "envelope {ok,value}|{ok,error}, in the request's encoding",
          protocol: String(PROTOCOL_VERSION),
        },
        handler: (subErr, msg) => {
          if (subErr) {
            spec.logger.error({ err: subErr, endpoint: ep.name }, 'endpoint subscription failed');
            return;
          }
          // A request nobody waits for changes nothing here: the handlers are request/reply only.
          if (!msg.reply) return;
          inFlight += 1;
          void handleRequest(ep, msg, spec.logger, onError).finally(finished);
        },
      });
    } catch (e) {
      await service.stop();
      return err('invalid_request', `endpoint ${ep.name}: ${(e as Error).message}`, { field: 'endpoints' });
    }
  }
  // The endpoints' subscriptions are only buffered so far: a round trip makes the server hold them, so a process that
  // says it is ready once this returns answers a client on another connection instead of leaving it "no responders".
  try {
    await nc.flush();
  } catch (e) {
    await service.stop();
    return err('unavailable', `service ${spec.name}: subscriptions not confirmed by the server: ${(e as Error).message}`);
  }

  return ok({
    id: service.info().id,
    inFlight: () => inFlight,
    stop: async () => {
      await service.stop();
      if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
    },
  });
}

async function handleRequest(ep: EndpointSpec, msg: Msg, logger: NatsLogger, onError: (error: AllotError) => void): Promise<void> {
  const traceContext = extractTraceContext(msg.headers);
  const span = tracer.startSpan(
    ep.name,
    { kind: SpanKind.SERVER, attributes: { 'messaging.destination.name': msg.subject } },
    traceContext,
  );
  const spanContext = trace.setSpan(traceContext, span);
  let result: Result<unknown>;
  try {
    result = await context.with(spanContext, () =>
      answer(ep, msg, { subject: msg.subject, headers: msg.headers, span, traceContext: spanContext }, logger),
    );
  } catch (e) {
    // answer() catches the handler's throws; reaching here is a bug in this file, still answered.
    logger.error({ err: e, endpoint: ep.name }, 'request handling failed');
    result = { ok: false, error: toAllotError(e) };
  }
  if (!result.ok) {
    onError(result.error);
    if (span.isRecording()) span.setStatus({ code: SpanStatusCode.ERROR, message: result.error.code });
  }
  reply(msg, result, logger, ep.name, isJson(msg));
  span.end();
}

function isJson(msg: Msg): boolean {
  return msg.headers?.get(CONTENT_TYPE_HEADER) === JSON_CONTENT_TYPE;
}

async function answer(ep: EndpointSpec, msg: Msg, ctx: RequestContext, logger: NatsLogger): Promise<Result<unknown>> {
  const maxBytes = ep.maxRequestBytes ?? MAX_REQUEST_BYTES;
  // Size first: a huge payload is refused without spending time decoding it.
  if (msg.data.byteLength > maxBytes) {
    return err('invalid_request', `payload: ${msg.data.byteLength} bytes, more than the ${maxBytes} allowed`, {
      field: 'payload',
      bytes: msg.data.byteLength,
      maxBytes,
    });
  }
  const theirs = msg.headers?.get(PROTOCOL_HEADER);
  const incompatible = protocolVersionProblem(theirs);
  if (incompatible !== undefined)
    return err('invalid_request', incompatible, { reason: 'protocol_version', theirs: theirs ?? '', ours: PROTOCOL_VERSION });
  const parse = ep.parse ?? ((raw: unknown) => validate(ep.requestSchema, raw));
  const request = isJson(msg)
    ? decodeJsonWith(parse, msg.data, maxBytes)
    : ep.parse === undefined
      ? decode(ep.requestSchema, msg.data, maxBytes)
      : decodeWith(ep.parse, msg.data, maxBytes);
  if (!request.ok) return request;
  try {
    return await ep.handler(request.value, ctx);
  } catch (e) {
    logger.error({ err: e, endpoint: ep.name, subject: msg.subject }, 'handler threw');
    return { ok: false, error: errorOf('internal', `handler ${ep.name} failed: ${toAllotError(e).message}`) };
  }
}

function reply(msg: Msg, result: Result<unknown>, logger: NatsLogger, endpointName: string, json: boolean): void {
  const encodeReply = json ? encodeJson : encode;
  let payload: Uint8Array;
  try {
    payload = encodeReply(result);
  } catch (e) {
    logger.error({ err: e, endpoint: endpointName }, 'reply could not be encoded');
    result = { ok: false, error: errorOf('internal', `reply of ${endpointName} could not be encoded`) };
    payload = encodeReply(result);
  }
  try {
    const h = natsHeaders();
    h.set(PROTOCOL_HEADER, String(PROTOCOL_VERSION));
    if (json) h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
    if (result.ok) {
      msg.respond(payload, { headers: h });
      return;
    }
    h.set('Nats-Service-Error', result.error.code);
    h.set('Nats-Service-Error-Code', String(SERVICE_ERROR_STATUS[result.error.code]));
    msg.respond(payload, { headers: h });
  } catch (e) {
    // Typically a reply larger than the server's max_payload: say so in a small reply instead.
    logger.error({ err: e, endpoint: endpointName, bytes: payload.byteLength }, 'reply could not be sent');
    try {
      msg.respond(encode({ ok: false, error: errorOf('internal', `reply of ${endpointName} could not be sent: ${(e as Error).message}`) }));
    } catch {
      // The connection is gone; the caller times out and retries with the same request id.
    }
  }
}
