import { err, type Result } from '@allot/core';
import type { Bucket, BucketChange, BucketEntry, BucketWrite } from '../../apps/coordinator/src/store/bucket.ts';
import type { MemoryBucket } from '../../apps/coordinator/src/store/memory-bucket.ts';
import type { Faults } from './faults.ts';
import type { Scheduler } from './scheduler.ts';

/**
 * One coordinator's connection to the shared KV bucket (the real MemoryBucket): every operation reaches the store after
 * a delay and answers after another, so operations of several coordinators interleave. A write may fail before it
 * reaches the store, or be applied and still be reported `unavailable` (its outcome unknown to the caller, as when a
 * JetStream publish acknowledgement is lost). Watch deliveries are delayed too, in order. `cut()` ends a crashed
 * coordinator's connection: nothing it sent afterwards arrives, no answer reaches it.
 */
export class SimBucket implements Bucket {
  readonly #store: MemoryBucket;
  readonly #sched: Scheduler;
  readonly #faults: () => Faults;
  readonly #name: string;
  #cut = false;

  constructor(options: { store: MemoryBucket; sched: Scheduler; faults: () => Faults; name: string }) {
    this.#store = options.store;
    this.#sched = options.sched;
    this.#faults = options.faults;
    this.#name = options.name;
  }

  cut(): void {
    this.#cut = true;
  }

  #hop(): number {
    return this.#sched.int(0, Math.min(50, this.#faults().maxDelayMs));
  }

  #round<T>(label: string, at: () => Promise<Result<T>>, outcomeUnknown: boolean): Promise<Result<T>> {
    return new Promise((resolve) => {
      if (this.#cut) return;
      if (this.#sched.chance(this.#faults().kvFailP)) {
        this.#sched.after(this.#hop(), `${this.#name} kv ${label} fails`, () => {
          if (!this.#cut) resolve(err('unavailable', `kv ${label}: simulated failure before the store`));
        });
        return;
      }
      this.#sched.after(this.#hop(), `${this.#name} kv ${label}`, () => {
        if (this.#cut) return;
        void at().then((result) => {
          const unknown = outcomeUnknown && result.ok && this.#sched.chance(this.#faults().kvUnknownP);
          if (unknown) this.#sched.trace(`${this.#name} kv ${label} applied, reported unavailable`);
          this.#sched.after(this.#hop(), `${this.#name} kv ${label} answer`, () => {
            if (!this.#cut) resolve(unknown ? err('unavailable', `kv ${label}: no acknowledgement (simulated)`) : result);
          });
        });
      });
    });
  }

  get(key: string): Promise<Result<BucketEntry | null>> {
    return this.#round(`get ${key}`, () => this.#store.get(key), false);
  }

  write(writes: readonly BucketWrite[]): Promise<Result<number[]>> {
    const copies = writes.map((w) => ({ ...w, value: w.value.slice() }));
    return this.#round(`write ${writes.map((w) => w.key).join('+')}`, () => this.#store.write(copies), true);
  }

  async watch(onChange: (change: BucketChange) => void): Promise<{ readonly caughtUp: Promise<void>; stop(): void }> {
    let stopped = false;
    // Deliveries keep their order: each is scheduled no earlier than the one before.
    let lastAt = 0;
    const inner = await this.#store.watch((change) => {
      if (stopped || this.#cut) return;
      const at = Math.max(lastAt, this.#sched.now + this.#hop());
      lastAt = at;
      const copy = 'value' in change ? { ...change, value: change.value.slice() } : change;
      this.#sched.after(at - this.#sched.now, `${this.#name} watch ${change.key}`, () => {
        if (!stopped && !this.#cut) onChange(copy);
      });
    });
    const caughtUp = inner.caughtUp.then(
      () =>
        new Promise<void>((resolve) => this.#sched.after(Math.max(0, lastAt - this.#sched.now), `${this.#name} watch caught up`, resolve)),
    );
    return {
      caughtUp,
      stop: () => {
        stopped = true;
        inner.stop();
      },
    };
  }
}
