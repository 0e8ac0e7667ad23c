import { metrics } from '@opentelemetry/api';

/** The shape of @allot/nats `connectionCounters` (kept structural so this package does not depend on it). */
export type ConnectionCounters = { readonly reconnects: number; readonly disconnects: number };

/**
 * allot_nats_reconnects_total and allot_nats_disconnects_total, read from the process-wide counters at each scrape
 * (observable counters: nothing is recorded on the connection's path).
 */
export function observeNatsConnection(counters: ConnectionCounters): void {
  const meter = metrics.getMeter('allot');
  const reconnects = meter.createObservableCounter('allot_nats_reconnects_total', {
    description: 'Reconnections to NATS since the process started',
  });
  const disconnects = meter.createObservableCounter('allot_nats_disconnects_total', {
    description: 'Disconnections from NATS since the process started',
  });
  meter.addBatchObservableCallback(
    (r) => {
      r.observe(reconnects, counters.reconnects);
      r.observe(disconnects, counters.disconnects);
    },
    [reconnects, disconnects],
  );
}
