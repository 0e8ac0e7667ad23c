/**
 * The last `capacity` samples of a figure (fsync latency, records per fsync), for recent percentiles and means.
 * A fixed ring rather than a histogram library: metrics want "recent" figures and the window is small enough to sort.
 */
export class SampleWindow {
  private readonly samples: Float64Array;
  private count = 0;
  private next = 0;
  constructor(capacity = 1024) {
    this.samples = new Float64Array(capacity);
  }

  add(value: number): void {
    this.samples[this.next] = value;
    this.next = (this.next + 1) % this.samples.length;
    if (this.count < this.samples.length) this.count += 1;
  }

  /** p50, p99, max and mean of the window; zeros when empty. */
  summary(): { p50: number; p99: number; max: number; mean: number; samples: number } {
    if (this.count === 0) return { p50: 0, p99: 0, max: 0, mean: 0, samples: 0 };
    const sorted = this.samples.slice(0, this.count).sort();
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    let sum = 0;
    for (const v of sorted) sum += v;
    return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0, mean: sum / this.count, samples: this.count };
  }
}
