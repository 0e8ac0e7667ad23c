// What tracing costs on the request path: one serveService + requestTyped round trip over a local nats-server, with
// no OpenTelemetry SDK registered (what runs when ALLOT_TRACE_FILE is unset), then with tracing on (JSON-lines span
// file): a client outside any trace (the server starts a root span per request), and a client inside a span (client
// span + traceparent + server span, two lines written per request). Client and server share this process, so the
// per-request figure from the pipelined run is the CPU of both sides. No-SDK runs first: once a tracer provider is
// registered, the tracer inside serveService keeps it. Prints; never asserts.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentActivateRequestSchema } from '@allot/protocol';
import { ok } from '@allot/core';
import { endpoint, requestTyped, serveService, silentLogger } from '@allot/nats';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { inFlight, quantile } from '../../../test/harness/bench.ts';
import { cleanupAll, startNatsServer } from '../../../test/harness/index.ts';
import { startTracing } from '../src/tracing.ts';

const SEQUENTIAL = 4_000;
const PIPELINED = 20_000;
const WINDOW = 64;
const request = { requestId: 'bench-request-0001', allocationId: 'alloc-0001' };

async function measure(label: string, once: () => Promise<unknown>): Promise<{ p50Us: number; perRequestUs: number }> {
  for (let i = 0; i < 1_000; i++) await once(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t0 = performance.now();
    await once();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  const p50Us = quantile(samples, 0.5) * 1000;
  const { ms } = await inFlight(PIPELINED, WINDOW, once);
  const perRequestUs = (ms * 1000) / PIPELINED;
  console.log(
    `${label}: sequential p50 ${p50Us.toFixed(0)} µs; pipelined ${perRequestUs.toFixed(1)} µs/request (${Math.round(1e6 / perRequestUs)} req/s, ${WINDOW} in flight)`,
  );
  return { p50Us, perRequestUs };
}

/** The @opentelemetry/api calls one request makes with no SDK (extract, server span, context, inject, end), alone. */
function apiCallsWithoutSdk(): number {
  const tracer = trace.getTracer('allot');
  const getter = { keys: () => [], get: () => undefined };
  const setter = { set: () => undefined };
  const N = 1_000_000;
  let sink = 0;
  const once = () => {
    const parent = propagation.extract(context.active(), undefined, getter);
    const span = tracer.startSpan('echo', { kind: SpanKind.SERVER, attributes: { 'messaging.destination.name': 'bench.typed' } }, parent);
    const ctx = trace.setSpan(parent, span);
    context.with(ctx, () => {
      const active = trace.getSpan(context.active());
      if (active?.isRecording() === true) sink += 1;
      propagation.inject(context.active(), {}, setter);
    });
    span.end();
  };
  for (let i = 0; i < 100_000; i++) once();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) once();
  const ns = ((performance.now() - t0) * 1e6) / N;
  console.log(`OpenTelemetry API calls of one request, no SDK: ${ns.toFixed(0)} ns (${N} in a loop)${sink > 0 ? ' (recording?)' : ''}`);
  return ns;
}

async function main(): Promise<void> {
  apiCallsWithoutSdk();
  const server = await startNatsServer({ jetstream: false });
  const serverSide: NatsConnection = await connect({ servers: server.url });
  const client: NatsConnection = await connect({ servers: server.url });
  const served = await serveService(serverSide, {
    name: 'allot-bench',
    version: '0.1.0',
    logger: silentLogger,
    endpoints: [endpoint({ name: 'echo', subject: 'bench.typed', requestSchema: AgentActivateRequestSchema, handler: async (r) => ok(r) })],
  });
  if (!served.ok) throw new Error(served.error.message);
  await serverSide.flush();
  const typed = async () => {
    const r = await requestTyped(client, 'bench.typed', request, AgentActivateRequestSchema, { timeoutMs: 5_000 });
    if (!r.ok) throw new Error(r.error.message);
  };

  const off = await measure('no SDK (ALLOT_TRACE_FILE unset)', typed);

  const dir = mkdtempSync(join(tmpdir(), 'allot-trace-bench-'));
  const file = join(dir, 'spans.jsonl');
  const tracing = await startTracing({ service: 'bench', file });
  const tracer = trace.getTracer('bench');
  const root = await measure('tracing on, client outside a trace (1 server span/request)', typed);
  const traced = await measure('tracing on, client inside a span (client + server span/request)', () =>
    tracer.startActiveSpan('client op', (span) => typed().finally(() => span.end())),
  );
  console.log(`span file: ${(statSync(file).size / 2 ** 20).toFixed(1)} MiB`);
  console.log(
    `tracing cost per request: +${(root.perRequestUs - off.perRequestUs).toFixed(1)} µs (server span), +${(traced.perRequestUs - off.perRequestUs).toFixed(1)} µs (full trace); p50 latency ${off.p50Us.toFixed(0)} -> ${root.p50Us.toFixed(0)} / ${traced.p50Us.toFixed(0)} µs`,
  );

  await tracing.shutdown();
  rmSync(dir, { recursive: true, force: true });
  await served.value.stop();
  await client.close();
  await serverSide.close();
  await cleanupAll();
}

await main();
