import { errorOf, ok, type AllotError, type Result } from '@allot/core';
import { MAX_EVACUATE_LISTED, type EvacuateReply, type EvacuateRequest, type Move, type MovesReply } from '@allot/protocol';
import { counts } from '../intents.ts';
import type { StoredIntent } from '../intents/intent-store.ts';
import { derivedRequestId, destinationRequestId, moveOf, startMove, type MoveDeps } from './move.ts';

/*
 * evacuate (allot.op.evacuate): a move for every placement of a node, computed from the placement intents (so it works
 * for a node that no longer answers), each held elsewhere as a reservation for its tenant's scheduler to confirm
 * (move.confirm) or abort. Each move's request id is derived from the evacuation's and the placement's, so running the
 * same evacuation again resumes it: held moves answer the same destination, confirmed ones are listed as such, and
 * what got no destination before is tried again.
 */

/** The move request id evacuation `evacuationId` uses for the placement `sourceRequestId`. */
export function evacuationMoveId(evacuationId: string, sourceRequestId: string): string {
  return derivedRequestId('evac', evacuationId, sourceRequestId);
}

type Unplaced = EvacuateReply['unplaced'][number];

export async function evacuateNode(d: MoveDeps, r: EvacuateRequest): Promise<Result<EvacuateReply>> {
  const scanned = await d.store.scan();
  if (!scanned.ok) return scanned;
  const onNode = scanned.value
    .filter((i) => i.value.nodeId === r.nodeId)
    .sort((a, b) => a.value.requestId.localeCompare(b.value.requestId));
  const moves: Move[] = [];
  const unplaced: Unplaced[] = [];
  const byRequestId = new Map(scanned.value.map((i) => [i.value.requestId, i]));
  for (const intent of onNode) {
    const v = intent.value;
    const allocationId = v.reply?.allocation.id;
    const listed = { requestId: v.requestId, tenantId: v.tenantId, ...(allocationId === undefined ? {} : { allocationId }) };
    if (v.state === 'released' && v.releasedBy === 'move' && allocationId !== undefined) {
      // Moved already: by this evacuation (listed as confirmed), or by another move (not this plan's).
      const dest = byRequestId.get(destinationRequestId(allocationId, evacuationMoveId(r.requestId, v.requestId)));
      if (dest !== undefined)
        moves.push(
          moveOf(dest.value, { allocationId, requestId: v.requestId, nodeId: v.nodeId }, evacuationMoveId(r.requestId, v.requestId)),
        );
      continue;
    }
    if (!counts(v.state)) continue;
    if (v.movesFrom !== undefined) {
      unplaced.push({
        ...listed,
        error: errorOf(
          'conflict',
          `${v.requestId} is the destination of move ${v.movesFrom.moveRequestId} into ${r.nodeId}, not yet confirmed: abort it (or confirm it, then evacuate again)`,
          { reason: 'incoming_move' },
        ),
      });
      continue;
    }
    if (v.state === 'pending') {
      unplaced.push({
        ...listed,
        error: errorOf(
          'conflict',
          `placement ${v.requestId} is still pending on ${r.nodeId}: retry its place, or decommission the node, then evacuate again`,
          { reason: 'pending' },
        ),
      });
      continue;
    }
    const moved = await startMove(
      d,
      intent as StoredIntent,
      evacuationMoveId(r.requestId, v.requestId),
      r.holdMs === undefined ? {} : { holdMs: r.holdMs },
    );
    if (moved.ok) moves.push(moved.value);
    else unplaced.push({ ...listed, error: asListed(moved.error) });
  }
  return ok({
    nodeId: r.nodeId,
    requestId: r.requestId,
    moves: moves.slice(0, MAX_EVACUATE_LISTED),
    movesCount: moves.length,
    unplaced: unplaced.slice(0, MAX_EVACUATE_LISTED),
    unplacedCount: unplaced.length,
  });
}

/** An error as the reply lists it (details kept small: the kube-style message says it all). */
function asListed(e: AllotError): AllotError {
  return errorOf(e.code, e.message.slice(0, 1024), e.details?.['rejected'] === undefined ? {} : { rejected: e.details['rejected'] });
}

/** The moves holding a destination now (pending or placed destinations), from or to `nodeId` and of `tenantId` when named. */
export async function movesInFlight(
  d: Pick<MoveDeps, 'store'>,
  r: { nodeId?: string | undefined; tenantId?: string | undefined },
): Promise<Result<MovesReply>> {
  const scanned = await d.store.scan();
  if (!scanned.ok) return scanned;
  const moves: Move[] = [];
  for (const { value: v } of scanned.value) {
    const from = v.movesFrom;
    if (from === undefined || !counts(v.state)) continue;
    if (r.tenantId !== undefined && v.tenantId !== r.tenantId) continue;
    if (r.nodeId !== undefined && v.nodeId !== r.nodeId && from.nodeId !== r.nodeId) continue;
    moves.push(moveOf(v, { allocationId: from.allocationId, requestId: from.requestId, nodeId: from.nodeId }, from.moveRequestId));
  }
  moves.sort((a, b) => a.source.allocationId.localeCompare(b.source.allocationId));
  return ok({ moves: moves.slice(0, MAX_EVACUATE_LISTED), count: moves.length });
}
