import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MeterProvider } from '@opentelemetry/sdk-metrics';

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
