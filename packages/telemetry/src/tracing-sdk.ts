// The OpenTelemetry tracing SDK, loaded by startTracing (tracing.ts) only when a span file or a collector is named.
import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import {
  BatchSpanProcessor,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { SpanLine } from './span-line.ts';

const KINDS: Record<SpanKind, SpanLine['kind']> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

const hrToUs = (t: readonly [number, number]) => t[0] * 1e6 + Math.round(t[1] / 1e3);

export function spanLineOf(span: ReadableSpan, service: string): SpanLine {
  const ctx = span.spanContext();
  const line: SpanLine = {
    service,
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    name: span.name,
    kind: KINDS[span.kind] ?? 'internal',
    startUs: hrToUs(span.startTime),
    durationUs: hrToUs(span.duration),
    status: span.status.code === SpanStatusCode.ERROR ? 'error' : span.status.code === SpanStatusCode.OK ? 'ok' : 'unset',
    attributes: span.attributes,
  };
  const parent = span.parentSpanContext?.spanId;
  if (parent !== undefined) line.parentSpanId = parent;
  if (span.status.message !== undefined && span.status.message !== '') line.statusMessage = span.status.message;
  if (span.events.length > 0)
    line.events = span.events.map((e) => ({
      name: e.name,
      atUs: hrToUs(e.time),
      ...(e.attributes === undefined ? {} : { attributes: e.attributes }),
    }));
  return line;
}

/**
 * Writes each finished span as one JSON line, appended with a synchronous write: a process killed right after a
 * request still leaves its spans in the file, and several processes may share one file (O_APPEND lines stay whole).
 */
export class JsonLinesSpanExporter implements SpanExporter {
  readonly #service: string;
  #fd: number | undefined;

  constructor(file: string, service: string) {
    this.#service = service;
    // Spans carry tenant ids and subjects: the owner's alone, whatever the umask. A file shared with processes of
    // another user (someone else's file) is left as its owner set it.
    this.#fd = openSync(file, 'a', 0o600);
    try {
      fchmodSync(this.#fd, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    }
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const fd = this.#fd;
    if (fd === undefined) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('span file closed') });
      return;
    }
    try {
      let text = '';
      for (const span of spans) text += `${JSON.stringify(spanLineOf(span, this.#service))}\n`;
      writeSync(fd, text);
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      resultCallback({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }

  shutdown(): Promise<void> {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    return Promise.resolve();
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** Registers the tracer provider writing to the file and/or the collector; returns its shutdown. */
export function registerTracing(options: {
  service: string;
  file: string | undefined;
  otlpEndpoint: string | undefined;
}): () => Promise<void> {
  const { file, otlpEndpoint } = options;
  const spanProcessors: SpanProcessor[] = [];
  if (file !== undefined) spanProcessors.push(new SimpleSpanProcessor({ exporter: new JsonLinesSpanExporter(file, options.service) }));
  // Batched: a collector that is slow or down costs a bounded queue (the SDK drops past 2,048 spans), never a request.
  if (otlpEndpoint !== undefined) spanProcessors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: otlpEndpoint }) }));
  const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': options.service }), spanProcessors });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  };
}
