import { derivedRequestId } from '../../apps/coordinator/src/moves/move.ts';
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
export function checkMovesSettled(
  sched: Scheduler,
  agents: ReadonlyMap<string, SimAgent>,
  book: MoveBook,
  lost: string | undefined,
  isVictim: (nodeId: string, allocationId: string) => boolean,
): void {
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
    else if (m.mustSurvive && src.length === 0 && (dest.length === 0 || !m.confirmSent) && !liveThroughAnother(m)) {
      // Its source released by a confirm (this move's or another's, answered or not): the VM went where that leads.
      const source = { requestId: m.sourceRequestId, nodeId: m.sourceNodeId, allocationId: m.sourceAllocationId };
      const followed = followConfirmedMoves(agents, book, source, isVictim, lost);
      if (followed?.ok === true) sched.trace(`settled: ${what}: its source moved by a confirm: ${followed.trail}`);
      else
        sched.fail(
          `${what}: the VM is live nowhere once settled (${m.confirmSent ? 'confirm sent' : 'never confirmed'}), lost by the move${followed === undefined ? '' : `: ${followed.trail}`}`,
        );
    }
  }
}

/** Where an acknowledged placement a move's confirm released went: live (or legitimately ended) at its destination, or lost. */
export type Followed = { readonly ok: true; readonly trail: string } | { readonly ok: false; readonly trail: string };

/**
 * An acknowledged placement released on its node by a move's confirm (the `released` record's own request id is the
 * confirm's release id, derived from the source allocation and the move's id; only a confirm that claimed the move
 * sends it) is that move's destination from then on, whether or not its client heard the confirm answered: the
 * destination allocation is the placement's. Followed through later confirmed moves of the destination. Once settled
 * the allocation it leads to must be active, or released by a `preempted` record naming it a victim (`isVictim`); any
 * other end (no destination committed, one released or expired otherwise) is the VM lost by the move. undefined: the
 * placement was not released by a move's confirm (the caller's own checks judge it); also when the trail reaches the
 * host lost for good (the decommission checks judge it).
 */
export function followConfirmedMoves(
  agents: ReadonlyMap<string, SimAgent>,
  book: MoveBook,
  placement: { readonly requestId: string; readonly nodeId: string; readonly allocationId: string },
  isVictim: (nodeId: string, allocationId: string) => boolean,
  lost: string | undefined,
): Followed | undefined {
  let at = placement;
  const trail: string[] = [];
  for (let hops = 0; hops < 64; hops++) {
    const onDisk = agents.get(at.nodeId)?.model.get(at.allocationId);
    const where = `${at.allocationId} on ${at.nodeId}`;
    if (hops > 0 && at.nodeId === lost) return undefined;
    if (onDisk === undefined || onDisk.status !== 'released') {
      if (hops === 0) return undefined;
      const status = onDisk?.status ?? 'missing';
      return { ok: status === 'active', trail: `${trail.join(' -> ')} -> ${where} (${status})` };
    }
    if (hops > 0 && isVictim(at.nodeId, at.allocationId)) return { ok: true, trail: `${trail.join(' -> ')} -> ${where} (preempted there)` };
    const from = at;
    const move = [...book.values()].find(
      (m) =>
        m.sourceRequestId === from.requestId &&
        m.sourceAllocationId === from.allocationId &&
        onDisk.releasedUnder === derivedRequestId('move-release', from.allocationId, m.moveId),
    );
    if (move === undefined) {
      if (hops === 0) return undefined;
      return { ok: false, trail: `${trail.join(' -> ')} -> ${where} (released under ${onDisk.releasedUnder ?? 'no request id'})` };
    }
    trail.push(`${where} (released by move ${move.moveId}'s confirm)`);
    // The destination's allocation: the live one if any (at most one), else the one that ended last in the trail's terms.
    const copies = [...agents.values()].flatMap((agent) => agent.model.allOf(move.destRequestId).map((a) => ({ nodeId: agent.nodeId, a })));
    const next =
      copies.find((c) => c.a.status === 'active') ??
      copies.find((c) => isVictim(c.nodeId, c.a.id)) ??
      copies.find((c) => c.a.status === 'released' && c.a.releasedUnder?.startsWith('move-release-') === true) ??
      copies[0];
    if (next === undefined) return { ok: false, trail: `${trail.join(' -> ')} -> no destination ${move.destRequestId} on any disk` };
    at = { requestId: move.destRequestId, nodeId: next.nodeId, allocationId: next.a.id };
  }
  return { ok: false, trail: `${trail.join(' -> ')} -> (more than 64 moves)` };
}
