import type { ManagerMetrics, Result } from '@allot/core';
import type { PlaceReply } from '@allot/protocol';
import { metrics, type Counter, type Histogram } from '@opentelemetry/api';

/** Latencies kept for percentiles: the most recent ones (a ring), so memory stays flat. */
const WINDOW = 4096;

/** Refusals: the request was answered no (capacity, quota, rate, a bad request). Anything else failing is `error`. */
const REFUSALS = new Set(['insufficient_capacity', 'quota_exceeded', 'rate_limited', 'invalid_request', 'conflict', 'not_found']);

const outcomeOf = (code: string | undefined) => (code === undefined ? 'ok' : REFUSALS.has(code) ? 'refused' : 'error');

/**
 * The place flow's one metrics object: every place and release answered through ClusterManager is recorded here once,
 * for both readers. The cluster composite's getMetrics / exportTelemetry read the counters and the latency window;
 * Prometheus reads, through @opentelemetry/api (no-ops unless main.ts registered the SDK before the coordinator
 * started), allot_placements_total{outcome,reason}, allot_placement_duration_seconds{outcome} and
 * allot_releases_total{outcome,reason}.
 */
export class PlaceMetrics {
  readonly startedAt = Date.now();
  placements = 0;
  releases = 0;
  preemptions = 0;
  readonly refusals: Record<string, number> = {};
  readonly #latencies = new Float64Array(WINDOW);
  #count = 0;
  readonly #placements: Counter;
  readonly #duration: Histogram;
  readonly #releases: Counter;
  readonly #ok = { outcome: 'ok', reason: 'none' };
  readonly #okDuration = { outcome: 'ok' };

  constructor() {
    const meter = metrics.getMeter('allot');
    this.#placements = meter.createCounter('allot_placements_total', {
      description: 'Place requests answered by this coordinator, by outcome (ok, refused, error) and reason (the error code)',
    });
    this.#duration = meter.createHistogram('allot_placement_duration_seconds', {
      description: 'Time from a place request to its reply, agent round trips included',
      unit: 's',
    });
    this.#releases = meter.createCounter('allot_releases_total', {
      description: 'Release requests answered by this coordinator, by outcome and reason',
    });
  }

  /** One place answered, `ms` after it arrived. */
  recordPlace(ms: number, result: Result<PlaceReply>): void {
    this.#latencies[this.#count % WINDOW] = ms;
    this.#count += 1;
    if (result.ok) {
      this.placements += 1;
      // Every victim: the reply names the preemptor's own and counts the other tenants'.
      this.preemptions += result.value.preempted.length + (result.value.othersPreempted ?? 0);
      this.#placements.add(1, this.#ok);
      this.#duration.record(ms / 1000, this.#okDuration);
      return;
    }
    const code = result.error.code;
    this.refusals[code] = (this.refusals[code] ?? 0) + 1;
    const outcome = outcomeOf(code);
    this.#placements.add(1, { outcome, reason: code });
    this.#duration.record(ms / 1000, { outcome });
  }

  /** One release answered. */
  recordRelease(result: Result<unknown>): void {
    if (result.ok) this.releases += 1;
    this.#releases.add(1, result.ok ? this.#ok : { outcome: outcomeOf(result.error.code), reason: result.error.code });
  }

  snapshot(): ManagerMetrics {
    const n = Math.min(this.#count, WINDOW);
    const sorted = Array.from(this.#latencies.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number) => (n === 0 ? 0 : (sorted[Math.min(n - 1, Math.floor(q * n))] ?? 0));
    return {
      allocations: this.placements,
      releases: this.releases,
      reservations: 0,
      activations: 0,
      expirations: 0,
      refusals: { ...this.refusals },
      allocateLatency: { count: this.#count, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: n === 0 ? 0 : (sorted[n - 1] ?? 0) },
      restarts: 0,
      uptimeMs: Date.now() - this.startedAt,
    };
  }
}
