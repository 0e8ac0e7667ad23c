import { decode, encode, type PlaceReply } from '@allot/protocol';
import { err, ok, type AllotError, type Allocation, type Result, type TenantQuota } from '@allot/core';
import {
  admitPlacement,
  applyPlacement,
  emptyUsageRecord,
  movePlacement,
  releasePlacement,
  resizePlacement,
  TenantUsageRecordSchema,
  usageOf,
  withQuota,
  type Placement,
  type TenantUsageRecord,
} from '@allot/quota';
import type { z } from 'zod';
import type { Bucket, BucketChange, BucketWrite } from '../store/bucket.ts';
import type { CoordinatorClock } from '../store/clock.ts';
import { counts, countsAgainstQuota, PlacementIntentSchema, type PlacementIntent, type ReleaseCause } from '../intents.ts';
import { UsageCommitQueue } from './usage-commit.ts';

/** A value read with the revision a compare-and-set must name. */
export interface Versioned<T> {
  readonly value: T;
  readonly revision: number;
}

export type StoredIntent = Versioned<PlacementIntent>;
export type StoredUsage = Versioned<TenantUsageRecord>;

/** What a new intent says; the store fills in state, attempt, refusedBy and the stamps. */
export interface NewIntent {
  readonly requestId: string;
  readonly tenantId: string;
  readonly hash: string;
  readonly nodeId: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** The request's hugepages, counted against the tenant's maxHugepagesMiB. */
  readonly hugepages?: PlacementIntent['hugepages'];
  /** The place request as asked (kept for a later move of it). */
  readonly asked?: PlacementIntent['asked'];
  /** A move's destination: written without counting (its source counts). */
  readonly movesFrom?: PlacementIntent['movesFrom'];
  /** A member of a batch (createBatch). */
  readonly batch?: PlacementIntent['batch'];
}

export interface IntentStoreOptions {
  readonly coordinatorId: string;
  readonly clock: CoordinatorClock;
  /** How long failed and released intents are kept (per-value TTL; 0: forever). Pending and placed intents never expire. */
  readonly finishedTtlMs: number;
}

/** Rounds of re-reading a tenant's usage record that a counting transition changed meanwhile (setQuota). */
const MAX_USAGE_ROUNDS = 64;

/** Request ids may hold `:`, which KV keys may not; `/` is a KV key character no request id holds, so this is 1:1. */
export function intentKey(requestId: string): string {
  return `intent.${requestId.replaceAll(':', '/')}`;
}

export function usageKey(tenantId: string): string {
  return `usage.${tenantId}`;
}

/** The request id of an intent key, or undefined for another key. */
export function requestIdOfKey(key: string): string | undefined {
  return key.startsWith('intent.') ? key.slice('intent.'.length).replaceAll('/', ':') : undefined;
}

/** The tenant id of a usage key, or undefined for another key. */
export function tenantIdOfKey(key: string): string | undefined {
  return key.startsWith('usage.') ? key.slice('usage.'.length) : undefined;
}

export function decodeIntent(bytes: Uint8Array): Result<PlacementIntent> {
  return decode(PlacementIntentSchema, bytes, Number.POSITIVE_INFINITY);
}

export function decodeUsage(bytes: Uint8Array): Result<TenantUsageRecord> {
  return decode(TenantUsageRecordSchema, bytes, Number.POSITIVE_INFINITY);
}

/** The quota's refusal of a batch: the whole batch asked, and the member that crossed the limit. */
function batchRefusal(error: AllotError, index: number, requestId: string, intents: readonly PlacementIntent[]): Result<never> {
  const asked = { vms: intents.length, memoryMiB: 0, vcpus: 0 };
  for (const i of intents) {
    asked.memoryMiB += i.memoryMiB;
    asked.vcpus += i.vcpus;
  }
  return err('quota_exceeded', `batch of ${intents.length} VMs refused at member ${index} (${requestId}): ${error.message}`, {
    ...error.details,
    memberIndex: index,
    requestId,
    batch: asked,
  });
}

function placementOf(intent: PlacementIntent): Placement {
  const placement: Placement = { nodeId: intent.nodeId, memoryMiB: intent.memoryMiB, vcpus: intent.vcpus };
  if (intent.hugepages !== undefined) placement.hugepages = intent.hugepages;
  return placement;
}

/**
 * The one owner of the place protocol's state: placement intents and tenant usage records, in one Bucket. Every change
 * is a named transition (create, drive, takeOver, placed, failed, released); each compare-and-sets the intent at the
 * revision its caller read, and each that changes whether the intent counts against its tenant (pending and placed
 * count; failed and released do not) writes the intent and the tenant's usage record in ONE all-or-nothing batch. So a
 * tenant's usage equals the sum of its counting intents by construction, on every coordinator, whatever interleaves.
 *
 * Errors: `conflict` = the intent is not at the revision named (someone else moved it: re-read and follow);
 * `quota_exceeded` = the transition would cross a limit (nothing written); `unavailable` = the store did not answer
 * (the outcome may be unknown: re-read before deciding anything).
 *
 * Finished intents (failed, released) are written with a TTL (options.finishedTtlMs); pending and placed ones have
 * none, so a live placement's intent, and with it the tenant's quota, never expires.
 */
export class IntentStore {
  readonly #bucket: Bucket;
  readonly #o: IntentStoreOptions;
  /** The newest usage record seen per tenant (own reads and writes, and the QuotaService's watch): a batch's first guess. */
  readonly #usage = new Map<string, StoredUsage>();
  /** Counting transitions, batched across tenants (group commit: N intents + one usage record per tenant, one atomic write). */
  readonly #counted: UsageCommitQueue;

  constructor(bucket: Bucket, options: IntentStoreOptions) {
    this.#bucket = bucket;
    this.#o = options;
    this.#counted = new UsageCommitQueue(bucket, {
      key: usageKey,
      cached: (tenantId) => this.#usage.get(tenantId),
      read: (tenantId) => this.usage(tenantId),
      written: (tenantId, record, revision) => void this.#rememberWritten(tenantId, record, revision),
    });
  }

  get bucket(): Bucket {
    return this.#bucket;
  }

  async get(requestId: string): Promise<Result<StoredIntent | null>> {
    return this.#read(intentKey(requestId), PlacementIntentSchema, `placement intent ${requestId}`);
  }

  /** The tenant's usage record as stored now (null: the tenant never placed anything and has no quota). */
  async usage(tenantId: string): Promise<Result<StoredUsage | null>> {
    const read = await this.#read(usageKey(tenantId), TenantUsageRecordSchema, `usage record of ${tenantId}`);
    if (read.ok && read.value !== null) this.rememberUsage(tenantId, read.value);
    return read;
  }

  /** The newest usage record this store has seen for the tenant, without a round trip (may be stale). */
  cachedUsage(tenantId: string): StoredUsage | undefined {
    return this.#usage.get(tenantId);
  }

  /** Every tenant whose usage record this store has seen. */
  cachedTenants(): IterableIterator<StoredUsage> {
    return this.#usage.values();
  }

  /** Keeps the newest of what is held and `seen` (a watch delivers in revision order, own writes may overtake it). */
  rememberUsage(tenantId: string, seen: StoredUsage): void {
    const held = this.#usage.get(tenantId);
    if (held === undefined || held.revision < seen.revision) this.#usage.set(tenantId, seen);
  }

  // ---------- transitions ----------

  /** absent -> pending at attempt 1 on `intent.nodeId`, counted (admission against the tenant's quota). */
  async create(intent: NewIntent): Promise<Result<StoredIntent>> {
    const next: PlacementIntent = {
      ...intent,
      state: 'pending',
      attempt: 1,
      refusedBy: [],
      coordinatorId: this.#o.coordinatorId,
      updatedAt: this.#o.clock.wall(),
    };
    return this.#transition(null, next);
  }

  /**
   * absent -> pending at attempt 1 for every member of a batch, counted, in ONE atomic write with the tenant's usage
   * record: all of them or none. The quota admits the whole batch or refuses it (`quota_exceeded` naming the member that
   * crossed the limit, `memberIndex`); a member id that already has an intent is `conflict` naming it (nothing written).
   * One transition of the group commit (usage-commit.ts, submitGroup): it shares its atomic write with whatever else
   * this coordinator queued meanwhile, and a tenant's batches never race each other for its usage record. At most
   * MAX_BATCH_MESSAGES - 1 members (one write carries them all).
   */
  async createBatch(members: readonly NewIntent[]): Promise<Result<StoredIntent[]>> {
    const first = members[0];
    if (first === undefined) return ok([]);
    const tenantId = first.tenantId;
    if (members.some((m) => m.tenantId !== tenantId)) return err('invalid_request', 'a batch places for one tenant', { tenantId });
    const stamp = { coordinatorId: this.#o.coordinatorId, updatedAt: this.#o.clock.wall() };
    const intents: PlacementIntent[] = members.map((m) => ({ ...m, state: 'pending', attempt: 1, refusedBy: [], ...stamp }));
    const written = await this.#counted.submitGroup(
      tenantId,
      intents.map((i) => ({ key: intentKey(i.requestId), value: encode(i), expectedRevision: 0 })),
      (record) => {
        let next = record;
        for (const [i, intent] of intents.entries()) {
          const admitted = admitPlacement(next, placementOf(intent));
          if (!admitted.ok) return batchRefusal(admitted.error, i, intent.requestId, intents);
          next = admitted.value;
        }
        return ok(next);
      },
    );
    if (!written.ok) {
      const key = written.error.details?.['key'];
      const requestId = typeof key === 'string' ? requestIdOfKey(key) : undefined;
      return requestId === undefined ? written : this.#explain(written.error, requestId, 0);
    }
    return ok(intents.map((value, i) => ({ value, revision: written.value[i] as number })));
  }

  /**
   * pending -> pending at attempt+1: on the same node (ask it again: a retry, or following a pending intent), or moved
   * to `to.nodeId` after the intent's node refused (it joins refusedBy; the usage's per-node count moves with it, so
   * maxVmsPerNode may refuse the move with quota_exceeded).
   */
  async drive(at: StoredIntent, to?: { readonly nodeId: string }): Promise<Result<StoredIntent>> {
    if (at.value.state !== 'pending') return this.#wrongState(at, 'drive');
    const moved = to !== undefined && to.nodeId !== at.value.nodeId;
    const next: PlacementIntent = {
      ...at.value,
      attempt: at.value.attempt + 1,
      ...(moved ? { nodeId: to.nodeId, refusedBy: [...at.value.refusedBy, at.value.nodeId] } : {}),
      coordinatorId: this.#o.coordinatorId,
      updatedAt: this.#o.clock.wall(),
    };
    return this.#transition(at, next);
  }

  /** failed -> pending at attempt+1 on `nodeId`, refusals forgotten, counted again (admission against the quota). */
  async takeOver(at: StoredIntent, nodeId: string): Promise<Result<StoredIntent>> {
    if (at.value.state !== 'failed') return this.#wrongState(at, 'take over');
    const { error: _error, ...rest } = at.value;
    const next: PlacementIntent = {
      ...rest,
      state: 'pending',
      nodeId,
      attempt: at.value.attempt + 1,
      refusedBy: [],
      coordinatorId: this.#o.coordinatorId,
      updatedAt: this.#o.clock.wall(),
    };
    return this.#transition(at, next);
  }

  /** pending -> placed with the reply every retry gets (still counted: intent only). */
  async placed(at: StoredIntent, reply: PlaceReply): Promise<Result<StoredIntent>> {
    if (at.value.state !== 'pending') return this.#wrongState(at, 'mark placed');
    return this.#transition(at, {
      ...at.value,
      state: 'placed',
      reply,
      coordinatorId: this.#o.coordinatorId,
      updatedAt: this.#o.clock.wall(),
    });
  }

  /** pending -> failed: nothing is placed (and, fenced, nothing can be); the usage is given back. */
  async failed(at: StoredIntent, error: AllotError): Promise<Result<StoredIntent>> {
    if (at.value.state !== 'pending') return this.#wrongState(at, 'mark failed');
    return this.#transition(at, {
      ...at.value,
      state: 'failed',
      error,
      coordinatorId: this.#o.coordinatorId,
      updatedAt: this.#o.clock.wall(),
    });
  }

  /** placed (or pending whose node answered a released allocation) -> released; the usage is given back. */
  async released(at: StoredIntent, cause: ReleaseCause, preemptedBy?: string): Promise<Result<StoredIntent>> {
    if (at.value.state !== 'placed' && at.value.state !== 'pending') return this.#wrongState(at, 'mark released');
    return this.#transition(at, {
      ...at.value,
      state: 'released',
      releasedBy: cause,
      ...(preemptedBy === undefined ? {} : { preemptedBy }),
      coordinatorId: this.#o.coordinatorId,
      updatedAt: this.#o.clock.wall(),
    });
  }

  /**
   * placed -> placed with other amounts (a resize): the tenant's usage moves by the difference in the same atomic batch;
   * a growth past maxVcpus or maxMemoryMiB is quota_exceeded and nothing is written. `resizing` marks a resize held
   * before its agent answered (a growth's peak, or a shrink's unchanged amounts; absent: none in flight); `allocation`, when known, becomes the reply retries get.
   * `fence`, when given, becomes the intent's attempt: the fence a held growth was settled at (resize.ts, settleHold),
   * which every later drive of this placement (release, resize) sends.
   */
  async resized(
    at: StoredIntent,
    to: { readonly memoryMiB: number; readonly vcpus: number },
    resizing: PlacementIntent['resizing'],
    allocation?: Allocation,
    fence?: number,
  ): Promise<Result<StoredIntent>> {
    if (at.value.state !== 'placed') return this.#wrongState(at, 'resize');
    const { resizing: _was, ...rest } = at.value;
    const reply =
      allocation !== undefined && rest.reply !== undefined
        ? { ...rest.reply, allocation, cpuset: allocation.cpu?.cpuset ?? [] }
        : rest.reply;
    const next: PlacementIntent = {
      ...rest,
      memoryMiB: to.memoryMiB,
      vcpus: to.vcpus,
      ...(fence === undefined ? {} : { attempt: fence }),
      ...(resizing === undefined ? {} : { resizing }),
      ...(reply === undefined ? {} : { reply }),
      coordinatorId: this.#o.coordinatorId,
      updatedAt: this.#o.clock.wall(),
    };
    const intentWrite: BucketWrite = { key: intentKey(next.requestId), value: encode(next), expectedRevision: at.revision };
    if (to.memoryMiB === at.value.memoryMiB && to.vcpus === at.value.vcpus) {
      const written = await this.#bucket.write([intentWrite]);
      if (!written.ok) return this.#explain(written.error, next.requestId, at.revision);
      return ok({ value: next, revision: written.value[0] as number });
    }
    const written = await this.#counted.submit(next.tenantId, {
      intent: intentWrite,
      apply: (record) => resizePlacement(record, placementOf(at.value), placementOf(next)),
    });
    if (!written.ok) return this.#explain(written.error, next.requestId, at.revision);
    return ok({ value: next, revision: written.value });
  }

  /** placed -> placed with `movingTo` set (a move of it starts) or cleared (aborted, or its destination gone): no count changes. */
  async markMoving(at: StoredIntent, movingTo: PlacementIntent['movingTo']): Promise<Result<StoredIntent>> {
    if (at.value.state !== 'placed') return this.#wrongState(at, 'move');
    const { movingTo: _was, ...rest } = at.value;
    return this.#transition(at, {
      ...rest,
      ...(movingTo === undefined ? {} : { movingTo }),
      coordinatorId: this.#o.coordinatorId,
      updatedAt: this.#o.clock.wall(),
    });
  }

  /**
   * A move destination (pending or placed) -> the same, claimed for its confirm or its abort (moves/move.ts), with the
   * reply its node answered since (a confirm's activation) when given: no count changes.
   */
  async claimSettling(
    at: StoredIntent,
    settling: NonNullable<PlacementIntent['settling']>,
    reply?: PlaceReply,
  ): Promise<Result<StoredIntent>> {
    if (!counts(at.value.state)) return this.#wrongState(at, `claim the ${settling} of`);
    return this.#transition(at, {
      ...at.value,
      settling,
      ...(reply === undefined ? {} : { reply }),
      coordinatorId: this.#o.coordinatorId,
      updatedAt: this.#o.clock.wall(),
    });
  }

  /**
   * A move confirmed: in ONE atomic batch the source becomes released (cause `move`) and the destination the placement
   * (movesFrom dropped, `reply` its answer from now on), the tenant's usage moving the VM from the source's node to the
   * destination's, so the VM counts once before, during and after. A source that no longer counts (released meanwhile)
   * leaves the destination to be admitted alone against the quota. `conflict`: either intent moved (re-read, follow).
   */
  async moveConfirmed(
    source: StoredIntent | null,
    dest: StoredIntent,
    reply: PlaceReply,
  ): Promise<Result<{ source: StoredIntent | null; dest: StoredIntent }>> {
    if (dest.value.movesFrom === undefined || dest.value.state !== 'placed') return this.#wrongState(dest, 'confirm the move to');
    const { movesFrom, settling: _claim, ...destRest } = dest.value;
    return this.#handOver(source, 'move', dest, { ...destRest, movedFrom: movesFrom, reply });
  }

  /**
   * A moving source ended on its node while its destination is still pending or being aborted (moves.endPlacement): in
   * ONE batch the source is released (`cause`) and the destination takes its count, claimed `abort` (movesFrom becomes
   * movedFrom), so the VM counts until the destination is proven gone (released by the abort or the reconciler).
   */
  async sourceEnded(
    source: StoredIntent,
    dest: StoredIntent,
    cause: ReleaseCause,
  ): Promise<Result<{ source: StoredIntent | null; dest: StoredIntent }>> {
    if (dest.value.movesFrom === undefined || !counts(dest.value.state)) return this.#wrongState(dest, 'hand the count to');
    const { movesFrom, ...destRest } = dest.value;
    return this.#handOver(source, cause, dest, { ...destRest, movedFrom: movesFrom, settling: 'abort' });
  }

  /** The source released (`cause`) and `nextDest` written, the usage moving the VM from one to the other: one batch. */
  async #handOver(
    source: StoredIntent | null,
    cause: ReleaseCause,
    dest: StoredIntent,
    destNext: PlacementIntent,
  ): Promise<Result<{ source: StoredIntent | null; dest: StoredIntent }>> {
    const stamp = { coordinatorId: this.#o.coordinatorId, updatedAt: this.#o.clock.wall() };
    const nextDest: PlacementIntent = { ...destNext, ...stamp };
    if (source === null || !countsAgainstQuota(source.value) || source.value.tenantId !== dest.value.tenantId) {
      const alone = await this.#transition(dest, nextDest);
      return alone.ok ? ok({ source, dest: alone.value }) : alone;
    }
    const { movingTo: _to, ...sourceRest } = source.value;
    const nextSource: PlacementIntent = { ...sourceRest, state: 'released', releasedBy: cause, ...stamp };
    const tenantId = dest.value.tenantId;
    let usage: StoredUsage | null | undefined = this.#usage.get(tenantId);
    for (let round = 0; round < MAX_USAGE_ROUNDS; round++) {
      if (usage === undefined) {
        const read = await this.usage(tenantId);
        if (!read.ok) return read;
        usage = read.value;
      }
      const record = releasePlacement(usage?.value ?? emptyUsageRecord(tenantId), placementOf(source.value));
      const after: TenantUsageRecord = { ...record, usage: applyPlacement(record.usage, placementOf(nextDest)) };
      const written = await this.#bucket.write([
        {
          key: intentKey(nextSource.requestId),
          value: encode(nextSource),
          expectedRevision: source.revision,
          ...(this.#o.finishedTtlMs <= 0 ? {} : { ttlMs: this.#o.finishedTtlMs }),
        },
        { key: intentKey(nextDest.requestId), value: encode(nextDest), expectedRevision: dest.revision },
        { key: usageKey(tenantId), value: encode(after), expectedRevision: usage?.revision ?? 0 },
      ]);
      if (written.ok) {
        this.#rememberWritten(tenantId, after, written.value[2] as number);
        return ok({
          source: { value: nextSource, revision: written.value[0] as number },
          dest: { value: nextDest, revision: written.value[1] as number },
        });
      }
      if (written.error.code !== 'conflict') return written;
      // Another writer: the usage record (re-read it and go again) or one of the intents (the caller re-reads).
      const [s, d] = await Promise.all([this.get(source.value.requestId), this.get(dest.value.requestId)]);
      if (!s.ok) return s;
      if (!d.ok) return d;
      if (s.value?.revision !== source.revision) return this.#explain(written.error, source.value.requestId, source.revision);
      if (d.value?.revision !== dest.revision) return this.#explain(written.error, dest.value.requestId, dest.revision);
      usage = undefined;
    }
    return err('unavailable', `tenant ${tenantId}: usage record still contended; retry`, { tenantId });
  }

  // ---------- quota records ----------

  /** Creates or replaces the tenant's limits; the counters stay as they are (true, since they always exist). */
  async setQuota(quota: TenantQuota): Promise<Result<StoredUsage>> {
    for (let round = 0; round < MAX_USAGE_ROUNDS; round++) {
      const read = await this.usage(quota.tenantId);
      if (!read.ok) return read;
      const held = read.value ?? { value: emptyUsageRecord(quota.tenantId), revision: 0 };
      const next = withQuota(held.value, quota);
      if (!next.ok) return next;
      const written = await this.#bucket.write([
        { key: usageKey(quota.tenantId), value: encode(next.value), expectedRevision: held.revision },
      ]);
      if (written.ok) return ok(this.#rememberWritten(quota.tenantId, next.value, written.value[0] as number));
      if (written.error.code !== 'conflict') return written;
    }
    return err('unavailable', `tenant ${quota.tenantId}: usage record still contended; retry`, { tenantId: quota.tenantId });
  }

  /**
   * Rebuilds the tenant's counters from its counting intents (a scan of the bucket), written only if no counting
   * transition of the tenant landed during the scan (the record's revision is the guard); otherwise scans again.
   */
  async recount(tenantId: string): Promise<Result<{ before: TenantUsageRecord | null; after: TenantUsageRecord }>> {
    for (let round = 0; round < 8; round++) {
      const read = await this.usage(tenantId);
      if (!read.ok) return read;
      const scanned = await this.scan();
      if (!scanned.ok) return scanned;
      const placements = scanned.value
        .filter((i) => i.value.tenantId === tenantId && countsAgainstQuota(i.value))
        .map((i) => placementOf(i.value));
      const before = read.value?.value ?? null;
      const after: TenantUsageRecord = { ...(before ?? emptyUsageRecord(tenantId)), usage: usageOf(placements) };
      const written = await this.#bucket.write([
        { key: usageKey(tenantId), value: encode(after), expectedRevision: read.value?.revision ?? 0 },
      ]);
      if (written.ok) {
        this.#rememberWritten(tenantId, after, written.value[0] as number);
        return ok({ before, after });
      }
      if (written.error.code !== 'conflict') return written;
    }
    return err('unavailable', `tenant ${tenantId}: placements kept changing during the recount; retry`, { tenantId });
  }

  /**
   * Stores an intent an earlier version wrote under another key (legacy-migration.ts) as it is, if its key is absent
   * (`conflict` when present: adopted already). A pending or placed one is counted in the same batch whatever the
   * limits say: its VM is already there, and usage must equal the counting intents.
   */
  async adopt(intent: PlacementIntent): Promise<Result<StoredIntent>> {
    const key = intentKey(intent.requestId);
    const intentWrite: BucketWrite = {
      key,
      value: encode(intent),
      expectedRevision: 0,
      ...(counts(intent.state) || this.#o.finishedTtlMs <= 0 ? {} : { ttlMs: this.#o.finishedTtlMs }),
    };
    const written = countsAgainstQuota(intent)
      ? await this.#counted.submit(intent.tenantId, {
          intent: intentWrite,
          apply: (record) => ok({ ...record, usage: applyPlacement(record.usage, placementOf(intent)) }),
        })
      : await this.#bucket.write([intentWrite]).then((w) => (w.ok ? ok(w.value[0] as number) : w));
    if (!written.ok) return this.#explain(written.error, intent.requestId, 0);
    return ok({ value: intent, revision: written.value });
  }

  /** Every stored intent (a full pass over the bucket: operators' recount, the sweep; not for hot paths). */
  async scan(): Promise<Result<StoredIntent[]>> {
    const found = new Map<string, StoredIntent>();
    const onChange = (change: BucketChange) => {
      const requestId = requestIdOfKey(change.key);
      if (requestId === undefined) return;
      if ('deleted' in change) {
        found.delete(requestId);
        return;
      }
      const intent = decodeIntent(change.value);
      if (intent.ok) found.set(requestId, { value: intent.value, revision: change.revision });
    };
    try {
      const watch = await this.#bucket.watch(onChange);
      await watch.caughtUp;
      watch.stop();
    } catch (e) {
      return err('unavailable', `cannot scan the placement intents: ${(e as Error).message}`);
    }
    return ok([...found.values()]);
  }

  // ---------- the one write path ----------

  /**
   * Writes `next` over `at` (null: the key must be absent). When the intent starts, stops or moves counting, the
   * tenant's usage record changes in the same batch, shared with every counting transition (of any tenant) queued on
   * this coordinator meanwhile (usage-commit.ts); a usage record changed by another coordinator is re-read and the
   * batch tried again, an intent changed meanwhile is `conflict` (for that intent alone).
   */
  async #transition(at: StoredIntent | null, next: PlacementIntent): Promise<Result<StoredIntent>> {
    const key = intentKey(next.requestId);
    const expected = at?.revision ?? 0;
    const intentWrite: BucketWrite = {
      key,
      value: encode(next),
      expectedRevision: expected,
      ...(counts(next.state) || this.#o.finishedTtlMs <= 0 ? {} : { ttlMs: this.#o.finishedTtlMs }),
    };
    const was = at !== null && countsAgainstQuota(at.value) ? placementOf(at.value) : null;
    const will = countsAgainstQuota(next) ? placementOf(next) : null;
    if (was?.nodeId === will?.nodeId) {
      const written = await this.#bucket.write([intentWrite]);
      if (!written.ok) return this.#explain(written.error, next.requestId, expected);
      return ok({ value: next, revision: written.value[0] as number });
    }
    const written = await this.#counted.submit(next.tenantId, {
      intent: intentWrite,
      apply: (record) =>
        was === null
          ? admitPlacement(record, will as Placement)
          : will === null
            ? ok(releasePlacement(record, was))
            : movePlacement(record, was, will.nodeId),
    });
    if (!written.ok) return this.#explain(written.error, next.requestId, expected);
    return ok({ value: next, revision: written.value });
  }

  #explain(error: AllotError, requestId: string, expected: number): Result<never> {
    if (error.code !== 'conflict') return { ok: false, error };
    const message =
      expected === 0 ? `placement intent ${requestId} exists` : `placement intent ${requestId} changed since revision ${expected}`;
    return err('conflict', message, { requestId, revision: expected });
  }

  #wrongState(at: StoredIntent, what: string): Result<never> {
    return err('conflict', `cannot ${what} placement ${at.value.requestId}: it is ${at.value.state}`, {
      requestId: at.value.requestId,
      state: at.value.state,
    });
  }

  #rememberWritten(tenantId: string, record: TenantUsageRecord, revision: number): StoredUsage {
    const stored = { value: record, revision };
    this.rememberUsage(tenantId, stored);
    return stored;
  }

  async #read<S extends z.ZodType>(key: string, schema: S, what: string): Promise<Result<Versioned<z.output<S>> | null>> {
    const read = await this.#bucket.get(key);
    if (!read.ok) return read;
    if (read.value === null) return ok(null);
    const value = decode(schema, read.value.value, Number.POSITIVE_INFINITY);
    if (!value.ok) return err('internal', `${what}: stored value is invalid: ${value.error.message}`, { key });
    return ok({ value: value.value, revision: read.value.revision });
  }
}
