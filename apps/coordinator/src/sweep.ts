import { createHash } from 'node:crypto';
import { ok, type Allocation, type Result } from '@allot/core';
import type { AllotEvent, Discrepancy } from '@allot/protocol';
import { metrics, type Counter } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AgentCaller } from './agents.ts';
import { forEachAllocationPage } from './allocation-pages.ts';
import type { IntentStore, StoredIntent } from './intents/intent-store.ts';
import { endPlacement } from './moves/move.ts';
import type { CoordinatorClock } from './store/clock.ts';

/**
 * The anti-entropy sweep (finding 8: a lost undo left an orphan nothing ever found). Every coordinator, every
 * `everyMs` (with jitter), pages through each ready node's live allocations and compares them with the placement
 * intents:
 * - an allocation a coordinator made (it carries a `fence`) whose intent is failed, released, missing, or names another
 *   node is an **orphan**. It is released only once this coordinator has seen it orphaned in two sweeps at least
 *   `graceMs` apart on its own monotonic clock (never by comparing clocks), with `fence` = the intent's attempt (the
 *   allocation's own fence when there is no intent): an agent refuses that release when someone drove the request id
 *   higher since, so the sweep never takes what a retry just claimed. The release's request id is derived from the
 *   allocation id, so coordinators sweeping the same orphan send the same (idempotent) release.
 * - a placed intent whose node no longer lists its allocation is asked of the node with the `fence` verb (durable, at
 *   the intent's attempt): null or ended there, the intent becomes released and the tenant's quota is given back.
 * Each action is an event (`allot.events.cluster.<kind>`) and a metric. `audit()` reports the same discrepancies without
 * acting (the `audit` verb, `allot audit`).
 */

export const SweepConfigSchema = z.object({
  /** How often each coordinator sweeps; each round waits this plus up to 20% random jitter. */
  everyMs: z
    .int()
    .min(100)
    .max(24 * 3_600_000)
    .default(60_000),
  /** An orphan is released only when seen orphaned again at least this long after it was first seen. */
  graceMs: z
    .int()
    .min(0)
    .max(24 * 3_600_000)
    .default(60_000),
  /** Allocations per `allocations` page. */
  pageSize: z.int().min(1).max(1000).default(500),
  /** Nodes listed at once. */
  concurrency: z.int().min(1).max(64).default(4),
});
export type SweepConfig = z.infer<typeof SweepConfigSchema>;

type OrphanReason = Extract<Discrepancy, { kind: 'orphan' }>['reason'];

export interface SweepReport {
  readonly discrepancies: Discrepancy[];
  /** Nodes whose allocations were listed completely. */
  readonly nodesSwept: number;
  /** Nodes that did not answer every page (nothing about them is concluded this round). */
  readonly nodesFailed: { nodeId: string; error: string }[];
  /** Orphans released this round. */
  readonly released: number;
  /** Placed intents moved to released this round (their allocation had ended on the node). */
  readonly ended: number;
}

export interface SweepDeps {
  readonly store: IntentStore;
  readonly agents: AgentCaller;
  /** The nodes to sweep: the ready ones (a silent node is not asked; its allocations stay valid). */
  readonly nodes: () => readonly string[];
  readonly clock: CoordinatorClock;
  readonly config: SweepConfig;
  readonly logger: Logger;
  /** Publishes a cluster event (allot.events.cluster.<kind>) with a dedupe id; fire and forget. */
  readonly publishEvent?: (event: AllotEvent, msgId: string) => void;
  readonly random?: () => number;
}

/** The release request id for an orphan: the same on every coordinator, within the request id's 128 characters. */
export function orphanReleaseId(allocationId: string): string {
  const id = `sweep:${allocationId}`;
  return id.length <= 128 ? id : `sweep:${createHash('sha256').update(allocationId).digest('hex').slice(0, 48)}`;
}

function orphanReasonOf(allocation: Allocation, intent: StoredIntent | null): OrphanReason | null {
  if (intent === null) return 'intent_missing';
  if (intent.value.nodeId !== allocation.nodeId) return 'intent_on_other_node';
  if (intent.value.state === 'failed') return 'intent_failed';
  if (intent.value.state === 'released') return 'intent_released';
  return null;
}

const ENDED = new Set(['released', 'failed', 'releasing']);

export class Sweep {
  readonly #d: SweepDeps;
  /** Orphans seen by an earlier round: first sighting on this coordinator's monotonic clock. */
  readonly #seen = new Map<string, number>();
  readonly #counter: Counter;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;

  constructor(deps: SweepDeps) {
    this.#d = deps;
    this.#counter = metrics.getMeter('allot').createCounter('allot_sweep_actions_total', {
      description: 'Anti-entropy sweep: discrepancies found and actions taken, by kind and outcome',
    });
  }

  /** Sweeps every `everyMs` plus jitter until stop(). */
  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#running;
  }

  /** The discrepancies as they are now, nothing changed (no release, no fence recorded, no intent written). */
  async audit(): Promise<Result<SweepReport>> {
    return this.#pass(false);
  }

  /** One sweep now: finds the discrepancies and acts on those that qualify. */
  async sweepOnce(): Promise<Result<SweepReport>> {
    return this.#pass(true);
  }

  #schedule(): void {
    if (this.#stopped) return;
    const jitter = Math.floor((this.#d.random ?? Math.random)() * this.#d.config.everyMs * 0.2);
    this.#timer = setTimeout(() => {
      this.#running = this.sweepOnce()
        .then((r) => {
          if (!r.ok) this.#d.logger.warn({ err: r.error }, 'sweep failed; next round as scheduled');
        })
        .catch((e: unknown) => this.#d.logger.error({ err: (e as Error).message }, 'sweep threw'))
        .finally(() => this.#schedule());
    }, this.#d.config.everyMs + jitter);
    this.#timer.unref();
  }

  async #pass(act: boolean): Promise<Result<SweepReport>> {
    // Intents first: a placed intent read here had its allocation committed before, so a later listing shows it
    // unless it ended since. An allocation listed with no intent yet is only a candidate (the grace period).
    const scanned = await this.#d.store.scan();
    if (!scanned.ok) return scanned;
    const intents = new Map(scanned.value.map((i) => [i.value.requestId, i]));
    const nodes = [...this.#d.nodes()];
    const listed = new Map<string, Set<string>>();
    const candidates: { allocation: Allocation; reason: OrphanReason; intent: StoredIntent | null }[] = [];
    const nodesFailed: { nodeId: string; error: string }[] = [];
    const queue = [...nodes];
    const worker = async () => {
      for (let nodeId = queue.shift(); nodeId !== undefined; nodeId = queue.shift()) {
        const held = new Set<string>();
        const found: typeof candidates = [];
        const walked = await forEachAllocationPage(
          this.#d.agents,
          nodeId,
          { status: 'live' },
          (page) => {
            for (const a of page) {
              held.add(a.requestId);
              if (a.fence === undefined || a.nodeId !== nodeId) continue;
              const intent = intents.get(a.requestId) ?? null;
              const reason = orphanReasonOf(a, intent);
              if (reason !== null) found.push({ allocation: a, reason, intent });
            }
          },
          { pageSize: this.#d.config.pageSize },
        );
        if (!walked.ok) {
          nodesFailed.push({ nodeId, error: walked.error.message });
          continue;
        }
        listed.set(nodeId, held);
        candidates.push(...found);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#d.config.concurrency, Math.max(1, nodes.length)) }, worker));

    const discrepancies: Discrepancy[] = [];
    const now = this.#d.clock.monotonic();
    const stillSeen = new Set<string>();
    let released = 0;
    for (const c of candidates) {
      // The scan may be older than the listing: read the intent again before calling anything an orphan.
      const fresh = await this.#d.store.get(c.allocation.requestId);
      if (!fresh.ok) continue;
      const reason = orphanReasonOf(c.allocation, fresh.value);
      if (reason === null) continue;
      const fence = fresh.value?.value.attempt ?? (c.allocation.fence as number);
      const d: Discrepancy = {
        kind: 'orphan',
        nodeId: c.allocation.nodeId,
        allocationId: c.allocation.id,
        requestId: c.allocation.requestId,
        tenantId: c.allocation.tenantId,
        reason,
        fence,
        ...(fresh.value === null ? {} : { intentNodeId: fresh.value.value.nodeId }),
      };
      discrepancies.push(d);
      if (!act) continue;
      const key = `${d.nodeId} ${d.allocationId}`;
      stillSeen.add(key);
      const first = this.#seen.get(key);
      if (first === undefined) {
        this.#seen.set(key, now);
        this.#count('orphan', 'seen');
        continue;
      }
      if (now - first < this.#d.config.graceMs) continue;
      if (await this.#releaseOrphan(d)) {
        released += 1;
        this.#seen.delete(key);
      }
    }
    if (act) for (const key of this.#seen.keys()) if (!stillSeen.has(key)) this.#seen.delete(key);

    let ended = 0;
    for (const intent of intents.values()) {
      const v = intent.value;
      if (v.state !== 'placed') continue;
      const held = listed.get(v.nodeId);
      if (held === undefined || held.has(v.requestId)) continue;
      const allocationId = v.reply?.allocation.id;
      discrepancies.push({
        kind: 'placement_missing',
        nodeId: v.nodeId,
        requestId: v.requestId,
        tenantId: v.tenantId,
        ...(allocationId === undefined ? {} : { allocationId }),
      });
      if (act && (await this.#endPlacement(intent))) ended += 1;
    }
    return ok({ discrepancies, nodesSwept: listed.size, nodesFailed, released, ended });
  }

  async #releaseOrphan(d: Extract<Discrepancy, { kind: 'orphan' }>): Promise<boolean> {
    const reason = `orphan: ${d.reason.replaceAll('_', ' ')}${d.intentNodeId !== undefined && d.intentNodeId !== d.nodeId ? ` (intent names ${d.intentNodeId})` : ''}`;
    const out = await this.#d.agents.call(d.nodeId, 'release', {
      requestId: orphanReleaseId(d.allocationId),
      allocationId: d.allocationId,
      reason,
      fence: d.fence,
    });
    if (!out.ok) {
      const fenced = out.error.code === 'conflict' && (out.error.details as { reason?: unknown } | undefined)?.reason === 'fenced';
      this.#count('orphan', fenced ? 'fenced' : 'error');
      // Fenced: a retry drove the request id since and may own this allocation now; the next rounds look again.
      this.#d.logger.info(
        { node: d.nodeId, allocationId: d.allocationId, requestId: d.requestId, err: out.error },
        fenced ? 'sweep: orphan claimed by a newer drive; left alone' : 'sweep: orphan not released; next round',
      );
      return false;
    }
    this.#count('orphan', 'released');
    this.#d.logger.warn(
      { node: d.nodeId, allocationId: d.allocationId, requestId: d.requestId, tenant: d.tenantId, reason },
      'sweep: orphan released',
    );
    this.#d.publishEvent?.(
      {
        kind: 'orphan_released',
        nodeId: d.nodeId,
        at: this.#d.clock.wall(),
        requestId: d.requestId,
        allocationId: d.allocationId,
        tenantId: d.tenantId,
        reason,
      },
      `orphan_released:${d.allocationId}`,
    );
    return true;
  }

  /** Asks the node, durably fenced at the intent's attempt, whether it holds the placement; ended there -> released. */
  async #endPlacement(intent: StoredIntent): Promise<boolean> {
    const v = intent.value;
    const asked = await this.#d.agents.call(v.nodeId, 'fence', { requestId: v.requestId, fence: v.attempt });
    if (!asked.ok) {
      this.#count('placement_missing', 'error');
      return false;
    }
    const a = asked.value.allocation;
    if (a !== null && !ENDED.has(a.status)) return false;
    const written = await endPlacement(this.#d.store, intent, a === null ? 'sweep' : 'agent'); // a moving source hands over its count
    if (!written.ok) {
      // conflict: someone moved the intent since the scan (a tenant release, the quota events): theirs stands.
      this.#count('placement_missing', written.error.code === 'conflict' ? 'moved' : 'error');
      return false;
    }
    this.#count('placement_missing', 'released');
    const reason = a === null ? 'the node holds no allocation for it' : `ended on its node (${a.status})`;
    this.#d.logger.warn(
      { node: v.nodeId, requestId: v.requestId, tenant: v.tenantId, reason },
      'sweep: placement ended on its node; quota given back',
    );
    this.#d.publishEvent?.(
      {
        kind: 'placement_ended',
        nodeId: v.nodeId,
        at: this.#d.clock.wall(),
        requestId: v.requestId,
        tenantId: v.tenantId,
        ...(v.reply === undefined ? {} : { allocationId: v.reply.allocation.id }),
        reason,
      },
      `placement_ended:${v.requestId}:${v.attempt}`,
    );
    return true;
  }

  #count(kind: string, outcome: string): void {
    this.#counter.add(1, { kind, outcome });
  }
}
