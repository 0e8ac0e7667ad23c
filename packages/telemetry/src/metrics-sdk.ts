// The OpenTelemetry metrics SDK and its Prometheus exporter, loaded by startMetrics (metrics.ts) when a process serves /metrics.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, InstrumentType, MeterProvider } from '@opentelemetry/sdk-metrics';
import { SECONDS_BUCKETS, type MetricsOptions, type StartedMetrics } from './metrics-options.ts';

/** startMetrics (metrics.ts) once the SDK is loaded: the provider, its views, the runtime gauges and build info. */
export function registerMetrics(options: MetricsOptions): StartedMetrics {
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
