import { err, ok, type Result } from '@allot/core';
import type { Bucket, BucketChange, BucketEntry, BucketWrite } from './bucket.ts';

interface Stored {
  readonly value: Uint8Array;
  readonly revision: number;
  /** Instant (by the injected clock) after which the value is gone; absent: kept until overwritten. */
  readonly expiresAt?: number;
}

/**
 * The Bucket seam in memory, with the semantics of a JetStream KV bucket on one stream: one revision counter for the
 * whole bucket (the stream sequence), expected revision 0 = the key is absent, a batch commits every write or none,
 * per-value TTL judged by the injected clock, and a watch that delivers the current values then each change in
 * revision order. Used by the coordinator's unit tests and the deterministic simulator; no NATS, no timers.
 */
export class MemoryBucket implements Bucket {
  readonly #values = new Map<string, Stored>();
  /** Keys whose value has a TTL: an expiry pass looks at these only. */
  readonly #expiring = new Set<string>();
  readonly #watchers = new Set<(change: BucketChange) => void>();
  readonly #now: () => number;
  #revision = 0;

  constructor(opts: { now: () => number }) {
    this.#now = opts.now;
  }

  /** The last revision written (the stream's last sequence). */
  get revision(): number {
    return this.#revision;
  }

  async get(key: string): Promise<Result<BucketEntry | null>> {
    this.expire();
    const stored = this.#values.get(key);
    return ok(stored === undefined ? null : { key, value: stored.value.slice(), revision: stored.revision });
  }

  async write(writes: readonly BucketWrite[]): Promise<Result<number[]>> {
    this.expire();
    const keys = new Set(writes.map((w) => w.key));
    if (keys.size !== writes.length)
      return err('invalid_request', 'a batch writes each key at most once', { keys: writes.map((w) => w.key) });
    for (const w of writes) {
      const held = this.#values.get(w.key)?.revision ?? 0;
      if (held !== w.expectedRevision)
        return err('conflict', `${w.key}: expected revision ${w.expectedRevision}, found ${held}`, {
          key: w.key,
          expected: w.expectedRevision,
          found: held,
        });
    }
    const revisions: number[] = [];
    const now = this.#now();
    for (const w of writes) {
      const revision = ++this.#revision;
      this.#values.set(w.key, { value: w.value.slice(), revision, ...(w.ttlMs === undefined ? {} : { expiresAt: now + w.ttlMs }) });
      if (w.ttlMs === undefined) this.#expiring.delete(w.key);
      else this.#expiring.add(w.key);
      revisions.push(revision);
      this.#deliver({ key: w.key, value: w.value.slice(), revision });
    }
    return ok(revisions);
  }

  async watch(onChange: (change: BucketChange) => void): Promise<{ readonly caughtUp: Promise<void>; stop(): void }> {
    this.expire();
    const current = [...this.#values].sort((a, b) => a[1].revision - b[1].revision);
    for (const [key, stored] of current) onChange({ key, value: stored.value.slice(), revision: stored.revision });
    this.#watchers.add(onChange);
    return { caughtUp: Promise.resolve(), stop: () => void this.#watchers.delete(onChange) };
  }

  /** Removes the values whose TTL has passed, each delivered to watchers as a deletion (a JetStream delete marker). */
  expire(): void {
    const now = this.#now();
    for (const key of this.#expiring) {
      const stored = this.#values.get(key);
      if (stored?.expiresAt === undefined || stored.expiresAt > now) continue;
      this.#values.delete(key);
      this.#expiring.delete(key);
      this.#deliver({ key, revision: ++this.#revision, deleted: true });
    }
  }

  #deliver(change: BucketChange): void {
    for (const watcher of this.#watchers) watcher(change);
  }
}
