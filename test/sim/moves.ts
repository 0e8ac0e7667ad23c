import type { SimAgent } from './agent.ts';
import type { Scheduler } from './scheduler.ts';

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
  const liveAnywhere = (requestId: string): string[] => {
    const where: string[] = [];
    for (const agent of agents.values()) if (agent.model.liveOf(requestId).size > 0) where.push(agent.nodeId);
    return where;
  };
  for (const m of book.values()) {
    const src = liveAnywhere(m.sourceRequestId);
    const dest = liveAnywhere(m.destRequestId);
    if (lost !== undefined && (m.sourceNodeId === lost || src.includes(lost) || dest.includes(lost))) continue;
    const what = `move ${m.moveId}${m.evacuation === undefined ? '' : ` (evacuation ${m.evacuation})`} of ${m.sourceAllocationId} (${m.sourceRequestId} on ${m.sourceNodeId}, destination ${m.destRequestId}, ${m.outcome})`;
    sched.trace(`settled: ${what}: source live on [${src.join(', ')}], destination live on [${dest.join(', ')}]`);
    if (src.length > 0 && dest.length > 0) sched.fail(`${what}: both the source and its destination are live once settled`);
    else if (m.outcome === 'confirmed' && src.length > 0) sched.fail(`${what}: confirmed, and its source is still live once settled`);
    else if (m.outcome === 'aborted' && dest.length > 0) sched.fail(`${what}: aborted, and its destination is live once settled`);
    else if (m.mustSurvive && src.length === 0 && (dest.length === 0 || !m.confirmSent))
      sched.fail(`${what}: the VM is live nowhere once settled (${m.confirmSent ? 'confirm sent' : 'never confirmed'}), lost by the move`);
  }
}
