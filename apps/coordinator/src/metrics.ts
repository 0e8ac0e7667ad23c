import type { ManagerMetrics } from '@allot/core';

/** Latencies kept for percentiles: the most recent ones (a ring), so memory stays flat. */
const WINDOW = 4096;

/** Counters and a latency window for the cluster composite's getMetrics and exportTelemetry. */
export class FlowMetrics {
  readonly startedAt = Date.now();
  placements = 0;
  releases = 0;
  preemptions = 0;
  readonly refusals: Record<string, number> = {};
  readonly #latencies = new Float64Array(WINDOW);
  #count = 0;

  recordPlace(ms: number, code: string | undefined): void {
    this.#latencies[this.#count % WINDOW] = ms;
    this.#count += 1;
    if (code === undefined) this.placements += 1;
    else this.refusals[code] = (this.refusals[code] ?? 0) + 1;
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
