import { metrics, type Attributes, type Counter, type Histogram } from '@opentelemetry/api';
import type { ManagerMetrics } from '@allot/core';

/** Operations counted by a manager. */
export type Operation = 'allocate' | 'reserve' | 'release' | 'activate';

const RESERVOIR = 1024;

/**
 * A manager's metrics, kept twice: through @opentelemetry/api (meter `allot`; a no-op until the process registers an
 * SDK) for export, and internally for getMetrics(): counts by outcome and reason, allocate latency p50/p99/max over
 * a bounded reservoir of the latest samples. Lives outside the actor's behaviour so it survives restarts.
 */
export class MetricsRecorder {
  readonly #resource: string;
  readonly #allocations: Counter;
  readonly #otherOps: Counter;
  readonly #histogram: Histogram;
  readonly #okAttributes: Record<Operation, Attributes>;
  readonly #startedAt: number;
  allocations = 0;
  releases = 0;
  reservations = 0;
  activations = 0;
  expirations = 0;
  readonly refusals: Record<string, number> = {};
  readonly #latencies = new Float64Array(RESERVOIR);
  #latencyCount = 0;
  #maxMs = 0;

  constructor(resource: string, startedAt: number) {
    this.#resource = resource;
    this.#startedAt = startedAt;
    const meter = metrics.getMeter('allot');
    this.#allocations = meter.createCounter('allot_allocations_total', { description: 'Allocate and reserve requests by outcome and refusal reason' });
    this.#otherOps = meter.createCounter('allot_allocation_changes_total', { description: 'Release and activate requests by outcome and refusal reason' });
    this.#histogram = meter.createHistogram('allot_allocation_duration_seconds', { description: 'Time from an allocate or reserve request to its durable reply', unit: 's' });
    // Attribute objects for the common case are built once: the hot path records without allocating.
    const okOf = (operation: Operation): Attributes => ({ operation, outcome: 'ok', reason: 'none', resource });
    this.#okAttributes = { allocate: okOf('allocate'), reserve: okOf('reserve'), release: okOf('release'), activate: okOf('activate') };
  }

  /** One operation's outcome; `ms` is the time from the call to its durable reply. */
  record(op: Operation, code: string | undefined, ms: number): void {
    if (code === undefined) {
      if (op === 'allocate') this.allocations += 1;
      else if (op === 'reserve') this.reservations += 1;
      else if (op === 'release') this.releases += 1;
      else this.activations += 1;
    } else {
      this.refusals[code] = (this.refusals[code] ?? 0) + 1;
    }
    const attributes = code === undefined ? this.#okAttributes[op] : { operation: op, outcome: 'refused', reason: code, resource: this.#resource };
    if (op === 'allocate' || op === 'reserve') {
      this.#allocations.add(1, attributes);
      this.#latencies[this.#latencyCount % RESERVOIR] = ms;
      this.#latencyCount += 1;
      if (ms > this.#maxMs) this.#maxMs = ms;
      this.#histogram.record(ms / 1000, attributes);
    } else {
      this.#otherOps.add(1, attributes);
    }
  }

  expired(count: number): void {
    this.expirations += count;
  }

  snapshot(restarts: number, now: number): ManagerMetrics {
    const n = Math.min(this.#latencyCount, RESERVOIR);
    const sorted = Array.from(this.#latencies.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number) => (n === 0 ? 0 : (sorted[Math.min(n - 1, Math.floor(q * n))] ?? 0));
    return {
      allocations: this.allocations,
      releases: this.releases,
      reservations: this.reservations,
      activations: this.activations,
      expirations: this.expirations,
      refusals: { ...this.refusals },
      allocateLatency: { count: this.#latencyCount, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: this.#maxMs },
      restarts,
      uptimeMs: Math.max(0, now - this.#startedAt),
    };
  }
}
