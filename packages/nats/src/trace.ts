import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { context, propagation, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';

/** Reads W3C trace context (traceparent, tracestate) from NATS headers for `propagation.extract`. */
export const natsHeadersGetter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier ? carrier.keys() : []),
  get: (carrier, key) => (carrier?.has(key) ? carrier.get(key) : undefined),
};

/**
 * A carrier that creates the headers only when the propagator writes one: with no propagator registered (no SDK),
 * nothing is allocated and the message goes out without a header block.
 */
export type LazyHeaders = { headers: MsgHdrs | undefined };

export const lazyHeadersSetter: TextMapSetter<LazyHeaders> = {
  set: (carrier, key, value) => {
    carrier.headers ??= natsHeaders();
    carrier.headers.set(key, value);
  },
};

/** The active context's trace context written into `carrier` (headers created on demand). */
export function injectTraceContext(carrier: LazyHeaders, ctx: Context = context.active()): void {
  propagation.inject(ctx, carrier, lazyHeadersSetter);
}

/** The context carried by a message's headers (the active context when there are none). */
export function extractTraceContext(headers: MsgHdrs | undefined): Context {
  return propagation.extract(context.active(), headers, natsHeadersGetter);
}
