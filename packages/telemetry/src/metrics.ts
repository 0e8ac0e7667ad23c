import type { IncomingMessage, ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, InstrumentType, MeterProvider } from '@opentelemetry/sdk-metrics';

/**
 * Bucket boundaries, in seconds, for every histogram whose unit is `s` (allocation, placement, fsync latencies): from
 * 50 µs to 10 s. The SDK's default boundaries (0, 5, 10, 25 ... 10000) suit milliseconds, not base units.
 */
export const SECONDS_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export type MetricsOptions = {
  /** service.name of the resource (target_info): allot-agent, allot-coordinator. */
  service: string;
  /** service.instance.id: the node id of an agent, the coordinator id. */
  nodeId?: string;
  /** The release (ALLOT_VERSION), exported as `allot_build_info{version,node_version} 1`, as Prometheus' own build_info. */
  version?: string;
};

export type StartedMetrics = {
  readonly meterProvider: MeterProvider;
  /** Answers a scrape with the Prometheus text format (mount it on GET /metrics). */
  handler(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
};

/**
 * Registers the global MeterProvider, read by the OpenTelemetry Prometheus exporter on each scrape. Instruments made
 * through `metrics.getMeter()` before this call stay no-ops (the metrics API has no proxy), so call it first thing.
 *
 * Names are exported as given (the exporter adds no unit suffix; it only appends `_total` to monotonic sums that lack
 * it), so instruments are named in Prometheus form already: `allot_` prefix, `_seconds`/`_bytes`, counters `_total`.
 * The exporter's own server is not started: `handler` is served by our HTTP servers.
 */
export function startMetrics(options: MetricsOptions): StartedMetrics {
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const meterProvider = new MeterProvider({
    resource: resourceFromAttributes({
      'service.name': options.service,
      ...(options.nodeId === undefined ? {} : { 'service.instance.id': options.nodeId }),
    }),
    readers: [exporter],
    views: [
      {
        instrumentType: InstrumentType.HISTOGRAM,
        instrumentUnit: 's',
        aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [...SECONDS_BUCKETS] } },
      },
    ],
  });
  metrics.setGlobalMeterProvider(meterProvider);
  observeRuntime(meterProvider);
  if (options.version !== undefined) {
    const build = { version: options.version, node_version: process.version };
    meterProvider
      .getMeter('allot')
      .createObservableGauge('allot_build_info', { description: 'Always 1; the labels say which release and which Node run this process' })
      .addCallback((r) => r.observe(1, build));
  }
  return {
    meterProvider,
    handler: (req, res) => {
      // The exporter answers text/plain; Prometheus wants the version of its text format.
      const setHeader = res.setHeader.bind(res);
      res.setHeader = (name, value) =>
        setHeader(name, name.toLowerCase() === 'content-type' ? 'text/plain; version=0.0.4; charset=utf-8' : value);
      exporter.getMetricsRequestHandler(req, res);
    },
    shutdown: async () => {
      await meterProvider.shutdown();
      metrics.disable();
    },
  };
}

/**
 * The process's own figures, named as Prometheus' client libraries name them (process_*, nodejs_*), so existing
 * dashboards and alerts read them: resident memory, CPU seconds, V8 heap, event-loop delay. Four instruments read
 * from Node itself on each scrape: written here rather than adding a contrib package for them.
 */
function observeRuntime(provider: MeterProvider): void {
  const meter = provider.getMeter('allot-runtime');
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  meter
    .createObservableGauge('process_resident_memory_bytes', { description: 'Resident set size', unit: 'By' })
    .addCallback((r) => r.observe(process.memoryUsage.rss()));
  meter
    .createObservableCounter('process_cpu_seconds_total', { description: 'User and system CPU time spent', unit: 's' })
    .addCallback((r) => {
      const cpu = process.cpuUsage();
      r.observe((cpu.user + cpu.system) / 1e6);
    });
  meter
    .createObservableGauge('nodejs_heap_used_bytes', { description: 'V8 heap in use', unit: 'By' })
    .addCallback((r) => r.observe(process.memoryUsage().heapUsed));
  meter
    .createObservableGauge('nodejs_eventloop_delay_seconds', {
      description: 'Event-loop delay since the previous scrape, by quantile',
      unit: 's',
    })
    .addCallback((r) => {
      if (loop.count > 0) {
        r.observe(loop.percentile(50) / 1e9, { quantile: '0.5' });
        r.observe(loop.percentile(99) / 1e9, { quantile: '0.99' });
        r.observe(loop.max / 1e9, { quantile: '1' });
      }
      loop.reset();
    });
}
