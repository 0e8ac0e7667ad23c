import { AsyncLocalStorage } from 'node:async_hooks';
import {
  AgentActivateRequestSchema,
  COORDINATOR_QUEUE,
  EmptyRequestSchema,
  decode,
  encode,
  replySchema,
  MAX_REQUEST_BYTES,
  type AgentActivateRequest,
} from '@allot/protocol';
import { err, ok } from '@allot/core';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
  type Context,
  type ContextManager,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, type NatsServerHandle } from '../../../test/harness/index.ts';
import { silentLogger } from './logger.ts';
import { requestTyped } from './request.ts';
import { endpoint, serveService, type ServedService } from './service.ts';

let server: NatsServerHandle;
let nc: NatsConnection;
let service: ServedService;
const request: AgentActivateRequest = { requestId: 'r-1', allocationId: 'a-1' };
const Envelope = replySchema(AgentActivateRequestSchema);

async function rawRequest(subject: string, data: Uint8Array) {
  const reply = await nc.request(subject, data, { timeout: 5_000 });
  return decode(Envelope, reply.data, Number.POSITIVE_INFINITY);
}

beforeAll(async () => {
  // 4 MB so a 2 MB payload reaches the endpoint and its own size check is what refuses it.
  server = await startNatsServer({ jetstream: false, maxPayload: 4 * 1024 * 1024 });
  nc = await connect({ servers: server.url });
  const served = await serveService(nc, {
    name: 'allot-test',
    version: '0.1.0',
    logger: silentLogger,
    endpoints: [
      endpoint({ name: 'echo', subject: 'test.echo', requestSchema: AgentActivateRequestSchema, handler: async (r) => ok(r) }),
      endpoint({
        name: 'refuse',
        subject: 'test.refuse',
        requestSchema: AgentActivateRequestSchema,
        handler: async (r) => err('not_found', `no allocation ${r.allocationId}`, { allocationId: r.allocationId }),
      }),
      endpoint({
        name: 'throws',
        subject: 'test.throws',
        requestSchema: EmptyRequestSchema,
        handler: async () => {
          throw new Error('kaboom');
        },
      }),
      endpoint({
        name: 'throws-sync',
        subject: 'test.throws-sync',
        requestSchema: EmptyRequestSchema,
        handler: (() => {
          throw new Error('sync kaboom');
        }) as never,
      }),
    ],
  });
  if (!served.ok) throw new Error(served.error.message);
  service = served.value;
});

afterAll(async () => {
  await service?.stop();
  await nc?.close();
  await cleanupAll();
});

describe('a served endpoint', () => {
  it('answers a valid request with the envelope of the handler value', async () => {
    expect(await requestTyped(nc, 'test.echo', request, AgentActivateRequestSchema, { timeoutMs: 5_000 })).toEqual({
      ok: true,
      value: request,
    });
  });

  it('passes a handler refusal through with its code and figures', async () => {
    const reply = await requestTyped(nc, 'test.refuse', request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
    expect(reply).toEqual({ ok: false, error: { code: 'not_found', message: 'no allocation a-1', details: { allocationId: 'a-1' } } });
  });

  it('answers garbage bytes with invalid_request and keeps serving', async () => {
    const reply = await rawRequest('test.echo', new Uint8Array([0xc1, 0xff, 0x00]));
    expect(reply.ok && !reply.value.ok && reply.value.error.code).toBe('invalid_request');
    expect(await requestTyped(nc, 'test.echo', request, AgentActivateRequestSchema, { timeoutMs: 5_000 })).toEqual({
      ok: true,
      value: request,
    });
  });

  it('answers a field of the wrong type with invalid_request naming the field', async () => {
    const reply = await rawRequest('test.echo', encode({ requestId: 42, allocationId: 'a-1' }));
    if (!reply.ok || reply.value.ok) throw new Error('expected an error envelope');
    expect(reply.value.error.code).toBe('invalid_request');
    expect(reply.value.error.message).toMatch(/^requestId: /);
  });

  it('refuses a 2 MB payload by its size, before decoding it', async () => {
    const big = new Uint8Array(2 * 1024 * 1024).fill(0xc1); // not msgpack: a decode would say so instead
    const reply = await rawRequest('test.echo', big);
    if (!reply.ok || reply.value.ok) throw new Error('expected an error envelope');
    expect(reply.value.error).toMatchObject({
      code: 'invalid_request',
      details: { field: 'payload', bytes: big.byteLength, maxBytes: MAX_REQUEST_BYTES },
    });
  });

  it('answers internal when the handler rejects or throws, and stays up', async () => {
    for (const subject of ['test.throws', 'test.throws-sync']) {
      const reply = await requestTyped(nc, subject, {}, EmptyRequestSchema, { timeoutMs: 5_000 });
      expect(reply.ok || reply.error.code).toBe('internal');
    }
    expect((await requestTyped(nc, 'test.echo', request, AgentActivateRequestSchema, { timeoutMs: 5_000 })).ok).toBe(true);
  });

  it('counts requests and error replies (by code, in data) per endpoint in $SRV.STATS, and answers $SRV.PING', async () => {
    const served = await serveService(nc, {
      name: 'allot-stats',
      version: '1.0.0',
      logger: silentLogger,
      endpoints: [
        endpoint({ name: 'echo', subject: 'stats.echo', requestSchema: AgentActivateRequestSchema, handler: async (r) => ok(r) }),
      ],
    });
    if (!served.ok) throw new Error(served.error.message);
    await requestTyped(nc, 'stats.echo', request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
    await requestTyped(nc, 'stats.echo', request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
    await requestTyped(nc, 'stats.echo', { requestId: 'bad id with spaces' }, AgentActivateRequestSchema, { timeoutMs: 5_000 });

    const ping = (await nc.request('$SRV.PING.allot-stats', undefined, { timeout: 5_000 })).json<{ name: string; id: string }>();
    expect(ping).toMatchObject({ name: 'allot-stats', id: served.value.id });
    const stats = (await nc.request('$SRV.STATS.allot-stats', undefined, { timeout: 5_000 })).json<{
      endpoints: { name: string; num_requests: number; data: unknown }[];
    }>();
    expect(stats.endpoints).toEqual([
      expect.objectContaining({ name: 'echo', num_requests: 3, data: { errorsByCode: { invalid_request: 1 } } }),
    ]);
    await served.value.stop();
  });

  it('refuses an endpoint name the micro protocol does not allow, naming it', async () => {
    const served = await serveService(nc, {
      name: 'allot-bad',
      version: '1.0.0',
      logger: silentLogger,
      endpoints: [endpoint({ name: 'limits.get', subject: 'x.limits.get', requestSchema: EmptyRequestSchema, handler: async () => ok(1) })],
    });
    expect(served.ok || served.error).toMatchObject({ code: 'invalid_request', details: { field: 'endpoints.0.name' } });
  });
});

describe('a queue group', () => {
  it('hands each request to exactly one of the services in the group', async () => {
    const counts = [0, 0];
    const services = await Promise.all(
      [0, 1].map((i) =>
        serveService(nc, {
          name: 'allot-queued',
          version: '1.0.0',
          queue: COORDINATOR_QUEUE,
          logger: silentLogger,
          endpoints: [
            endpoint({
              name: 'place',
              subject: 'queued.place',
              requestSchema: AgentActivateRequestSchema,
              handler: async (r) => ((counts[i] = (counts[i] ?? 0) + 1), ok(r)),
            }),
          ],
        }),
      ),
    );
    for (let i = 0; i < 20; i++)
      expect((await requestTyped(nc, 'queued.place', request, AgentActivateRequestSchema, { timeoutMs: 5_000 })).ok).toBe(true);
    expect((counts[0] ?? 0) + (counts[1] ?? 0)).toBe(20);
    for (const s of services) if (s.ok) await s.value.stop();
  });
});

describe('stopping a service', () => {
  it('waits for requests in flight to be answered, then stops taking new ones', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const served = await serveService(nc, {
      name: 'allot-slow',
      version: '1.0.0',
      logger: silentLogger,
      endpoints: [
        endpoint({
          name: 'slow',
          subject: 'slow.echo',
          requestSchema: AgentActivateRequestSchema,
          handler: async (r) => {
            entered();
            await gate;
            return ok(r);
          },
        }),
      ],
    });
    if (!served.ok) throw new Error(served.error.message);
    const pending = requestTyped(nc, 'slow.echo', request, AgentActivateRequestSchema, { timeoutMs: 10_000 });
    await inside;
    let stopped = false;
    const stopping = served.value.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    expect(served.value.inFlight()).toBe(1);
    release();
    await stopping;
    expect(await pending).toEqual({ ok: true, value: request });
    const after = await requestTyped(nc, 'slow.echo', request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
    expect(after.ok || after.error.code).toBe('unavailable');
  });
});

describe('requestTyped', () => {
  it('returns timeout when nobody answers in time', async () => {
    const sub = nc.subscribe('silent.subject', { callback: () => {} });
    await nc.flush();
    const reply = await requestTyped(nc, 'silent.subject', request, AgentActivateRequestSchema, { timeoutMs: 200 });
    expect(reply.ok || reply.error).toMatchObject({ code: 'timeout', details: { subject: 'silent.subject', timeoutMs: 200 } });
    sub.unsubscribe();
  });

  it('returns unavailable naming the subject when there are no responders', async () => {
    const reply = await requestTyped(nc, 'nobody.here', request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
    expect(reply.ok || reply.error).toMatchObject({ code: 'unavailable', details: { subject: 'nobody.here' } });
    expect(reply.ok || reply.error.message).toContain('nobody.here');
  });

  it('returns internal when the reply is not an envelope', async () => {
    const sub = nc.subscribe('garbage.reply', { callback: (_e, m) => void m.respond(encode({ hello: 'world' })) });
    await nc.flush();
    const reply = await requestTyped(nc, 'garbage.reply', request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
    expect(reply.ok || reply.error.code).toBe('internal');
    sub.unsubscribe();
  });

  it('returns invalid_request naming the payload when the server would refuse its size', async () => {
    const small = await startNatsServer({ jetstream: false });
    const client = await connect({ servers: small.url });
    const reply = await requestTyped(client, 'test.echo', { blob: 'x'.repeat(2 * 1024 * 1024) }, AgentActivateRequestSchema, {
      timeoutMs: 5_000,
    });
    expect(reply.ok || reply.error).toMatchObject({ code: 'invalid_request', details: { field: 'payload' } });
    await client.close();
  });
});

/**
 * Trace context: @opentelemetry/core is not installed, so the test registers a minimal W3C traceparent propagator and
 * an AsyncLocalStorage context manager (the API alone has only no-op ones), then checks that a span context active in
 * the caller arrives as the parent of the span the endpoint's handler sees.
 */
describe('trace context', () => {
  const w3c: TextMapPropagator = {
    inject(ctx, carrier, setter) {
      const sc = trace.getSpanContext(ctx);
      if (sc) setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`);
    },
    extract(ctx, carrier, getter) {
      const raw = getter.get(carrier, 'traceparent');
      const m = typeof raw === 'string' ? /^00-([0-9a-f]{32})-([0-9a-f]{16})-0([01])$/.exec(raw) : null;
      if (!m) return ctx;
      return trace.setSpanContext(ctx, { traceId: m[1] as string, spanId: m[2] as string, traceFlags: Number(m[3]), isRemote: true });
    },
    fields: () => ['traceparent'],
  };
  class AlsContextManager implements ContextManager {
    readonly als = new AsyncLocalStorage<Context>();
    active = () => this.als.getStore() ?? ROOT_CONTEXT;
    with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
      ctx: Context,
      fn: F,
      thisArg?: ThisParameterType<F>,
      ...args: A
    ): ReturnType<F> {
      return this.als.run(ctx, () => fn.call(thisArg, ...args));
    }
    bind<T>(_ctx: Context, target: T): T {
      return target;
    }
    enable = () => this;
    disable = () => this;
  }

  it('carries the caller span context to the handler through the traceparent header', async () => {
    expect(propagation.setGlobalPropagator(w3c)).toBe(true);
    expect(context.setGlobalContextManager(new AlsContextManager())).toBe(true);
    try {
      const seen: { traceId?: string; header?: string } = {};
      const served = await serveService(nc, {
        name: 'allot-trace',
        version: '1.0.0',
        logger: silentLogger,
        endpoints: [
          endpoint({
            name: 'trace',
            subject: 'trace.echo',
            requestSchema: AgentActivateRequestSchema,
            handler: async (r, ctx) => {
              seen.traceId = ctx.span.spanContext().traceId;
              seen.header = ctx.headers?.get('traceparent');
              return ok(r);
            },
          }),
        ],
      });
      if (!served.ok) throw new Error(served.error.message);
      const caller = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        spanId: '00f067aa0ba902b7',
        traceFlags: TraceFlags.SAMPLED,
      });
      const reply = await context.with(caller, () =>
        requestTyped(nc, 'trace.echo', request, AgentActivateRequestSchema, { timeoutMs: 5_000 }),
      );
      expect(reply.ok).toBe(true);
      expect(seen).toEqual({
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        header: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      });
      await served.value.stop();
    } finally {
      propagation.disable();
      context.disable();
    }
  });
});

describe('JSON and the protocol version on the wire', () => {
  function withHeaders(entries: Record<string, string>) {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(entries)) h.set(k, v);
    return h;
  }

  it('answers a JSON request in JSON (nats req from a shell), with the same validation', async () => {
    const reply = await nc.request('test.echo', new TextEncoder().encode(JSON.stringify(request)), {
      timeout: 5_000,
      headers: withHeaders({ 'Content-Type': 'application/json' }),
    });
    expect(reply.headers?.get('Content-Type')).toBe('application/json');
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toEqual({ ok: true, value: request });
    const bad = await nc.request('test.echo', new TextEncoder().encode('{"requestId": 7'), {
      timeout: 5_000,
      headers: withHeaders({ 'Content-Type': 'application/json' }),
    });
    const refused = JSON.parse(new TextDecoder().decode(bad.data)) as { ok: boolean; error: { code: string; message: string } };
    expect(refused).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(refused.error.message).toMatch(/not valid JSON/);
    const deep = JSON.stringify(Array.from({ length: 100 }).reduce<unknown>((inner) => ({ inner }), {}));
    const tooDeep = await nc.request('test.echo', new TextEncoder().encode(deep), {
      timeout: 5_000,
      headers: withHeaders({ 'Content-Type': 'application/json' }),
    });
    expect(new TextDecoder().decode(tooDeep.data)).toMatch(/nested deeper than 64 levels/);
  });

  it('serves peers one protocol version apart and refuses further ones with a typed error naming both', async () => {
    for (const version of ['1', '2']) {
      const reply = await nc.request('test.echo', encode(request), { timeout: 5_000, headers: withHeaders({ 'Allot-Protocol': version }) });
      expect(decode(Envelope, reply.data, Number.POSITIVE_INFINITY)).toEqual({ ok: true, value: { ok: true, value: request } });
      expect(reply.headers?.get('Allot-Protocol')).toBe('1');
    }
    const far = await nc.request('test.echo', encode(request), { timeout: 5_000, headers: withHeaders({ 'Allot-Protocol': '3' }) });
    const envelope = decode(Envelope, far.data, Number.POSITIVE_INFINITY);
    expect(envelope.ok && envelope.value).toMatchObject({
      ok: false,
      error: { code: 'invalid_request', details: { reason: 'protocol_version', theirs: '3', ours: 1 } },
    });
  });

  it('requestTyped sends its version, and refuses a reply from a peer too far apart instead of misreading it', async () => {
    let seen: string | undefined;
    const sub = nc.subscribe('test.far-peer');
    void (async () => {
      for await (const m of sub) {
        seen = m.headers?.get('Allot-Protocol');
        m.respond(encode({ ok: true, value: request }), { headers: withHeaders({ 'Allot-Protocol': '5' }) });
      }
    })();
    const result = await requestTyped(nc, 'test.far-peer', request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
    sub.unsubscribe();
    expect(seen).toBe('1');
    expect(result).toMatchObject({ ok: false, error: { code: 'invalid_request', details: { reason: 'protocol_version', theirs: '5' } } });
  });
});

describe('a service once served', () => {
  it('answers a client on another connection at once: serveService returns after the server knows its subscriptions', async () => {
    // A process logs "ready" when serveService returns; a scheduler on its own connection may ask right then.
    const client = await connect({ servers: server.url });
    try {
      for (let i = 0; i < 20; i += 1) {
        const provider = await connect({ servers: server.url });
        const served = await serveService(provider, {
          name: 'allot-ready',
          version: '0.1.0',
          logger: silentLogger,
          endpoints: [
            endpoint({ name: 'echo', subject: `test.ready.${i}`, requestSchema: AgentActivateRequestSchema, handler: async (r) => ok(r) }),
          ],
        });
        if (!served.ok) throw new Error(served.error.message);
        const reply = await requestTyped(client, `test.ready.${i}`, request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
        await served.value.stop();
        await provider.close();
        expect(reply, `round ${i}`).toEqual({ ok: true, value: request });
      }
    } finally {
      await client.close();
    }
  });
});
