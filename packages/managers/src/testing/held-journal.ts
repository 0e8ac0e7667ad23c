import type { DurableState, HostRecord, ReplayableJournal } from '../host/records.ts';

interface Held {
  readonly record: HostRecord;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * A journal whose disk the caller drives: appends wait until `flush` makes them durable (in order), or `fail` fails
 * them, as a stalled and then dead disk would. For tests and simulations of what a reply may say while its record is
 * still in the group-commit queue.
 */
export class HeldJournal implements ReplayableJournal {
  readonly #durable: HostRecord[] = [];
  #held: Held[] = [];
  #failure: Error | undefined;

  append(record: HostRecord): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<void>((resolve, reject) => this.#held.push({ record, resolve, reject }));
  }

  /** Records on the disk, in order. */
  get records(): readonly HostRecord[] {
    return this.#durable;
  }

  /** Appends not yet durable. */
  get pending(): number {
    return this.#held.length;
  }

  /** Makes the oldest `count` held records durable (all by default), in append order. */
  flush(count = this.#held.length): void {
    const now = this.#held.slice(0, count);
    this.#held = this.#held.slice(count);
    for (const h of now) {
      this.#durable.push(h.record);
      h.resolve();
    }
  }

  /** Fails every held append and every later one, as a dead disk does. */
  fail(error: Error): void {
    this.#failure = error;
    const held = this.#held;
    this.#held = [];
    for (const h of held) h.reject(error);
  }

  load(): Promise<DurableState> {
    return Promise.resolve({ records: [...this.#durable] });
  }
}
