/*
 * How the figures of EfficiencyMetrics are computed, shared by the host managers and the cluster scope so both report
 * the same thing.
 */

/** used / committed and used / effective capacity, 0 when the denominator is 0. */
export function efficiencyRatios(
  used: number,
  committed: number,
  effective: number,
): { allocationEfficiency: number; utilizationEfficiency: number } {
  return { allocationEfficiency: committed > 0 ? used / committed : 0, utilizationEfficiency: effective > 0 ? used / effective : 0 };
}

/**
 * The most frequent of a stream of integer keys (a request size, or a request shape encoded as one number): the
 * reference a fragmentation figure is measured against. Bounded: once `maxKeys` distinct keys are known, new ones are
 * not counted, so a stream of distinct sizes cannot grow it without limit. Counts live in boxes, so a key seen before
 * (most requests repeat a size) costs one map lookup.
 */
export class MostCommon {
  readonly #counts = new Map<number, { n: number }>();
  readonly #maxKeys: number;
  #best: number | undefined;
  #bestCount = 0;

  constructor(maxKeys = 1024) {
    this.#maxKeys = maxKeys;
  }

  note(key: number): void {
    let box = this.#counts.get(key);
    if (box === undefined) {
      if (this.#counts.size >= this.#maxKeys) return;
      box = { n: 0 };
      this.#counts.set(key, box);
    }
    const n = (box.n += 1);
    if (n > this.#bestCount) {
      this.#bestCount = n;
      this.#best = key;
    }
  }

  /** The key noted most often (the first to reach that count); undefined before any. */
  get mostCommon(): number | undefined {
    return this.#best;
  }
}
