import { counts, type PlacementIntent } from './intents.ts';
import { batchFailureCause, marksBatchFailure, rollBackMembers, type RollbackDeps } from './place-batch.ts';

/*
 * A batch is placed all or nothing, also when its coordinator died mid-batch and no client retries it: the reconciler
 * settles each member alone (held: placed; nothing at its fence: failed), and this module finishes the batch. Once
 * any member says the batch failed (failed, by anyone: its flow, a reconciler, a decommission; or rolled back), every
 * sibling still counted is rolled back at its fence (place-batch.ts rollBackMembers: cause `batch`, idempotent release
 * ids, quota back), as the flow's own rollback does. A member released for another cause (its tenant, expiry, ...) was
 * placed, so its batch had succeeded: it never makes the others go.
 *
 * Every coordinator's reconciler does this; rolling back is idempotent (fenced, the same release ids, compare-and-set),
 * so two at once, or one beside a retry of the batch, end the same. A member a reconciler marks placed while another
 * rolls the batch back is found counted again next round and rolled back then.
 */

/** What a round did with one failed batch still holding members. */
export type BatchSettleOutcome = 'rolled-back' | 'left';

/** One batch as the reconciler's watch has seen it: its members' request ids, and what each says. */
interface SeenBatch {
  readonly tenantId: string;
  readonly batchId: string;
  readonly members: Map<string, { readonly counted: boolean; readonly failed: boolean }>;
}

/**
 * The batches whose members the watch delivers, kept while any member is still counted. The key tells apart batches of
 * one tenant that share an id over time: member 0's request id (`first`), unique among live intents.
 */
export class BatchSettler {
  readonly #d: RollbackDeps;
  readonly #batches = new Map<string, SeenBatch>();
  /** Batch key by member request id (a member's intent is deleted by its key alone). */
  readonly #byMember = new Map<string, string>();

  constructor(deps: RollbackDeps) {
    this.#d = deps;
  }

  /** A member's intent as the watch (or this coordinator's own write) delivers it; null: deleted. */
  observe(requestId: string, intent: PlacementIntent | null): void {
    const key = intent?.batch === undefined ? this.#byMember.get(requestId) : batchKey(intent);
    if (key === undefined) return;
    let seen = this.#batches.get(key);
    if (intent === null || intent.batch === undefined) {
      seen?.members.delete(requestId);
      this.#byMember.delete(requestId);
    } else {
      if (seen === undefined) {
        seen = { tenantId: intent.tenantId, batchId: intent.batch.batchId, members: new Map() };
        this.#batches.set(key, seen);
      }
      seen.members.set(requestId, { counted: counts(intent.state), failed: marksBatchFailure(intent) });
      this.#byMember.set(requestId, key);
    }
    // Forgotten once none counts: when all its members were seen (the watch delivers them in any order), or one is gone.
    if (seen === undefined || [...seen.members.values()].some((m) => m.counted)) return;
    if (intent === null || seen.members.size >= (intent.batch?.size ?? 0)) this.#forget(key, seen);
  }

  /** Rolls back every batch with a member failed and another still counted. Outcomes by `<tenant>/<batchId>`. */
  async settleDue(): Promise<Record<string, BatchSettleOutcome>> {
    const outcomes: Record<string, BatchSettleOutcome> = {};
    const due = [...this.#batches].filter(([, b]) => [...b.members.values()].some((m) => m.failed));
    for (const [, b] of due) {
      const reads = await Promise.all([...b.members.keys()].map((id) => this.#d.store.get(id)));
      const members = reads.flatMap((r) => (r.ok && r.value !== null ? [r.value] : []));
      for (const at of members) this.observe(at.value.requestId, at.value);
      const cause = batchFailureCause(
        b.batchId,
        members.map((at) => at.value),
      );
      const counted = members.filter((at) => counts(at.value.state));
      if (counted.length === 0 || !members.some((at) => marksBatchFailure(at.value))) continue;
      const left = await rollBackMembers(this.#d, b.batchId, counted, cause);
      outcomes[`${b.tenantId}/${b.batchId}`] = left.length === 0 && reads.every((r) => r.ok) ? 'rolled-back' : 'left';
      this.#d.logger?.info(
        { tenantId: b.tenantId, batchId: b.batchId, code: cause.code, rolledBack: counted.length - left.length, left },
        left.length === 0 ? 'reconcile: a failed batch was rolled back' : 'reconcile: a failed batch is not rolled back yet',
      );
      for (const at of counted) {
        const read = await this.#d.store.get(at.value.requestId);
        if (read.ok && read.value !== null) this.observe(at.value.requestId, read.value.value);
      }
    }
    return outcomes;
  }

  #forget(key: string, seen: SeenBatch): void {
    for (const id of seen.members.keys()) this.#byMember.delete(id);
    this.#batches.delete(key);
  }
}

function batchKey(intent: PlacementIntent): string | undefined {
  const b = intent.batch;
  if (b === undefined) return undefined;
  return JSON.stringify([intent.tenantId, b.batchId, b.size, b.first ?? null]);
}
