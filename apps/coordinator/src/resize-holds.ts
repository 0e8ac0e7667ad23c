import type { Logger } from 'pino';
import type { AgentCaller } from './agents.ts';
import type { IntentStore } from './intents/intent-store.ts';
import type { PlacementIntent } from './intents.ts';
import { settleHold, type HoldOutcome } from './resize.ts';
import type { CoordinatorClock } from './store/clock.ts';

/*
 * Resizes held (a growth, or a shrink's mark) whose agent never answered and that no retry finished (resize.ts): the
 * reconciler's watch reports every intent write here, and each round settles the holds that stayed at the same
 * revision for the bound, as it settles abandoned pending intents. Ages are measured on this coordinator's monotonic clock from when it first saw
 * that revision, never from another coordinator's wall clock. Every coordinator runs one; the settling is a fence and a
 * compare-and-set, so two coordinators settling the same hold agree (the second one's write is raced).
 */

export interface ResizeHoldsDeps {
  readonly store: IntentStore;
  readonly agents: AgentCaller;
  readonly clock: CoordinatorClock;
  readonly logger: Logger;
  /** How long a hold stays at one revision before it is settled without its resize's answer. */
  readonly olderThanMs: number;
}

/** What a round did with one hold: settled (kept or given back), raced, or left (its node did not answer). */
export type HoldRoundOutcome = HoldOutcome | 'left';

export class ResizeHolds {
  readonly #d: ResizeHoldsDeps;
  /** Placed intents holding a growth, by request id: the revision seen and when (monotonic) this coordinator saw it. */
  readonly #held = new Map<string, { revision: number; since: number }>();

  constructor(deps: ResizeHoldsDeps) {
    this.#d = deps;
  }

  /** One intent write (null: deleted or unreadable), from the reconciler's watch. */
  observe(requestId: string, intent: PlacementIntent | null, revision: number): void {
    if (intent === null || intent.state !== 'placed' || intent.resizing === undefined) {
      this.#held.delete(requestId);
      return;
    }
    if (this.#held.get(requestId)?.revision !== revision) this.#held.set(requestId, { revision, since: this.#d.clock.monotonic() });
  }

  /** Settles every hold older than the bound (each re-read first: one driven since starts its age again). */
  async settleDue(): Promise<Record<string, HoldRoundOutcome>> {
    const now = this.#d.clock.monotonic();
    const outcomes: Record<string, HoldRoundOutcome> = {};
    for (const [requestId, seen] of [...this.#held]) {
      if (now - seen.since < this.#d.olderThanMs) continue;
      const read = await this.#d.store.get(requestId);
      if (!read.ok) continue;
      const at = read.value;
      if (at === null || at.value.state !== 'placed' || at.value.resizing === undefined) {
        this.#held.delete(requestId);
        continue;
      }
      if (at.revision !== seen.revision) {
        this.#held.set(requestId, { revision: at.revision, since: this.#d.clock.monotonic() });
        continue;
      }
      const settled = await settleHold(this.#d, at);
      if (!settled.ok) {
        outcomes[requestId] = 'left';
        this.#d.logger.debug(
          { requestId, node: at.value.nodeId, code: settled.error.code },
          'resize hold: node did not answer; left for the next round',
        );
        continue;
      }
      outcomes[requestId] = settled.value;
      this.#held.delete(requestId);
      this.#d.logger.info(
        { requestId, node: at.value.nodeId, resize: at.value.resizing.requestId, ageMs: now - seen.since, to: settled.value },
        'settled a resize growth held without an answer',
      );
    }
    return outcomes;
  }
}
