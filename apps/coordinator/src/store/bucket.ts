import type { Result } from '@allot/core';

/**
 * The coordinator's seam to its key-value state (placement intents, tenant usage and quota records). Production uses a
 * JetStream KV bucket (`nats-bucket.ts`: compare-and-set, and an atomic batch publish across keys on nats-server 2.12+);
 * the deterministic simulator (`test/sim`) plugs in an in-memory bucket it can delay, fail and reorder. Everything that
 * decides the place protocol is written against this interface, never against the NATS client.
 */

/** One stored value and the revision a compare-and-set must name. */
export interface BucketEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly revision: number;
}

/** One write of an all-or-nothing batch. */
export interface BucketWrite {
  readonly key: string;
  readonly value: Uint8Array;
  /** The key's revision the write expects: 0 means the key must not exist (create). */
  readonly expectedRevision: number;
  /** Per-value time to live (nats-server 2.11+ per-message TTL); absent: kept until overwritten. */
  readonly ttlMs?: number;
}

/** What a watch delivers: every key's latest value first, then each change, in revision order. */
export type BucketChange = BucketEntry | { readonly key: string; readonly revision: number; readonly deleted: true };

export interface Bucket {
  get(key: string): Promise<Result<BucketEntry | null>>;
  /**
   * Writes every value or none: `conflict` when any expected revision does not hold (re-read and decide again),
   * `unavailable` when the store cannot be reached (the outcome may be unknown: re-read before deciding). Returns the new
   * revision of each write, in order.
   */
  write(writes: readonly BucketWrite[]): Promise<Result<number[]>>;
  /** Follows the bucket; `caughtUp` resolves once the values stored when the watch began have been delivered. */
  watch(onChange: (change: BucketChange) => void): Promise<{ readonly caughtUp: Promise<void>; stop(): void }>;
}
