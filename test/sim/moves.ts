import { seededRandom, type RandomSource } from '../../packages/placement/src/random.ts';
import type { SimAgent } from './agent.ts';
import type { Scheduler } from './scheduler.ts';

/**
 * The faults and choices of a moves run, drawn from their own random stream (derived from the seed), so that runs in
 * which none of them fires replay exactly as they did before they existed:
 * - a coordinator dies between a move's steps (in half the runs, at each step with probability `stepCrashP`): before it
 *   sends the step, once it sent it, or once it heard its answer; the steps are the confirm's activation of the
 *   destination and release of the source, and the abort's release of the destination (both come after the move's
 *   claim, `settling`, is written);
 * - a scheduler whose confirm went unanswered gives up and aborts instead, with probability `giveUpP` per unanswered
 *   confirm (both verbs may then be in flight at once, on different coordinators, with the reconciler finishing the
 *   confirm meanwhile);
 * - in half the runs (`walkAway`) the schedulers never re-send their unanswered verbs once the faults stop: the
 *   coordinators' reconcilers alone must drive every half-settled move to its end.
 */
export class MoveFaults {
  readonly random: RandomSource;
  readonly stepCrashP: number;
  readonly giveUpP: number;
  readonly walkAway: boolean;

  constructor(seed: number) {
    this.random = seededRandom((seed * 2_654_435_761 + 0x6d6f7665) >>> 0);
    this.stepCrashP = this.random() < 0.5 ? 0.05 + this.random() * 0.25 : 0;
    this.giveUpP = this.random() < 0.5 ? 0.5 : 0;
    this.walkAway = this.random() < 0.5;
  }

  /** The move step an agent call is (by its derived request id), if it is one. */
  static stepOf(verb: string, request: unknown): string | undefined {
    const id = (request as { requestId?: unknown }).requestId;
    if (typeof id !== 'string') return undefined;
    if (verb === 'activate' && id.startsWith('move-activate-')) return 'confirm: activate the destination';
    if (verb === 'release' && id.startsWith('move-release-')) return 'confirm: release the source';
    if (verb === 'release' && id.startsWith('move-abort-')) return 'abort: release the destination';
    return undefined;
  }

  /** When (if at all) the coordinator dies at this step. */
  crashAt(): 'before' | 'sent' | 'answered' | undefined {
    if (this.stepCrashP === 0 || this.random() >= this.stepCrashP) return undefined;
    const r = this.random();
    return r < 1 / 3 ? 'before' : r < 2 / 3 ? 'sent' : 'answered';
  }

  describe(): string {
    return `move faults: step crash ${this.stepCrashP.toFixed(2)}, give up ${this.giveUpP}, walk away ${this.walkAway}`;
  }
}

/**
 * One move the simulated clients (or an evacuation) started, as far as they heard: the source placement and the
 * destination's request id (derived from the source allocation and the move's request id, so it is known before the
 * move is answered).
 */
export interface SimMove {
  readonly moveId: string;
  readonly tenantId: string;
  readonly sourceRequestId: string;
  readonly sourceNodeId: string;
  readonly sourceAllocationId: string;
  readonly destRequestId: string;
  /** From an evacuation of this node (else a tenant's move). */
  readonly evacuation?: string;
  /** The last outcome heard: held (started), confirmed, aborted; 'unknown' while a start or settle went unanswered. */
  outcome: 'starting' | 'held' | 'confirmed' | 'aborted' | 'unknown';
  /** A confirm was sent (its outcome may be unknown): the VM may then be on either side, never on both once settled. */
  confirmSent: boolean;
  /** The source placement was acknowledged to a client and never released by it: it must not be lost. */
  mustSurvive: boolean;
}

/** The moves of a run, by destination request id. */
export class MoveBook {
  readonly #byDest = new Map<string, SimMove>();

  add(move: SimMove): void {
    if (!this.#byDest.has(move.destRequestId)) this.#byDest.set(move.destRequestId, move);
  }

  get(destRequestId: string): SimMove | undefined {
    return this.#byDest.get(destRequestId);
  }

  values(): IterableIterator<SimMove> {
    return this.#byDest.values();
  }

  /**
   * The VM a request id is a copy of: a move's destination is the same VM as its source (a destination moved again is
   * still the first source's VM). The quota check counts a VM once however many copies are live during its moves.
   */
  vmOf(requestId: string): string {
    let id = requestId;
    for (let hops = 0; hops < 64; hops++) {
      const move = this.#byDest.get(id);
      if (move === undefined) return id;
      id = move.sourceRequestId;
    }
    return id;
  }
}

/**
 * Once settled, for every move: never both the source and the destination live (at most one copy of a VM); a confirmed
 * move's source not live; an aborted move's destination not live; and a VM a client was told it has, never released
 * by it, still live on one side (nothing lost on abort, on an expired hold, or on a confirm whose answer was lost).
 * Moves touching the host lost for good are left to the decommission checks.
 */
export function checkMovesSettled(sched: Scheduler, agents: ReadonlyMap<string, SimAgent>, book: MoveBook, lost: string | undefined): void {
  // A hold its host still keeps after a reboot and a wall-clock step expires at its wall-clock instant, possibly after
  // the settle (expiresAt is all a reboot leaves: SimAgent.expiresOnWallClock); it is not a copy of the VM.
  const liveAnywhere = (requestId: string): string[] => {
    const where: string[] = [];
    for (const agent of agents.values()) {
      const live = [...agent.model.liveOf(requestId)].filter(
        (id) => agent.model.get(id)?.status !== 'reserved' || !agent.expiresOnWallClock(id),
      );
      if (live.length > 0) where.push(agent.nodeId);
    }
    return where;
  };
  /** Another move of the same VM whose confirm was sent holds it live at its destination (a later move of it). */
  const liveThroughAnother = (m: SimMove): boolean =>
    [...book.values()].some(
      (o) =>
        o !== m &&
        o.confirmSent &&
        book.vmOf(o.sourceRequestId) === book.vmOf(m.sourceRequestId) &&
        liveAnywhere(o.destRequestId).length > 0,
    );
  for (const m of book.values()) {
    const src = liveAnywhere(m.sourceRequestId);
    const dest = liveAnywhere(m.destRequestId);
    if (lost !== undefined && (m.sourceNodeId === lost || src.includes(lost) || dest.includes(lost))) continue;
    const what = `move ${m.moveId}${m.evacuation === undefined ? '' : ` (evacuation ${m.evacuation})`} of ${m.sourceAllocationId} (${m.sourceRequestId} on ${m.sourceNodeId}, destination ${m.destRequestId}, ${m.outcome})`;
    sched.trace(`settled: ${what}: source live on [${src.join(', ')}], destination live on [${dest.join(', ')}]`);
    if (src.length > 0 && dest.length > 0) sched.fail(`${what}: both the source and its destination are live once settled`);
    else if (m.outcome === 'confirmed' && src.length > 0) sched.fail(`${what}: confirmed, and its source is still live once settled`);
    else if (m.outcome === 'aborted' && dest.length > 0) sched.fail(`${what}: aborted, and its destination is live once settled`);
    else if (m.mustSurvive && src.length === 0 && (dest.length === 0 || !m.confirmSent) && !liveThroughAnother(m))
      sched.fail(`${what}: the VM is live nowhere once settled (${m.confirmSent ? 'confirm sent' : 'never confirmed'}), lost by the move`);
  }
}
