import { ok, type Allocation, type Result } from '@allot/core';
import type { PlaceReply } from '@allot/protocol';
import type { AgentCaller } from '../agents.ts';
import type { PlacementIntent } from '../intents.ts';
import type { IntentStore, StoredIntent } from './intent-store.ts';

export interface SettlePendingDeps {
  readonly store: IntentStore;
  readonly agents: AgentCaller;
  readonly agentTimeoutMs?: number;
}

/** The reply a placement's retries get when it was settled from its node's allocation (no preemption known). */
export function replyFromNode(intent: PlacementIntent, allocation: Allocation): PlaceReply {
  return {
    nodeId: intent.nodeId,
    allocation,
    cpuset: allocation.cpu?.cpuset ?? [],
    preempted: [],
    attempts: intent.refusedBy.length + 1,
  };
}

/**
 * A pending intent as a reader that needs to know whether it is placed should see it (release, move, resize). The
 * place flow answers as soon as the node committed and writes `placed` afterwards, so an answered placement may read
 * pending for a moment (or until the reconciler, when its coordinator died in between). This asks the intent's node
 * for the request's live allocation (a read: nothing is fenced, a place still in flight is not disturbed) and, when
 * the node holds one, compare-and-sets `placed` with it. That is true because an intent never leaves its node while
 * the node holds the allocation: a fencing agent replays it to any fence instead of refusing.
 *
 * Answers the intent as it stands afterwards: placed, or still pending (the node holds nothing live for it, or did
 * not answer), or whatever another writer made of it meanwhile (a lost compare-and-set re-reads once per round).
 */
export async function settlePending(d: SettlePendingDeps, first: StoredIntent): Promise<Result<StoredIntent | null>> {
  let at: StoredIntent | null = first;
  for (let round = 0; round < 4 && at !== null && at.value.state === 'pending'; round++) {
    const { requestId, nodeId } = at.value;
    const page = await d.agents.call(
      nodeId,
      'allocations',
      { status: 'live', requestId, limit: 1 },
      d.agentTimeoutMs === undefined ? { requestId } : { requestId, timeoutMs: d.agentTimeoutMs },
    );
    const held = page.ok ? page.value.allocations.find((a) => a.requestId === requestId && a.nodeId === nodeId) : undefined;
    if (held === undefined) return ok(at);
    const written = await d.store.placed(at, replyFromNode(at.value, held));
    if (written.ok) return written;
    if (written.error.code !== 'conflict') return ok(at);
    const read = await d.store.get(requestId);
    if (!read.ok) return read;
    at = read.value;
  }
  return ok(at);
}
