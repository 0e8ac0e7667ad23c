import { seededRandom, type RandomSource } from '../../packages/placement/src/random.ts';

/** Simulated time starts at a realistic epoch so instants look like the real ones (Nov 2023). */
export const SIM_EPOCH_MS = 1_700_000_000_000;

interface Event {
  readonly at: number;
  readonly order: number;
  readonly label: string;
  readonly fn: () => void;
  cancelled: boolean;
}

/** A handle to cancel a scheduled event (a timer, a pending reply). */
export interface Scheduled {
  cancel(): void;
}

/** Lets every promise chain started by an event run to its end before the next event: one macrotask turn. */
const drainMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The one source of time, order and chance of a simulation run. Every asynchronous hop of the system under simulation
 * (a message delivered, a reply, a disk write made durable, a timer) is an event at a simulated instant; events run one
 * at a time in (time, insertion) order, and after each one every promise it set off settles before the next starts.
 * Nothing else advances time, so a seed replays exactly.
 */
export class Scheduler {
  readonly random: RandomSource;
  #now = SIM_EPOCH_MS;
  #order = 0;
  #steps = 0;
  /** A binary min-heap on (at, order). */
  readonly #heap: Event[] = [];
  /** The last lines of the trace (what happened, when), printed when an invariant breaks. */
  readonly #trace: string[] = [];
  readonly #traceLimit: number;
  /** Set by the first failing check; the run stops there. */
  failure: string | undefined;

  constructor(seed: number, options: { traceLimit?: number } = {}) {
    this.random = seededRandom(seed);
    this.#traceLimit = options.traceLimit ?? 400;
  }

  /** Simulated epoch ms (the true time; processes see it through their own skewed clocks). */
  get now(): number {
    return this.#now;
  }

  get steps(): number {
    return this.#steps;
  }

  get pending(): number {
    return this.#heap.length;
  }

  // ---------- chance ----------

  chance(p: number): boolean {
    return p > 0 && this.random() < p;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.random() * items.length)] as T;
  }

  // ---------- events ----------

  /** Runs `fn` after `delayMs` of simulated time (0: after every event already due now). */
  after(delayMs: number, label: string, fn: () => void): Scheduled {
    const event: Event = { at: this.#now + Math.max(0, Math.floor(delayMs)), order: this.#order++, label, fn, cancelled: false };
    this.#push(event);
    return {
      cancel: () => {
        event.cancelled = true;
      },
    };
  }

  trace(line: string): void {
    this.#trace.push(`${String(this.#now - SIM_EPOCH_MS).padStart(9)} ${line}`);
    if (this.#trace.length > this.#traceLimit * 2) this.#trace.splice(0, this.#trace.length - this.#traceLimit);
  }

  traceLines(): string[] {
    return this.#trace.slice(-this.#traceLimit);
  }

  /** Records the first broken invariant (later ones are consequences). */
  fail(message: string): void {
    if (this.failure !== undefined) return;
    this.failure = message;
    this.trace(`INVARIANT BROKEN: ${message}`);
  }

  /** Runs the next event; false when none is left. */
  async step(): Promise<boolean> {
    const event = this.#pop();
    if (event === undefined) return false;
    if (event.cancelled) return true;
    this.#now = Math.max(this.#now, event.at);
    this.#steps++;
    try {
      event.fn();
    } catch (thrown) {
      this.fail(`event ${event.label} threw: ${(thrown as Error).stack ?? String(thrown)}`);
    }
    await drainMicrotasks();
    return true;
  }

  /** Runs events until simulated time passes `until`, the queue empties or an invariant breaks. */
  async runUntil(until: number, afterEach?: () => void): Promise<void> {
    while (this.failure === undefined) {
      const next = this.#peek();
      if (next === undefined || next.at > until) break;
      await this.step();
      afterEach?.();
    }
    if (this.failure === undefined) this.#now = Math.max(this.#now, until);
  }

  /**
   * Runs events until `promise` settles: the way to wait, from outside the events, for anything the simulated system
   * does (it may need a flush or a timer to complete). Rejects when no event is left or an invariant broke first.
   */
  async settle<T>(promise: Promise<T>, what: string): Promise<T> {
    let settled = false;
    const watched = promise.finally(() => {
      settled = true;
    });
    watched.catch(() => undefined);
    await drainMicrotasks();
    while (!settled) {
      if (this.failure !== undefined) throw new Error(`${what}: stopped by a broken invariant`);
      if (!(await this.step())) throw new Error(`${what}: never completed (no event left to run)`);
    }
    return watched;
  }

  // ---------- heap ----------

  #less(a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  #push(event: Event): void {
    const heap = this.#heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(heap[i] as Event, heap[parent] as Event)) break;
      [heap[i], heap[parent]] = [heap[parent] as Event, heap[i] as Event];
      i = parent;
    }
  }

  #peek(): Event | undefined {
    while (this.#heap.length > 0 && (this.#heap[0] as Event).cancelled) this.#pop();
    return this.#heap[0];
  }

  #pop(): Event | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < heap.length && this.#less(heap[l] as Event, heap[smallest] as Event)) smallest = l;
      if (r < heap.length && this.#less(heap[r] as Event, heap[smallest] as Event)) smallest = r;
      if (smallest === i) break;
      [heap[i], heap[smallest]] = [heap[smallest] as Event, heap[i] as Event];
      i = smallest;
    }
    return top;
  }
}
