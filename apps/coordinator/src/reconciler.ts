import { errorOf, type AllotError } from '@allot/core';
import type { Logger } from 'pino';
import type { AgentCaller } from './agents.ts';
import { BatchSettler, type BatchSettleOutcome } from './batch-settle.ts';
import type { ReconcileConfig } from './config.ts';
import { counts, countsAgainstQuota, type PlacementIntent } from './intents.ts';
import { decodeIntent, requestIdOfKey, type IntentStore, type StoredIntent } from './intents/intent-store.ts';
import { replyFromNode } from './intents/pending-placement.ts';
import { confirmMove, finishAbort, type ConfirmDeps } from './moves/move.ts';
import { ResizeHolds, type HoldRoundOutcome } from './resize-holds.ts';
import type { BucketChange } from './store/bucket.ts';
import type { CoordinatorClock } from './store/clock.ts';

export interface ReconcilerDeps {
  readonly store: IntentStore;
  readonly agents: AgentCaller;
  readonly config: ReconcileConfig;
  readonly logger: Logger;
  readonly clock: CoordinatorClock;
  /**
   * The node is gone on the operator's word (decommissioned, node-states.ts) and lost: a pending intent it does not
   * answer for is failed without its fence (decommission.ts argues why that is the operator's call to make).
   */
  readonly nodeGone?: (nodeId: string) => boolean;
}

/** What one round did with one stale pending intent. */
export type ReconcileOutcome = 'placed' | 'released' | 'failed' | 'left' | 'raced';

export interface ReconcileRound {
  /** Pending intents old enough to be looked at. */
  readonly stale: number;
  readonly outcomes: Readonly<Record<string, ReconcileOutcome>>;
  /** Resize growths held without an answer past the bound, by request id: what settling each did. */
  readonly holds?: Readonly<Record<string, HoldRoundOutcome>>;
  /** Move destinations driven this round, by request id: what settling each did (settleMoves). */
  readonly moves?: Readonly<Record<string, MoveRoundOutcome>>;
  /** Failed batches rolled back this round, by `<tenant>/<batchId>` (batch-settle.ts). */
  readonly batches?: Readonly<Record<string, BatchSettleOutcome>>;
}

/**
 * `confirmed`: the confirm finished (claimed, or found active); `aborted`: the abort finished (claimed, or the hold found
 * ended on its node); `held`: an unclaimed reservation, its scheduler's; `left`: try again next round.
 */
export type MoveRoundOutcome = 'confirmed' | 'aborted' | 'held' | 'left';

/** A move's destination the reconciler follows: held (placed, `movesFrom`), or claimed for its confirm or abort. */
function isMoveDestination(intent: PlacementIntent): boolean {
  return counts(intent.state) && (intent.settling !== undefined || (intent.state === 'placed' && intent.movesFrom !== undefined));
}

/**
 * Settles placement intents left `pending` by a client that never retried (its coordinator died, it gave up; or died
 * after answering, before its deferred `placed` write: place-flow.ts). For each
 * intent pending at the same revision for `pendingOlderThanMs`, it fences the request on the intent's node at the
 * intent's attempt (the agent's `fence` verb: after its reply no allocate of that request at that fence or below can
 * commit there), then moves the intent by compare-and-set, through the IntentStore:
 * - the node holds it (active or reserved) -> `placed` with that allocation (a later retry gets it; usage stays counted);
 * - the node holds it released (or its reservation expired) -> `released` (usage given back);
 * - the node holds nothing -> `failed` (usage given back); a later allocate of this attempt is refused by the fence;
 * - no answer -> left for the next round, unless the node is gone (decommissioned and lost): then `failed`.
 * A CAS lost to a retry driving the intent (attempt+1) is `raced`: the driver owns it now.
 *
 * Ages are measured on this coordinator's monotonic clock from when it first saw that revision of the intent, never from
 * `updatedAt` (another coordinator's wall clock). Every coordinator runs one; none needs to be elected. The same rounds
 * settle resize growths held without an answer for as long (resize-holds.ts).
 */
export class Reconciler {
  readonly #d: ReconcilerDeps;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<unknown> | undefined;
  /** Pending intents by request id: the revision seen and when (monotonic) this coordinator first saw it. */
  readonly #pending = new Map<string, { revision: number; since: number }>();
  #watch: Promise<{ readonly caughtUp: Promise<void>; stop(): void }> | undefined;
  /** Move destinations (isMoveDestination) by request id: the revision seen and since when (monotonic). */
  readonly #moves = new Map<string, { revision: number; since: number; aborting: boolean }>();

  /** Resize growths held without an answer, settled by the same rounds (resize-holds.ts). */
  readonly #holds: ResizeHolds;
  /** Batches with a member failed are rolled back whole by the same rounds (batch-settle.ts). */
  readonly #batches: BatchSettler;

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
    this.#holds = new ResizeHolds({ ...deps, olderThanMs: deps.config.pendingOlderThanMs });
    this.#batches = new BatchSettler(deps);
  }

  #onChange = (change: BucketChange): void => {
    const requestId = requestIdOfKey(change.key);
    if (requestId === undefined) return;
    if ('deleted' in change) {
      this.#holds.observe(requestId, null, 0);
      this.#batches.observe(requestId, null);
      this.#pending.delete(requestId);
      this.#moves.delete(requestId);
      return;
    }
    const intent = decodeIntent(change.value);
    this.#holds.observe(requestId, intent.ok ? intent.value : null, change.revision);
    if (intent.ok) this.#batches.observe(requestId, intent.value);
    if (intent.ok && isMoveDestination(intent.value)) {
      if (this.#moves.get(requestId)?.revision !== change.revision)
        this.#moves.set(requestId, {
          revision: change.revision,
          since: this.#d.clock.monotonic(),
          aborting: intent.value.settling === 'abort',
        });
    } else this.#moves.delete(requestId);
    if (!intent.ok || intent.value.state !== 'pending') {
      this.#pending.delete(requestId);
      return;
    }
    const held = this.#pending.get(requestId);
    if (held?.revision !== change.revision) this.#pending.set(requestId, { revision: change.revision, since: this.#d.clock.monotonic() });
  };

  /** Follows every intent write (the latest value per key at first, then each change); resolves once caught up. */
  async #follow(): Promise<void> {
    const watch = (this.#watch ??= this.#d.store.bucket.watch(this.#onChange));
    try {
      await (
        await watch
      ).caughtUp;
    } catch (e) {
      // A watch that could not be created (NATS unreachable) is tried again next round, not kept failing forever.
      if (this.#watch === watch) this.#watch = undefined;
      throw e;
    }
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      if (this.#running !== undefined) return; // the previous round is still going
      this.#running = this.reconcileOnce()
        .catch((e: unknown) => this.#d.logger.warn({ error: (e as Error).message }, 'reconcile round failed'))
        .finally(() => (this.#running = undefined));
    }, this.#d.config.everyMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
    const watch = this.#watch;
    this.#watch = undefined;
    // A watch whose creation failed has nothing to stop.
    (await watch?.catch(() => undefined))?.stop();
  }

  /** One round over the pending intents old enough to be looked at (each re-read before it is settled). */
  async reconcileOnce(): Promise<ReconcileRound> {
    const outcomes: Record<string, ReconcileOutcome> = {};
    try {
      await this.#follow();
    } catch (e) {
      this.#d.logger.warn({ error: (e as Error).message }, 'reconcile: cannot follow placement intents');
      return { stale: 0, outcomes };
    }
    const now = this.#d.clock.monotonic();
    const candidates = [...this.#pending].filter(([, seen]) => now - seen.since >= this.#d.config.pendingOlderThanMs);
    let stale = 0;
    for (const [requestId, seen] of candidates) {
      const read = await this.#d.store.get(requestId);
      if (!read.ok || read.value === null || read.value.value.state !== 'pending') continue;
      // Driven since (a new revision): its age starts again from now; the watch will say so too.
      if (read.value.revision !== seen.revision) {
        this.#pending.set(requestId, { revision: read.value.revision, since: this.#d.clock.monotonic() });
        continue;
      }
      stale++;
      outcomes[requestId] = await this.#settle(read.value, now - seen.since);
    }
    const holds = await this.#holds.settleDue();
    const moves = await this.#settleMoves(now);
    const batches = await this.#batches.settleDue();
    return { stale, outcomes, holds, moves, batches };
  }

  /**
   * Drives moves left half-settled (their coordinator died, timed out, or met a node down) to their end:
   * - claimed for its abort: the abort is finished at once, each round (the destination released on its node, a pending
   *   one fenced first; its source ended meanwhile or its scheduler asked it gone: no need to wait);
   * - claimed for its confirm, at the same revision past `pendingOlderThanMs`: the confirm is rolled forward (source
   *   released on its node, then the batch);
   * - unclaimed, at the same revision past the bound, with its source ended outside the move: the abort is finished;
   * - unclaimed, at the same revision past the bound, asked of its node (`fence` at its attempt, which reads it): found
   *   active, a confirm got past its activate and died before its claim, so it is rolled forward; found ended (its hold
   *   expired, its node forgot it), the abort is finished; a reservation is its scheduler's (confirm, abort, or it
   *   expires), asked again one bound later.
   * Every step is the confirm's or the abort's own (moves/move.ts): claimed by compare-and-set, idempotent on the nodes,
   * so several coordinators (and the move's scheduler) may drive the same move at once.
   */
  async #settleMoves(now: number): Promise<Record<string, MoveRoundOutcome>> {
    const outcomes: Record<string, MoveRoundOutcome> = {};
    const deps: ConfirmDeps = {
      store: this.#d.store,
      agents: this.#d.agents,
      logger: this.#d.logger,
      ...(this.#d.nodeGone ? { nodeGone: this.#d.nodeGone } : {}),
    };
    const due = [...this.#moves].filter(([, seen]) => seen.aborting || now - seen.since >= this.#d.config.pendingOlderThanMs);
    for (const [requestId, seen] of due) {
      const read = await this.#d.store.get(requestId);
      if (!read.ok || read.value === null) continue;
      const intent = read.value.value;
      if (!isMoveDestination(intent)) continue;
      const aborting = intent.settling === 'abort';
      if (!aborting && read.value.revision !== seen.revision) continue;
      this.#moves.set(requestId, { revision: read.value.revision, since: this.#d.clock.monotonic(), aborting });
      const outcome = await this.#settleMove(deps, read.value);
      outcomes[requestId] = outcome;
      if (outcome !== 'held')
        this.#d.logger.info(
          { requestId, tenantId: intent.tenantId, node: intent.nodeId, settling: intent.settling, outcome },
          outcome === 'left' ? 'reconcile: half-settled move left for the next round' : `reconciled a half-settled move: ${outcome}`,
        );
    }
    return outcomes;
  }

  async #settleMove(deps: ConfirmDeps, at: StoredIntent): Promise<MoveRoundOutcome> {
    const intent = at.value;
    const from = intent.movesFrom ?? intent.movedFrom;
    if (intent.settling === 'abort' || from === undefined) {
      const aborted = await finishAbort(deps, at, 'its move was aborted (reconciled)');
      return aborted.ok ? 'aborted' : 'left';
    }
    if (intent.settling !== 'confirm') {
      // Its source ended outside the move (before this destination existed, so nothing handed it the count): the VM is
      // gone, and its held copy goes too.
      const source = await this.#d.store.get(from.requestId);
      if (!source.ok) return 'left';
      if (source.value === null || !countsAgainstQuota(source.value.value)) {
        const aborted = await finishAbort(deps, at, `its source ${from.requestId} ended (reconciled)`);
        return aborted.ok ? 'aborted' : 'left';
      }
      const fenced = await this.#d.agents.call(
        intent.nodeId,
        'fence',
        { requestId: intent.requestId, fence: intent.attempt },
        {
          requestId: intent.requestId,
        },
      );
      if (!fenced.ok) return 'left';
      const status = fenced.value.allocation?.status;
      if (status === 'reserved' || status === 'releasing') return 'held';
      if (status !== 'active') {
        const aborted = await finishAbort(deps, at, 'its hold ended on its node (reconciled)');
        return aborted.ok ? 'aborted' : 'left';
      }
    }
    const confirmed = await confirmMove(deps, { requestId: from.moveRequestId, allocationId: from.allocationId }, intent.tenantId);
    return confirmed.ok ? 'confirmed' : 'left';
  }

  /** Settles one pending intent now, whatever its age (decommission.ts): the same steps as a round's. */
  async settleNow(at: StoredIntent): Promise<ReconcileOutcome> {
    return this.#settle(at, 0);
  }

  async #settle(at: StoredIntent, ageMs: number): Promise<ReconcileOutcome> {
    const intent = at.value;
    const { requestId, tenantId, nodeId } = intent;
    const fenced = await this.#d.agents.call(nodeId, 'fence', { requestId, fence: intent.attempt }, { requestId });
    if (!fenced.ok && (fenced.error.code === 'unavailable' || fenced.error.code === 'timeout') && this.#d.nodeGone?.(nodeId) === true) {
      const error = errorOf(
        'unavailable',
        `placement ${requestId} was pending on node ${nodeId}, which was decommissioned while lost; retry to place it elsewhere`,
        { requestId, nodeId, reason: 'node_decommissioned' },
      );
      const written = await this.#d.store.failed(at, batchMember(intent, error));
      if (!written.ok) return written.error.code === 'conflict' ? 'raced' : 'left';
      this.#batches.observe(requestId, written.value.value);
      this.#pending.delete(requestId);
      this.#d.logger.warn(
        { requestId, tenantId, node: nodeId, fence: intent.attempt },
        'pending placement on a decommissioned lost node failed; quota given back',
      );
      return 'failed';
    }
    if (!fenced.ok) {
      this.#d.logger.debug(
        { requestId, node: nodeId, code: fenced.error.code },
        'reconcile: node did not answer; pending intent left for the next round',
      );
      return 'left';
    }
    const allocation = fenced.value.allocation;
    let written;
    let to: ReconcileOutcome;
    if (allocation === null) {
      const error = errorOf(
        'unavailable',
        `placement ${requestId} was abandoned pending on node ${nodeId}, which holds no allocation for it (fenced at attempt ${intent.attempt}); retry to place it again`,
        { requestId, nodeId },
      );
      written = await this.#d.store.failed(at, batchMember(intent, error));
      to = 'failed';
    } else if (allocation.status === 'active' || allocation.status === 'reserved') {
      written = await this.#d.store.placed(at, replyFromNode(intent, allocation));
      to = 'placed';
    } else {
      written = await this.#d.store.released(at, allocation.expiresAt !== undefined ? 'expiry' : 'agent');
      to = 'released';
    }
    if (!written.ok) return written.error.code === 'conflict' ? 'raced' : 'left';
    this.#batches.observe(requestId, written.value.value);
    this.#pending.delete(requestId);
    this.#d.logger.info({ requestId, tenantId, node: nodeId, ageMs, to, fence: intent.attempt }, 'reconciled pending placement intent');
    return to;
  }
}

/**
 * The error a failed intent keeps, as its batch answers it to a retry when it is a batch member: the batch failed with it
 * (batch-settle.ts rolls back its siblings), so a retry with the same ids gets `conflict` naming the batch and member.
 */
function batchMember(intent: PlacementIntent, error: AllotError): AllotError {
  const b = intent.batch;
  if (b === undefined) return error;
  return errorOf(
    'conflict',
    `batch ${b.batchId}: member ${b.index} (${intent.requestId}) was abandoned: ${error.message.replace(/; retry.*$/, '')}; the batch was rolled back, place it again with new request ids`,
    { ...error.details, batchId: b.batchId, memberIndex: b.index, nodeCode: error.code },
  );
}
