import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
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

/** The environment variable naming the span file; unset (and no OTLP endpoint), tracing registers nothing. */
export const TRACE_FILE_ENV = 'ALLOT_TRACE_FILE';
/**
 * The OpenTelemetry SDK's own variables for a collector: with either set, spans are also batched to it over OTLP/HTTP
 * (JSON encoding, which every collector's OTLP/HTTP receiver takes; `OTEL_EXPORTER_OTLP_HEADERS` is read by the exporter).
 */
export const OTLP_ENDPOINT_ENVS = ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'] as const;

/** One finished span as written to the file, one JSON object per line. */
export type SpanLine = {
  service: string;
  traceId: string;
  spanId: string;
  /** Absent for a root span. */
  parentSpanId?: string;
  name: string;
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  /** Epoch, in microseconds. */
  startUs: number;
  durationUs: number;
  status: 'unset' | 'ok' | 'error';
  statusMessage?: string;
  attributes: Attributes;
  events?: { name: string; atUs: number; attributes?: Attributes }[];
};

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

export type TracingOptions = {
  /** service name written on every span line. */
  service: string;
  /** The span file; default process.env.ALLOT_TRACE_FILE. */
  file?: string;
  env?: Readonly<Record<string, string | undefined>>;
};

export type StartedTracing = {
  /** False when neither a file nor a collector was named: nothing was registered and every span is a no-op. */
  readonly enabled: boolean;
  readonly file: string | undefined;
  /** The collector's endpoint when spans go over OTLP. */
  readonly otlpEndpoint: string | undefined;
  shutdown(): Promise<void>;
};

/**
 * With a span file (option or ALLOT_TRACE_FILE): registers a tracer provider writing JSON lines, the W3C trace
 * context propagator and an AsyncLocalStorage context manager. Without one it registers nothing, so the
 * @opentelemetry/api calls in the request path stay no-ops (see bench/overhead.bench.ts for the figures).
 */
export function startTracing(options: TracingOptions): StartedTracing {
  const env = options.env ?? process.env;
  const named = options.file ?? env[TRACE_FILE_ENV];
  const file = named === undefined || named === '' ? undefined : named;
  // As the SDK reads them: the traces endpoint is the whole URL, the general one a base that gets /v1/traces.
  const tracesEndpoint = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];
  const baseEndpoint = env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  const otlpEndpoint =
    tracesEndpoint !== undefined && tracesEndpoint !== ''
      ? tracesEndpoint
      : baseEndpoint !== undefined && baseEndpoint !== ''
        ? `${baseEndpoint.replace(/\/+$/, '')}/v1/traces`
        : undefined;
  if (file === undefined && otlpEndpoint === undefined)
    return { enabled: false, file: undefined, otlpEndpoint: undefined, shutdown: () => Promise.resolve() };
  const spanProcessors: SpanProcessor[] = [];
  if (file !== undefined) spanProcessors.push(new SimpleSpanProcessor({ exporter: new JsonLinesSpanExporter(file, options.service) }));
  // Batched: a collector that is slow or down costs a bounded queue (the SDK drops past 2,048 spans), never a request.
  if (otlpEndpoint !== undefined) spanProcessors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: otlpEndpoint }) }));
  const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': options.service }), spanProcessors });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    enabled: true,
    file,
    otlpEndpoint,
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/**
 * Runs `fn` inside a new root span (the start of a trace: a CLI command). With no SDK registered the span is a no-op
 * and `fn` runs directly.
 */
export async function withRootSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  const tracer = trace.getTracer('allot');
  return tracer.startActiveSpan(name, { kind: SpanKind.INTERNAL, root: true, attributes }, ROOT_CONTEXT, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}
