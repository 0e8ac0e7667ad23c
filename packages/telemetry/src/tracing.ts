import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';

/** The environment variable naming the span file; unset (and no OTLP endpoint), tracing registers nothing. */
export const TRACE_FILE_ENV = 'ALLOT_TRACE_FILE';
/**
 * The OpenTelemetry SDK's own variables for a collector: with either set, spans are also batched to it over OTLP/HTTP
 * (JSON encoding, which every collector's OTLP/HTTP receiver takes; `OTEL_EXPORTER_OTLP_HEADERS` is read by the exporter).
 */
export const OTLP_ENDPOINT_ENVS = ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'] as const;

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
 * With a span file (option or ALLOT_TRACE_FILE) or a collector: loads the OpenTelemetry SDK (tracing-sdk.ts) and
 * registers a tracer provider, the W3C trace context propagator and an AsyncLocalStorage context manager. Without
 * either it loads and registers nothing, so an idle process does not carry the SDK and the @opentelemetry/api calls
 * in the request path stay no-ops (see bench/overhead.bench.ts for the figures).
 */
export async function startTracing(options: TracingOptions): Promise<StartedTracing> {
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
  const { registerTracing } = await import('./tracing-sdk.ts');
  const shutdown = registerTracing({ service: options.service, file, otlpEndpoint });
  return { enabled: true, file, otlpEndpoint, shutdown };
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
