import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, propagation, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonLinesSpanExporter } from './tracing-sdk.ts';
import type { SpanLine } from './span-line.ts';
import { startTracing, withRootSpan, type StartedTracing } from './tracing.ts';

let started: StartedTracing | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await started?.shutdown();
  started = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'allot-trace-'));
  dirs.push(dir);
  return join(dir, 'spans.jsonl');
}

const readLines = (file: string): SpanLine[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as SpanLine);

describe('startTracing without a span file', () => {
  it('registers nothing: no provider, no propagator, spans do not record', async () => {
    started = await startTracing({ service: 'test', env: {} });
    expect(started.enabled).toBe(false);
    const provider = trace.getTracerProvider();
    expect(provider).toBeInstanceOf(ProxyTracerProvider);
    // The proxy's delegate is the no-op provider until someone registers one.
    expect((provider as ProxyTracerProvider).getDelegate().constructor.name).toBe('NoopTracerProvider');
    expect(propagation.fields()).toEqual([]);
    const span = trace.getTracer('allot').startSpan('x');
    expect(span.isRecording()).toBe(false);
    span.end();
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    expect(carrier).toEqual({});
    // And the context does not follow async calls (no context manager).
    const seen = await withRootSpan('root', {}, async () => {
      await new Promise((r) => setTimeout(r, 1));
      return context.active();
    });
    expect(seen).toBe(ROOT_CONTEXT);
  });

  it('reads ALLOT_TRACE_FILE from the environment it is given', async () => {
    const file = tempFile();
    started = await startTracing({ service: 'test', env: { ALLOT_TRACE_FILE: file } });
    expect(started.enabled).toBe(true);
    expect(started.file).toBe(file);
  });
});

describe('the JSON-lines span file', () => {
  it('writes one line per finished span with trace, parent, kind, status and the service', async () => {
    const file = tempFile();
    started = await startTracing({ service: 'allot-test', file });
    const tracer = trace.getTracer('allot');
    let traceparent = '';
    await withRootSpan('allot place', { 'allot.cmd': 'place' }, async () => {
      // The active context survives an await: the AsyncLocalStorage context manager is in place.
      await new Promise((r) => setTimeout(r, 1));
      const client = tracer.startSpan('request', { kind: SpanKind.CLIENT });
      const carrier: Record<string, string> = {};
      propagation.inject(trace.setSpan(context.active(), client), carrier);
      traceparent = carrier.traceparent ?? '';
      const remote = propagation.extract(ROOT_CONTEXT, carrier);
      const server = tracer.startSpan('place', { kind: SpanKind.SERVER }, remote);
      server.setStatus({ code: 2, message: 'insufficient_capacity' });
      server.end();
      client.end();
    });
    await started.shutdown();
    started = undefined;

    const lines = readLines(file);
    expect(lines.map((l) => l.name)).toEqual(['place', 'request', 'allot place']);
    const [server, client, root] = lines as [SpanLine, SpanLine, SpanLine];
    expect(new Set(lines.map((l) => l.traceId)).size).toBe(1);
    expect(traceparent).toBe(`00-${root.traceId}-${client.spanId}-01`);
    expect(root.parentSpanId).toBeUndefined();
    expect(root.kind).toBe('internal');
    expect(root.attributes).toEqual({ 'allot.cmd': 'place' });
    expect(client.parentSpanId).toBe(root.spanId);
    expect(client.kind).toBe('client');
    expect(server.parentSpanId).toBe(client.spanId);
    expect(server).toMatchObject({ kind: 'server', status: 'error', statusMessage: 'insufficient_capacity', service: 'allot-test' });
    for (const l of lines) {
      expect(l.durationUs).toBeGreaterThanOrEqual(0);
      expect(l.startUs).toBeGreaterThan(1.6e15);
    }
  });

  it('leaves nothing registered after shutdown', async () => {
    const file = tempFile();
    started = await startTracing({ service: 'x', file });
    await started.shutdown();
    started = undefined;
    expect(trace.getTracer('allot').startSpan('after').isRecording()).toBe(false);
    expect(propagation.fields()).toEqual([]);
  });
});

describe('the span file', () => {
  const modeOf = (file: string) => (statSync(file).mode & 0o777).toString(8);

  it('is created 0600 whatever the umask, and an existing one readable by others is tightened', async () => {
    const fresh = tempFile();
    const before = process.umask(0);
    try {
      await new JsonLinesSpanExporter(fresh, 'test').shutdown();
    } finally {
      process.umask(before);
    }
    expect(modeOf(fresh)).toBe('600');
    const old = tempFile();
    writeFileSync(old, '');
    chmodSync(old, 0o644);
    await new JsonLinesSpanExporter(old, 'test').shutdown();
    expect(modeOf(old)).toBe('600');
  });
});

describe('startTracing with an OTLP collector (OTEL_EXPORTER_OTLP_ENDPOINT)', () => {
  it('sends finished spans to the collector over OTLP/HTTP, with the service name', async () => {
    const received: Array<{ path: string; type: string; bytes: number; body: Buffer }> = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        received.push({ path: req.url ?? '', type: req.headers['content-type'] ?? '', bytes: body.length, body });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const port = (collector.address() as AddressInfo).port;
    try {
      started = await startTracing({ service: 'allot-otlp-test', env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}/` } });
      expect(started).toMatchObject({ enabled: true, file: undefined, otlpEndpoint: `http://127.0.0.1:${port}/v1/traces` });
      trace.getTracer('allot').startSpan('place', { kind: SpanKind.SERVER }).end();
      await started.shutdown(); // flushes the batch
      started = undefined;
      expect(received.map((r) => [r.path, r.type])).toEqual([['/v1/traces', 'application/json']]);
      // OTLP's JSON encoding: the span's name and the service name are in the body.
      expect(received[0]?.body.includes('place')).toBe(true);
      expect(received[0]?.body.includes('allot-otlp-test')).toBe(true);
    } finally {
      collector.close();
    }
  });
});
