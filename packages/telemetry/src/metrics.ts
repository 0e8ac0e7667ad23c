import type { MetricsOptions, StartedMetrics } from './metrics-options.ts';

/**
 * Registers the global MeterProvider, read by the OpenTelemetry Prometheus exporter on each scrape. Instruments made
 * through `metrics.getMeter()` before this call stay no-ops (the metrics API has no proxy), so call it first thing.
 *
 * Names are exported as given (the exporter adds no unit suffix; it only appends `_total` to monotonic sums that lack
 * it), so instruments are named in Prometheus form already: `allot_` prefix, `_seconds`/`_bytes`, counters `_total`.
 * The exporter's own server is not started: `handler` is served by our HTTP servers.
 *
 * The SDK is loaded here, on the first call (metrics-sdk.ts): a process that serves no /metrics never carries it.
 */
export async function startMetrics(options: MetricsOptions): Promise<StartedMetrics> {
  const { registerMetrics } = await import('./metrics-sdk.ts');
  return registerMetrics(options);
}
