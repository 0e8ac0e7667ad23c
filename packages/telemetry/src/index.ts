export { startMetrics } from './metrics.ts';
export { SECONDS_BUCKETS, type MetricsOptions, type StartedMetrics } from './metrics-options.ts';
export type { SpanLine } from './span-line.ts';
export { startTracing, withRootSpan, TRACE_FILE_ENV, type StartedTracing, type TracingOptions } from './tracing.ts';
export {
  listenHttp,
  serveHttp,
  sendJson,
  MAX_HEADER_BYTES,
  type HttpOptions,
  type HttpServer,
  type ListenOptions,
  type Route,
} from './http.ts';
export { BEARER_TOKEN_PATTERN, exposedWithoutToken, isLoopbackHost, readBearerTokenFile, tokenMatches } from './bearer.ts';
export { MIB_BYTES, mibToBytes } from './units.ts';
export { observeNatsConnection, type ConnectionCounters } from './nats.ts';
export {
  loggerOptions,
  logFormat,
  REDACTED_KEYS,
  REDACT_PATHS,
  type LogFormat,
  type LoggerOptionsInput,
  type PinoOptions,
} from './logging.ts';
