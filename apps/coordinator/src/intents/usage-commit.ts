import { encode } from '@allot/protocol';
import { err, ok, type Result } from '@allot/core';
import { emptyUsageRecord, type TenantUsageRecord } from '@allot/quota';
import type { Bucket, BucketWrite } from '../store/bucket.ts';

/*
 * Group commit of counting transitions across tenants (IntentStore: create, takeOver, failed, released, a move). Each
 * writes its intent and its tenant's usage record in one atomic batch. On one replica every batch costs the server a
 * file store and a stream's batches are handled one at a time (3-20 ms each), so one batch per transition caps the
 * place rate near 100/s. A coordinator therefore queues every counting transition: while batches are in flight, what
 * arrives waits, and the next batch carries all of it, over every tenant (N intent writes + one usage write per tenant
 * named). Two batches in flight never name the same tenant, so a coordinator never conflicts with itself: a lost
 * compare-and-set means another coordinator wrote a usage record, or an intent moved.
 */

/** Messages per batch: intents plus one usage record per tenant (the server takes at most 1,000; half keeps batches short). */
export const MAX_BATCH_MESSAGES = 500;
/** Lost compare-and-sets a transition goes through before it is answered `unavailable` (the path of halvings included). */
const MAX_ROUNDS = 64;
/** Batches in flight at once: one being handled by the server while the next is sent (a stream handles them in turn). */
export const MAX_IN_FLIGHT = 4;

/** One counting transition: its intent write, and what it does to the tenant's usage record. */
export interface CountedWrite {
  /** The intent's new value at the revision its caller read (expectedRevision; 0: the key must be absent). */
  readonly intent: BucketWrite;
  /** The record after this transition from the record before it; an error (quota_exceeded) refuses this one alone. */
  readonly apply: (record: TenantUsageRecord) => Result<TenantUsageRecord>;
}

type Usage = { readonly value: TenantUsageRecord; readonly revision: number } | null;

/** Where usage records come from and where a written one is remembered (the IntentStore's cache). */
export interface UsageRecords {
  key(tenantId: string): string;
  /** The newest record seen, without a round trip (may be stale: a lost compare-and-set corrects it). */
  cached(tenantId: string): NonNullable<Usage> | undefined;
  read(tenantId: string): Promise<Result<Usage>>;
  written(tenantId: string, record: TenantUsageRecord, revision: number): void;
}

/** One queued transition: its intent writes (several for a batch's members, all or nothing) and its record change. */
interface Queued {
  readonly tenantId: string;
  readonly writes: readonly BucketWrite[];
  readonly apply: CountedWrite['apply'];
  readonly resolve: (written: Result<number[]>) => void;
}

/** One tenant's part of a batch: its transitions in queue order and the record they apply to. */
interface TenantPart {
  readonly tenantId: string;
  live: Queued[];
  /** The record as last seen (undefined: read it before admitting). */
  usage: Usage | undefined;
  /** `usage` was read from the store for this batch (a refusal may be decided on it). */
  fresh: boolean;
  /** The record after the admitted transitions (set by #admit). */
  next?: TenantUsageRecord;
}

/**
 * One coordinator's queue of counting transitions, drained by at most MAX_IN_FLIGHT batches at a time. `submit`
 * answers the intent's new revision, or: `conflict` (the intent is not at the revision its write expects: only that
 * write is left out, the others commit), the transition's own refusal (quota_exceeded, decided per tenant in queue
 * order on a record read from the store, so a limit is never crossed), or the store's error for the part that met it
 * (`unavailable`: outcome unknown).
 */
export class UsageCommitQueue {
  readonly #bucket: Bucket;
  readonly #records: UsageRecords;
  readonly #maxInFlight: number;
  readonly #queue: Queued[] = [];
  /** Tenants named by a batch in flight: their next transitions wait for it (the batch names their record's revision). */
  readonly #busy = new Set<string>();
  #inFlight = 0;
  #pumpScheduled = false;

  constructor(bucket: Bucket, records: UsageRecords, options: { readonly maxInFlight?: number } = {}) {
    this.#bucket = bucket;
    this.#records = records;
    this.#maxInFlight = options.maxInFlight ?? MAX_IN_FLIGHT;
  }

  submit(tenantId: string, write: CountedWrite): Promise<Result<number>> {
    return this.submitGroup(tenantId, [write.intent], write.apply).then((r) => (r.ok ? ok(r.value[0] as number) : r));
  }

  /**
   * Several intents of one tenant (a batch's members) as ONE transition: written in the same atomic batch or not at
   * all, `apply` changing the record for all of them (its refusal refuses them all), answered with each write's
   * revision in order. `conflict` when any of them is not at its expected revision. At most MAX_BATCH_MESSAGES - 1.
   */
  submitGroup(tenantId: string, writes: readonly BucketWrite[], apply: CountedWrite['apply']): Promise<Result<number[]>> {
    if (writes.length === 0 || writes.length >= MAX_BATCH_MESSAGES)
      return Promise.resolve(
        err('invalid_request', `one transition writes 1 to ${MAX_BATCH_MESSAGES - 1} intents`, { writes: writes.length }),
      );
    return new Promise((resolve) => {
      this.#queue.push({ writes, apply, tenantId, resolve });
      // After the current task: transitions submitted together (a burst of places) share the first batch.
      if (!this.#pumpScheduled) {
        this.#pumpScheduled = true;
        queueMicrotask(() => {
          this.#pumpScheduled = false;
          this.#pump();
        });
      }
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#maxInFlight) {
      const batch = this.#take();
      if (batch.length === 0) return;
      this.#inFlight += 1;
      const parts = partsOf(batch, (tenantId) => this.#records.cached(tenantId));
      for (const p of parts) this.#busy.add(p.tenantId);
      void this.#commit(parts, 0)
        .catch((e: unknown) => {
          // A bug, not the store: answer everyone rather than leave a place waiting forever (a second answer is a no-op).
          for (const q of batch) q.resolve(err('internal', `counting batch: ${(e as Error).message}`, {}));
        })
        .finally(() => {
          for (const p of parts) this.#busy.delete(p.tenantId);
          this.#inFlight -= 1;
          this.#pump();
        });
    }
  }

  /** The next batch: queued transitions in order whose tenant is not in flight, each intent key once, up to the limit. */
  #take(): Queued[] {
    const batch: Queued[] = [];
    const later: Queued[] = [];
    const keys = new Set<string>();
    const tenants = new Set<string>();
    let messages = 0;
    for (const q of this.#queue) {
      const cost = q.writes.length + (tenants.has(q.tenantId) ? 0 : 1);
      if (this.#busy.has(q.tenantId) || q.writes.some((w) => keys.has(w.key)) || messages + cost > MAX_BATCH_MESSAGES) {
        later.push(q);
        continue;
      }
      for (const w of q.writes) keys.add(w.key);
      tenants.add(q.tenantId);
      messages += cost;
      batch.push(q);
    }
    this.#queue.splice(0, this.#queue.length, ...later);
    return batch;
  }

  /**
   * Writes the parts' transitions in one batch with one usage write per tenant and answers each. A lost
   * compare-and-set re-reads the usage records (and, when none moved or on a later loss, the intents: a moved intent is
   * answered `conflict` alone) and tries again; from the second loss on, the tenants are halved and each half commits
   * on its own, so a tenant another coordinator keeps writing ends up alone and the others commit.
   */
  async #commit(parts: TenantPart[], lost: number): Promise<void> {
    for (;;) {
      await this.#admit(parts);
      parts = parts.filter((p) => p.live.length > 0);
      if (parts.length === 0) return;
      const written = await this.#bucket.write(writesOf(parts, (tenantId) => this.#records.key(tenantId)));
      if (written.ok) return this.#written(parts, written.value);
      if (written.error.code !== 'conflict') {
        // Unknown outcome: everyone re-reads. A refusal of the batch itself (a write the server will not take): halve,
        // so it ends up refusing its own tenant's part only.
        if (written.error.code === 'unavailable' || parts.length === 1) return settle(parts, written);
        return this.#halves(parts, lost);
      }
      lost += 1;
      if (lost >= MAX_ROUNDS)
        return settle(
          parts,
          err('unavailable', `usage records still contended after ${MAX_ROUNDS} rounds; retry`, { tenants: parts.map((p) => p.tenantId) }),
        );
      const moved = await this.#rereadUsage(parts);
      if (!moved || lost > 1) await this.#leaveOutMovedIntents(parts);
      parts = parts.filter((p) => p.live.length > 0);
      if (lost > 1 && parts.length > 1) return this.#halves(parts, lost);
    }
  }

  /** Commits each half of the tenants on its own, one after the other (the number of batches in flight stays bounded). */
  async #halves(parts: TenantPart[], lost: number): Promise<void> {
    const half = Math.ceil(parts.length / 2);
    await this.#commit(parts.slice(0, half), lost);
    await this.#commit(parts.slice(half), lost);
  }

  /**
   * Applies each part's transitions in queue order to its record (each sees the ones before it). A refusal is decided
   * only on a record read from the store for this batch, never on a cached copy a release elsewhere may have outdated.
   */
  async #admit(parts: TenantPart[]): Promise<void> {
    await this.#readMissing(parts);
    const stale: TenantPart[] = [];
    for (const p of parts) {
      if (p.live.length === 0) continue;
      const { refused } = plan(p);
      if (refused.length > 0 && !p.fresh) {
        p.usage = undefined;
        stale.push(p);
      }
    }
    await this.#readMissing(stale);
    for (const p of parts) {
      if (p.live.length === 0) continue;
      const { record, admitted, refused } = plan(p);
      for (const [q, refusal] of refused) q.resolve(refusal);
      p.live = admitted;
      p.next = record;
    }
  }

  /** Reads the record of each part that has none; a part whose read fails is answered with that error. */
  async #readMissing(parts: TenantPart[]): Promise<void> {
    const missing = parts.filter((p) => p.usage === undefined && p.live.length > 0);
    const reads = await Promise.all(missing.map((p) => this.#records.read(p.tenantId)));
    missing.forEach((p, i) => {
      const read = reads[i] as Result<Usage>;
      if (!read.ok) {
        settle([p], read);
        p.live = [];
        return;
      }
      p.usage = read.value;
      p.fresh = true;
    });
  }

  /** Re-reads every part's record after a lost compare-and-set; true when one of them had moved. */
  async #rereadUsage(parts: TenantPart[]): Promise<boolean> {
    const before = parts.map((p) => p.usage?.revision ?? 0);
    for (const p of parts) p.usage = undefined;
    await this.#readMissing(parts);
    return parts.some((p, i) => p.live.length > 0 && (p.usage?.revision ?? 0) !== before[i]);
  }

  /** Answers `conflict` to each write whose intent is not at its expected revision any more; the others stay. */
  async #leaveOutMovedIntents(parts: TenantPart[]): Promise<void> {
    await Promise.all(
      parts.map(async (p) => {
        const reads = await Promise.all(p.live.map((q) => Promise.all(q.writes.map((w) => this.#bucket.get(w.key)))));
        p.live = p.live.filter((q, i) => {
          for (const [j, read] of (reads[i] as Awaited<(typeof reads)[number]>).entries()) {
            const w = q.writes[j] as BucketWrite;
            if (!read.ok) {
              q.resolve(read);
              return false;
            }
            const found = read.value?.revision ?? 0;
            if (found === w.expectedRevision) continue;
            q.resolve(
              err('conflict', `${w.key}: expected revision ${w.expectedRevision}, found ${found}`, {
                key: w.key,
                expected: w.expectedRevision,
                found,
              }),
            );
            return false;
          }
          return true;
        });
      }),
    );
  }

  #written(parts: readonly TenantPart[], revisions: readonly number[]): void {
    let i = 0;
    for (const p of parts)
      for (const q of p.live) {
        q.resolve(ok(revisions.slice(i, i + q.writes.length)));
        i += q.writes.length;
      }
    for (const p of parts) this.#records.written(p.tenantId, p.next as TenantUsageRecord, revisions[i++] as number);
  }
}

/** The batch grouped by tenant, in order of each tenant's first transition. */
function partsOf(batch: readonly Queued[], cached: (tenantId: string) => Usage | undefined): TenantPart[] {
  const byTenant = new Map<string, TenantPart>();
  for (const q of batch) {
    const part = byTenant.get(q.tenantId);
    if (part !== undefined) part.live.push(q);
    else byTenant.set(q.tenantId, { tenantId: q.tenantId, live: [q], usage: cached(q.tenantId), fresh: false });
  }
  return [...byTenant.values()];
}

/** The part's transitions applied in queue order to its record. */
function plan(p: TenantPart): { record: TenantUsageRecord; admitted: Queued[]; refused: [Queued, Result<never>][] } {
  let record = p.usage?.value ?? emptyUsageRecord(p.tenantId);
  const admitted: Queued[] = [];
  const refused: [Queued, Result<never>][] = [];
  for (const q of p.live) {
    const next = q.apply(record);
    if (next.ok) {
      record = next.value;
      admitted.push(q);
    } else refused.push([q, next]);
  }
  return { record, admitted, refused };
}

/** Every intent write, then one usage write per part (at the revision its record was seen at; 0: create it). */
function writesOf(parts: readonly TenantPart[], key: (tenantId: string) => string): BucketWrite[] {
  const intents = parts.flatMap((p) => p.live.flatMap((q) => q.writes));
  const usages = parts.map((p) => ({
    key: key(p.tenantId),
    value: encode(p.next as TenantUsageRecord),
    expectedRevision: p.usage?.revision ?? 0,
  }));
  return [...intents, ...usages];
}

function settle(parts: readonly TenantPart[], result: Result<never>): void {
  for (const p of parts) for (const q of p.live) q.resolve(result);
}
