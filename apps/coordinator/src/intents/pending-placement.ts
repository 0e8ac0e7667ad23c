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
 * pending for a moment (or until a retry or the reconciler, when its coordinator died or its write failed in between).
 * This asks the intent's node at the intent's fence (the agent's `fence` verb, as the reconciler does) and follows
 * what it holds: active or reserved -> `placed` with it; ended there (released, expired) -> `released`, usage given
 * back; nothing (or a preemptor's victim still releasing) -> left pending, since nothing here decides that a place
 * failed: a place still in flight at that fence is refused `fenced` and its driver re-reads and drives again.
 * Writing `placed` is true because an intent never leaves its node while the node holds the allocation: a fencing
 * agent replays it to any fence instead of refusing.
 *
 * Answers the intent as it stands afterwards (whatever another writer made of it meanwhile: a lost compare-and-set
 * re-reads), or the node's error when it did not answer (the caller passes it on: retry later).
 */
export async function settlePending(d: SettlePendingDeps, first: StoredIntent): Promise<Result<StoredIntent | null>> {
  let at: StoredIntent | null = first;
  for (let round = 0; round < 4 && at !== null && at.value.state === 'pending'; round++) {
    const { requestId, nodeId, attempt } = at.value;
    const opts = d.agentTimeoutMs === undefined ? { requestId } : { requestId, timeoutMs: d.agentTimeoutMs };
    const fenced = await d.agents.call(nodeId, 'fence', { requestId, fence: attempt }, opts);
    if (!fenced.ok) return fenced;
    const held = fenced.value.allocation;
    if (held === null || held.status === 'releasing') return ok(at);
    const written =
      held.status === 'active' || held.status === 'reserved'
        ? await d.store.placed(at, replyFromNode(at.value, held))
        : await d.store.released(at, held.expiresAt !== undefined ? 'expiry' : 'agent');
    if (written.ok) return written;
    if (written.error.code !== 'conflict') return written;
    const read = await d.store.get(requestId);
    if (!read.ok) return read;
    at = read.value;
  }
  return ok(at);
}
