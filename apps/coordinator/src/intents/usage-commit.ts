import { encode, err, ok, type Result } from '@allot/core';
import { emptyUsageRecord, type TenantUsageRecord } from '@allot/quota';
import type { Bucket, BucketWrite } from '../store/bucket.ts';

/*
 * Group commit of one tenant's counting transitions (IntentStore: create, takeOver, failed, released, a move). Each
 * writes its intent and the tenant's usage record in one atomic batch, and every batch of a tenant names the same usage
 * key: sent one by one, N concurrent transitions would each lose compare-and-sets to the others (O(N^2) batches), and
 * on one replica every batch costs a file store on the server (5-15 ms). So a coordinator queues them per tenant: while
 * a tenant's batch is in flight, every transition that arrives waits, and the next batch carries all of them (N intent
 * writes + one usage write). A compare-and-set conflict then happens only between coordinators.
 */

/** Messages per batch: intents plus the usage record (the server takes at most 1,000; half keeps batches short). */
export const MAX_BATCH_MESSAGES = 500;
/** Rounds of re-reading after lost compare-and-sets (another coordinator wrote the usage record meanwhile). */
const MAX_ROUNDS = 64;
/** Batches this coordinator has in flight at once, over all tenants (the server takes 50 per stream). */
const MAX_IN_FLIGHT = 16;

/** One counting transition: its intent write, and what it does to the tenant's usage record. */
export interface CountedWrite {
  /** The intent's new value at the revision its caller read (expectedRevision; 0: the key must be absent). */
  readonly intent: BucketWrite;
  /** The record after this transition from the record before it; an error (quota_exceeded) refuses this one alone. */
  readonly apply: (record: TenantUsageRecord) => Result<TenantUsageRecord>;
}

/** Where usage records come from and where a written one is remembered (the IntentStore's cache). */
export interface UsageRecords {
  key(tenantId: string): string;
  /** The newest record seen, without a round trip (may be stale: a lost compare-and-set corrects it). */
  cached(tenantId: string): { readonly value: TenantUsageRecord; readonly revision: number } | undefined;
  read(tenantId: string): Promise<Result<{ readonly value: TenantUsageRecord; readonly revision: number } | null>>;
  written(tenantId: string, record: TenantUsageRecord, revision: number): void;
}

interface Queued extends CountedWrite {
  readonly resolve: (written: Result<number>) => void;
}

type Usage = { readonly value: TenantUsageRecord; readonly revision: number } | null;

/**
 * Per-tenant queues of counting transitions, each drained by one batch at a time. `submit` answers the intent's new
 * revision, or: `conflict` (the intent is not at the revision its write expects: only that write is left out, the
 * others commit), the transition's own refusal (quota_exceeded, decided in queue order on a record read from the
 * store, so a limit is never crossed), or the store's error for the whole batch (`unavailable`: outcome unknown).
 */
export class UsageCommitQueue {
  readonly #bucket: Bucket;
  readonly #records: UsageRecords;
  /** Tenants being drained, with what waits for their next batch. */
  readonly #queues = new Map<string, Queued[]>();
  readonly #waitingForSlot: (() => void)[] = [];
  #inFlight = 0;

  constructor(bucket: Bucket, records: UsageRecords) {
    this.#bucket = bucket;
    this.#records = records;
  }

  submit(tenantId: string, write: CountedWrite): Promise<Result<number>> {
    return new Promise((resolve) => {
      const queued = { ...write, resolve };
      const queue = this.#queues.get(tenantId);
      if (queue !== undefined) {
        queue.push(queued);
        return;
      }
      const fresh = [queued];
      this.#queues.set(tenantId, fresh);
      void this.#drain(tenantId, fresh);
    });
  }

  async #drain(tenantId: string, queue: Queued[]): Promise<void> {
    while (queue.length > 0) {
      await this.#slot();
      const batch = takeBatch(queue);
      try {
        await this.#commit(tenantId, batch);
      } catch (e) {
        // A bug, not the store: answer everyone rather than leave a place waiting forever.
        for (const q of batch) q.resolve(err('internal', `usage batch of ${tenantId}: ${(e as Error).message}`, { tenantId }));
      } finally {
        this.#releaseSlot();
      }
    }
    this.#queues.delete(tenantId);
  }

  /** Writes the transitions with one usage write, re-reading and retrying on a lost compare-and-set; answers each. */
  async #commit(tenantId: string, batch: Queued[]): Promise<void> {
    let live = batch;
    let usage: Usage | undefined = this.#records.cached(tenantId);
    let readNow = false;
    let conflicts = 0;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (usage === undefined) {
        const read = await this.#records.read(tenantId);
        if (!read.ok) return settle(live, read);
        usage = read.value;
        readNow = true;
      }
      // Admission in queue order against the counters: each transition sees the ones before it.
      let record = usage?.value ?? emptyUsageRecord(tenantId);
      const admitted: Queued[] = [];
      const refused: [Queued, Result<never>][] = [];
      for (const q of live) {
        const next = q.apply(record);
        if (next.ok) {
          record = next.value;
          admitted.push(q);
        } else refused.push([q, next]);
      }
      // A refusal is decided on the record as stored, never on a cached copy that a release elsewhere may have outdated.
      if (refused.length > 0 && !readNow) {
        usage = undefined;
        continue;
      }
      for (const [q, refusal] of refused) q.resolve(refusal);
      live = admitted;
      if (live.length === 0) return;
      const named = usage?.revision ?? 0;
      const written = await this.#bucket.write([...live.map((q) => q.intent), { key: this.#records.key(tenantId), value: encode(record), expectedRevision: named }]);
      if (written.ok) {
        this.#records.written(tenantId, record, written.value[live.length] as number);
        live.forEach((q, i) => q.resolve(ok(written.value[i] as number)));
        return;
      }
      if (written.error.code !== 'conflict') return settle(live, written);
      conflicts += 1;
      const read = await this.#records.read(tenantId);
      if (!read.ok) return settle(live, read);
      usage = read.value;
      readNow = true;
      // The usage record did not move (or keeps moving): some intent did. Find it and leave it out; the others retry.
      if ((usage?.revision ?? 0) === named || conflicts > 1) live = await this.#withoutMovedIntents(live);
    }
    settle(live, err('unavailable', `tenant ${tenantId}: usage record still contended after ${MAX_ROUNDS} rounds; retry`, { tenantId }));
  }

  /** Answers `conflict` to each write whose intent is not at its expected revision any more; returns the others. */
  async #withoutMovedIntents(live: Queued[]): Promise<Queued[]> {
    const reads = await Promise.all(live.map((q) => this.#bucket.get(q.intent.key)));
    const still: Queued[] = [];
    live.forEach((q, i) => {
      const read = reads[i] as Awaited<(typeof reads)[number]>;
      const found = read.ok ? (read.value?.revision ?? 0) : undefined;
      if (!read.ok) q.resolve(read);
      else if (found !== q.intent.expectedRevision) q.resolve(err('conflict', `${q.intent.key}: expected revision ${q.intent.expectedRevision}, found ${found}`, { key: q.intent.key, expected: q.intent.expectedRevision, found }));
      else still.push(q);
    });
    return still;
  }

  async #slot(): Promise<void> {
    if (this.#inFlight < MAX_IN_FLIGHT) {
      this.#inFlight += 1;
      return;
    }
    // The releasing batch hands its slot over: #inFlight stays as it is.
    await new Promise<void>((resolve) => this.#waitingForSlot.push(resolve));
  }

  #releaseSlot(): void {
    const next = this.#waitingForSlot.shift();
    if (next !== undefined) next();
    else this.#inFlight -= 1;
  }
}

/** The next batch: queued transitions in order, at most one per intent key (a batch writes each key once), up to the limit. */
function takeBatch(queue: Queued[]): Queued[] {
  const batch: Queued[] = [];
  const later: Queued[] = [];
  const keys = new Set<string>();
  for (const q of queue) {
    if (batch.length < MAX_BATCH_MESSAGES - 1 && !keys.has(q.intent.key)) {
      keys.add(q.intent.key);
      batch.push(q);
    } else later.push(q);
  }
  queue.splice(0, queue.length, ...later);
  return batch;
}

function settle(live: readonly Queued[], result: Result<never>): void {
  for (const q of live) q.resolve(result);
}
