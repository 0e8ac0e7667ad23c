import type { Series, SeriesPoint } from '@allot/protocol/http';

/** A fixed-capacity ring: pushing past capacity overwrites the oldest item. Memory is bounded by the capacity. */
export class Ring<T> {
  readonly capacity: number;
  readonly #items: (T | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#items = new Array<T | undefined>(capacity).fill(undefined);
  }

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size += 1;
  }

  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    for (let i = 0; i < this.#size; i++) out.push(this.#items[(start + i) % this.capacity] as T);
    return out;
  }

  /** The newest `n` items, oldest first. */
  last(n: number): T[] {
    const all = this.toArray();
    return n >= all.length ? all : all.slice(all.length - n);
  }
}

const COLUMNS = ['at', 'memEffective', 'memCommitted', 'memUsed', 'cpuEffective', 'cpuCommitted', 'cpuUsed', 'nodesReady'] as const;

/**
 * The cluster utilization series: one point every `everyMs`, the last `capacity` points (720 x 5 s = one hour), kept in
 * one Float64Array per column, so its cost is fixed at 8 x 8 x capacity bytes whatever the uptime.
 */
export class SeriesRing {
  readonly everyMs: number;
  readonly capacity: number;
  readonly #columns: Record<(typeof COLUMNS)[number], Float64Array>;
  #next = 0;
  #size = 0;

  constructor(capacity: number, everyMs: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`series capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.everyMs = everyMs;
    this.#columns = Object.fromEntries(COLUMNS.map((c) => [c, new Float64Array(capacity)])) as Record<
      (typeof COLUMNS)[number],
      Float64Array
    >;
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes held by the columns: constant. */
  get bytes(): number {
    return COLUMNS.length * this.capacity * Float64Array.BYTES_PER_ELEMENT;
  }

  push(p: SeriesPoint): void {
    for (const c of COLUMNS) (this.#columns[c] as Float64Array)[this.#next] = p[c];
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size += 1;
  }

  /** Oldest first, columnar. */
  toSeries(): Series {
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    const out = { everyMs: this.everyMs, capacity: this.capacity } as Series;
    for (const c of COLUMNS) {
      const col = this.#columns[c];
      const values: number[] = new Array<number>(this.#size);
      for (let i = 0; i < this.#size; i++) values[i] = col[(start + i) % this.capacity] as number;
      out[c] = values;
    }
    return out;
  }
}
