import { decode, errorOf, type PlaceReply } from '@allot/core';
import type { Logger } from 'pino';
import type { AgentClient } from './agents.ts';
import type { ReconcileConfig } from './config.ts';
import { PlacementIntentSchema, type PlacementIntent } from './intents.ts';
import type { KvStore, Versioned } from './kv-store.ts';
import type { QuotaService } from './quotas.ts';

export interface ReconcilerDeps {
  readonly coordinatorId: string;
  readonly intents: KvStore<typeof PlacementIntentSchema>;
  readonly quotas: QuotaService;
  readonly agents: AgentClient;
  readonly config: ReconcileConfig;
  readonly logger: Logger;
  readonly now: () => number;
}

/** What one round did with one stale pending intent. */
export type ReconcileOutcome = 'placed' | 'failed' | 'left' | 'raced';

export interface ReconcileRound {
  /** Pending intents old enough to be looked at. */
  readonly stale: number;
  readonly outcomes: Readonly<Record<string, ReconcileOutcome>>;
}

/**
 * Settles placement intents left `pending` by a client that never retried (its coordinator died, it gave up): asks the
 * intent's node, without side effects, whether it holds an allocation for the request id, then moves the intent by
 * compare-and-set: held -> `placed` with that allocation (a later retry gets it; the quota stays counted); not held ->
 * `failed` and the quota reservation given back; no answer -> left for the next round.
 *
 * Every coordinator runs one; none needs to be elected. Two reconcilers (or a reconciler and a client retry) settling
 * the same intent race on its revision: only one CAS lands, the loser leaves it, and only the writer of `failed` gives
 * the quota back. A retry whose agent commits after the reconciler wrote `failed` loses its `placed` CAS and undoes the
 * commit (the place flow's undo rule), so the node and the intent agree either way.
 */
export class Reconciler {
  readonly #d: ReconcilerDeps;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<unknown> | undefined;
  /**
   * Pending intents by request id, with their last change, kept from a watch of the bucket: a round looks only at
   * these, never at every stored intent (the bucket keeps a week of placements).
   */
  readonly #pending = new Map<string, number>();
  /** The bucket revision (stream sequence) the watch has applied up to. */
  #seen = 0;
  #watch: { stop(): void } | undefined;

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
  }

  /** Follows every intent write: the last value per key at first, then each change. */
  async #follow(): Promise<void> {
    if (this.#watch !== undefined) return;
    const watch = await this.#d.intents.kv.watch();
    this.#watch = watch;
    void (async () => {
      for await (const entry of watch) {
        this.#seen = Math.max(this.#seen, entry.revision);
        if (entry.operation !== 'PUT' || entry.length === 0) continue;
        const intent = decode(PlacementIntentSchema, entry.value, Number.POSITIVE_INFINITY);
        if (!intent.ok) continue;
        if (intent.value.state === 'pending' && intent.value.nodeId !== undefined) this.#pending.set(intent.value.requestId, intent.value.updatedAt);
        else this.#pending.delete(intent.value.requestId);
      }
    })().catch((e: unknown) => this.#d.logger.warn({ error: (e as Error).message }, 'reconcile: intent watch ended'));
  }

  /** Waits (briefly) until the watch has applied every write the bucket held when the round began. */
  async #catchUp(timeoutMs = 2_000): Promise<void> {
    await this.#follow();
    const status = await this.#d.intents.kv.status();
    const last = status.streamInfo.state.last_seq;
    const deadline = Date.now() + timeoutMs;
    while (this.#seen < last && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
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
    this.#watch?.stop();
    this.#watch = undefined;
  }

  /** One round over the pending intents old enough to be looked at (each re-read before it is settled). */
  async reconcileOnce(): Promise<ReconcileRound> {
    const outcomes: Record<string, ReconcileOutcome> = {};
    try {
      await this.#catchUp();
    } catch (e) {
      this.#d.logger.warn({ error: (e as Error).message }, 'reconcile: cannot follow placement intents');
      return { stale: 0, outcomes };
    }
    const cutoff = this.#d.now() - this.#d.config.pendingOlderThanMs;
    const candidates = [...this.#pending].filter(([, updatedAt]) => updatedAt <= cutoff).map(([requestId]) => requestId);
    let stale = 0;
    for (const key of candidates) {
      const read = await this.#d.intents.get(key);
      if (!read.ok || read.value === null) continue;
      const intent = read.value.value;
      if (intent.state !== 'pending' || intent.nodeId === undefined) continue;
      if (this.#d.now() - intent.updatedAt < this.#d.config.pendingOlderThanMs) continue;
      stale++;
      outcomes[intent.requestId] = await this.#settle(read.value);
    }
    return { stale, outcomes };
  }

  async #settle(at: Versioned<PlacementIntent>): Promise<ReconcileOutcome> {
    const intent = at.value;
    const { requestId, tenantId } = intent;
    const nodeId = intent.nodeId as string;
    const ageMs = this.#d.now() - intent.updatedAt;
    // No limit: an agent older than the requestId filter ignores it and lists everything; only a complete list proves
    // the allocation is not there.
    const list = await this.#d.agents.call(nodeId, 'allocations', { status: 'live', requestId }, { requestId });
    if (!list.ok) {
      this.#d.logger.debug({ requestId, node: nodeId, code: list.error.code }, 'reconcile: node did not answer; pending intent left for the next round');
      return 'left';
    }
    const allocation = list.value.allocations.find((a) => a.requestId === requestId);
    if (allocation === undefined && list.value.truncated) return 'left';
    if (allocation !== undefined) {
      const reply: PlaceReply = { nodeId, allocation, cpuset: allocation.cpu?.cpuset ?? [], preempted: [], attempts: intent.attempt };
      const placed: PlacementIntent = { ...intent, state: 'placed', reply, coordinatorId: this.#d.coordinatorId, updatedAt: this.#d.now() };
      const written = await this.#d.intents.update(requestId, placed, at.revision);
      if (!written.ok) return 'raced';
      this.#d.logger.info({ requestId, tenantId, node: nodeId, allocationId: allocation.id, ageMs, to: 'placed' }, 'reconciled pending placement intent');
      return 'placed';
    }
    const error = errorOf('unavailable', `placement ${requestId} was abandoned pending on node ${nodeId}, which holds no allocation for it; retry to place it again`, { requestId, nodeId });
    const failed: PlacementIntent = { ...intent, state: 'failed', error, coordinatorId: this.#d.coordinatorId, updatedAt: this.#d.now() };
    const written = await this.#d.intents.update(requestId, failed, at.revision);
    if (!written.ok) return 'raced';
    // The same path as a place that placed nothing: only the writer of `failed` gives the reservation back.
    const back = await this.#d.quotas.unreserve(tenantId, requestId);
    if (!back.ok) this.#d.logger.warn({ requestId, tenantId, error: back.error.message }, 'reconcile: quota not given back');
    this.#d.logger.info({ requestId, tenantId, node: nodeId, ageMs, to: 'failed' }, 'reconciled pending placement intent');
    return 'failed';
  }
}
