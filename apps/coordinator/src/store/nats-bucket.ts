import { err, ok, type Result } from '@allot/core';
import { publishAtomicBatch, publishExpected, type ExpectedMessage } from '@allot/nats';
import type { KV, NatsConnection } from '../nats-deps.ts';
import type { Bucket, BucketChange, BucketEntry, BucketWrite } from './bucket.ts';

/** KV key characters (a NATS subject token set, no wildcards); a key may not start or end with a dot. */
const KV_KEY = /^[-/_=.a-zA-Z0-9]+$/;

function isValidKey(key: string): boolean {
  return KV_KEY.test(key) && !key.startsWith('.') && !key.endsWith('.');
}

export interface NatsBucketOptions {
  /** Wait for a write's acknowledgement this long; then the outcome is unknown (`unavailable`). */
  readonly timeoutMs?: number;
}

/**
 * The Bucket seam over a JetStream KV bucket (nats-server 2.12+, see `ensureKv` for the stream settings it needs:
 * `allow_atomic`, `allow_msg_ttl`). One write is a compare-and-set publish on the key's subject (expected last subject
 * sequence = the revision, 0 for a create), several writes are one atomic batch: every expected revision is checked
 * by the server under one lock, and all values are stored or none. A failed expectation is `conflict`; a server that
 * cannot be reached, or does not answer in time, is `unavailable` (the write may have landed: re-read before deciding).
 *
 * A key whose latest entry is a delete marker (an expired TTL leaves one when the bucket asks for markers) reads as
 * absent; a create (expected revision 0) over it is retried against the marker's revision, so "absent" means the same
 * for reads and writes.
 */
export class NatsBucket implements Bucket {
  readonly #kv: KV;
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #timeoutMs: number;

  constructor(nc: NatsConnection, kv: KV, bucketName: string, opts: NatsBucketOptions = {}) {
    this.#nc = nc;
    this.#kv = kv;
    this.#prefix = `$KV.${bucketName}.`;
    this.#timeoutMs = opts.timeoutMs ?? 5_000;
  }

  async get(key: string): Promise<Result<BucketEntry | null>> {
    if (!isValidKey(key)) return err('invalid_request', `bucket key "${key}" is not a valid KV key`, { key });
    try {
      const entry = await this.#kv.get(key);
      if (entry === null || entry.operation !== 'PUT') return ok(null);
      return ok({ key, value: entry.value, revision: entry.revision });
    } catch (e) {
      return err('unavailable', `bucket key ${key}: cannot read: ${(e as Error).message}`, { key });
    }
  }

  async write(writes: readonly BucketWrite[]): Promise<Result<number[]>> {
    for (const w of writes)
      if (!isValidKey(w.key)) return err('invalid_request', `bucket key "${w.key}" is not a valid KV key`, { key: w.key });
    let expected = writes.map((w) => w.expectedRevision);
    // At most twice: the second round only when a create met a delete marker.
    for (let round = 0; ; round++) {
      const written = await this.#publish(writes, expected);
      if (written.ok || written.error.code !== 'conflict' || round > 0) return written;
      const markers = await this.#markerRevisions(writes, expected);
      if (!markers.ok) return markers;
      if (markers.value === null) return written;
      expected = markers.value;
    }
  }

  async watch(onChange: (change: BucketChange) => void): Promise<{ readonly caughtUp: Promise<void>; stop(): void }> {
    const iter = await this.#kv.watch();
    let markCaughtUp: () => void = () => {};
    const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));
    void (async () => {
      for await (const e of iter) {
        try {
          if (e.operation === 'PUT') onChange({ key: e.key, value: e.value, revision: e.revision });
          else onChange({ key: e.key, revision: e.revision, deleted: true });
        } catch {
          // A watcher's bug or a value it cannot use must not end the watch (nor, unhandled, the process): the
          // watchers decode and count what they skip themselves.
        }
        if (e.isUpdate || e.delta === 0) markCaughtUp();
      }
    })().catch(() => undefined); // the iterator failing ends this watch only; stop() is still safe
    // An empty bucket delivers nothing at first: its initial pass is already over.
    try {
      if ((await this.#kv.status()).values === 0) markCaughtUp();
    } catch {
      // Status unknown: caughtUp follows the first delivery.
    }
    return { caughtUp, stop: () => iter.stop() };
  }

  #publish(writes: readonly BucketWrite[], expected: readonly number[]): Promise<Result<number[]>> {
    const messages: ExpectedMessage[] = writes.map((w, i) => ({
      subject: this.#prefix + w.key,
      payload: w.value,
      expectedLastSubjectSequence: expected[i] as number,
      ...(w.ttlMs === undefined ? {} : { ttlMs: w.ttlMs }),
    }));
    const opts = { timeoutMs: this.#timeoutMs };
    if (messages.length === 1)
      return publishExpected(this.#nc, messages[0] as ExpectedMessage, opts).then((r) => (r.ok ? ok([r.value]) : r));
    return publishAtomicBatch(this.#nc, messages, opts);
  }

  /**
   * For each create whose key holds a delete marker, the marker's revision; null when no create met one. The reads go
   * out together: a batch of several hundred creates (the coordinator's group commit) would wait for each in turn.
   */
  async #markerRevisions(writes: readonly BucketWrite[], expected: readonly number[]): Promise<Result<number[] | null>> {
    const creates = writes.flatMap((w, i) => (expected[i] === 0 ? [i] : []));
    const read = async (i: number): Promise<Result<number | null>> => {
      const key = (writes[i] as BucketWrite).key;
      try {
        const entry = await this.#kv.get(key);
        return ok(entry !== null && entry.operation !== 'PUT' ? entry.revision : null);
      } catch (e) {
        return err('unavailable', `bucket key ${key}: cannot read: ${(e as Error).message}`, { key });
      }
    };
    const markers = await Promise.all(creates.map(read));
    const next = [...expected];
    let changed = false;
    for (const [k, marker] of markers.entries()) {
      if (!marker.ok) return marker;
      if (marker.value === null) continue;
      next[creates[k] as number] = marker.value;
      changed = true;
    }
    return ok(changed ? next : null);
  }
}
