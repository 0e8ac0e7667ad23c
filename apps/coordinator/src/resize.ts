import { err, ok, type Allocation, type AllotError, type Result } from '@allot/core';
import type { ClusterResizeRequest, ResizeAmounts } from '@allot/protocol';
import type { Logger } from 'pino';
import type { AgentCaller } from './agents.ts';
import { liveAllocation } from './live-allocation.ts';
import type { IntentStore, StoredIntent } from './intents/intent-store.ts';
import { settlePending } from './intents/pending-placement.ts';

/*
 * resize at cluster scope (allot.sched.<tenant>.resize): the host's agent decides whether the allocation can grow in
 * place; the coordinator keeps the tenant's quota true around it, so quota never counts less than what is live:
 * - a growth is held first: the intent's amounts rise (per dimension, the larger of old and new) with the tenant's usage
 *   in one atomic batch, refused quota_exceeded before the agent is asked; the agent's yes settles the amounts to the
 *   new ones; no answer keeps the hold, and a retry of the same resize id finishes it (the agent answers a seen resize
 *   id with its durable result), or, when no retry comes, the reconciler settles it after a bound (resize-holds.ts);
 * - a hold is only ever settled without the agent's yes at a fence (settleHold): the placement's request id is fenced
 *   one above the intent's attempt on its node, whose answer says what the allocation holds now; the intent takes those
 *   amounts and the new attempt in one compare-and-set. A copy of the resize still in flight carries the old fence and
 *   is refused by the agent (`fenced`), so no growth commits there once the quota was given back. A definitive no is
 *   settled the same way, since an earlier copy of the same resize may still arrive;
 * - a shrink is held the same way (its peak is the amounts it has, so the hold changes no figure; it only marks the
 *   resize in flight): a shrink whose answer is lost, or whose intent could not be settled, is settled by a retry or by
 *   the reconciler like a growth, so the quota never stays above what is live for good;
 * - what the intent settles to is what the node holds after the answer: read again when the answer differs from the
 *   allocation read before (a retry of an older resize id answers what it did then), never ordered by the agent's
 *   updatedAt, which a step of the host's wall clock reorders (sim seed 3 --lifecycle).
 */

export interface ResizeDeps {
  readonly store: IntentStore;
  readonly agents: AgentCaller;
  /** Whether a node has reported (an allocation id names its node: `<nodeId>:<counter>`). */
  readonly knowsNode: (nodeId: string) => boolean;
  /** A node the view has not heard from that is known to exist (unheard-node.ts): `unavailable`, not `not_found`. */
  readonly knownUnheard?: (nodeId: string) => boolean;
  readonly agentTimeoutMs?: number;
  readonly logger?: Logger;
}

/** Rounds of re-reading an intent another writer changed meanwhile. */
const MAX_ROUNDS = 8;

/** The agent's answers that mean it did not and will not resize under this id: a held growth is given back. */
function definitive(error: AllotError): boolean {
  if (error.code === 'unavailable') return error.details?.cordoned === true;
  return (
    error.code === 'insufficient_capacity' || error.code === 'conflict' || error.code === 'not_found' || error.code === 'invalid_request'
  );
}

function amountsOf(intent: { memoryMiB: number; vcpus: number }): ResizeAmounts {
  return { memoryMiB: intent.memoryMiB, vcpus: intent.vcpus };
}

/** Writes the intent's new amounts, re-reading it when another writer moved it meanwhile. */
async function settle(
  d: ResizeDeps,
  first: StoredIntent,
  to: (intent: StoredIntent) => { amounts: ResizeAmounts; resizing?: StoredIntent['value']['resizing'] } | undefined,
  allocation?: Allocation,
): Promise<Result<StoredIntent>> {
  let at = first;
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    const next = to(at);
    if (next === undefined) return ok(at);
    const written = await d.store.resized(at, next.amounts, next.resizing, allocation);
    if (written.ok || written.error.code !== 'conflict') return written;
    const read = await d.store.get(at.value.requestId);
    if (!read.ok) return read;
    if (read.value === null)
      return err('conflict', `placement ${at.value.requestId} disappeared during a resize`, { requestId: at.value.requestId });
    at = read.value;
  }
  return err('unavailable', `placement ${first.value.requestId} keeps changing; retry the resize`, { requestId: first.value.requestId });
}

/** The request id of the move holding a destination for this placement, if one does (a stale mark is none). */
async function moveInFlight(d: ResizeDeps, intent: StoredIntent): Promise<Result<string | undefined>> {
  const moving = intent.value.movingTo;
  if (moving === undefined) return ok(undefined);
  const dest = await d.store.get(moving.requestId);
  if (!dest.ok) return dest;
  const v = dest.value?.value;
  return ok(
    v !== undefined && v.movesFrom !== undefined && (v.state === 'pending' || v.state === 'placed') ? moving.moveRequestId : undefined,
  );
}

/** Grows or shrinks a tenant's allocation in place through its agent, the intent and the tenant's usage following. */
export async function resizeAllocation(d: ResizeDeps, r: ClusterResizeRequest, tenantId: string): Promise<Result<Allocation>> {
  const live = await liveAllocation(d, r.allocationId, tenantId);
  if (!live.ok) return live;
  const allocation = live.value;
  if (allocation.status !== 'active') {
    return err('conflict', `allocation ${allocation.id} is a reservation; activate it before resizing`, {
      allocationId: allocation.id,
      status: allocation.status,
      reason: 'not_active',
    });
  }
  const first = await d.store.get(allocation.requestId);
  // A placement answered a moment ago may not read placed yet: its node, which holds it, settles that.
  const read = first.ok && first.value?.value.state === 'pending' ? await settlePending(d, first.value) : first;
  if (!read.ok) return read;
  const intent = read.value;
  if (intent === null || intent.value.tenantId !== tenantId) {
    return err(
      'not_found',
      `allocation ${allocation.id} was not placed through a coordinator (no placement ${allocation.requestId}); its quota cannot follow a resize`,
      { allocationId: allocation.id, requestId: allocation.requestId },
    );
  }
  if (intent.value.state !== 'placed' || intent.value.nodeId !== allocation.nodeId) {
    return err(
      'conflict',
      `placement ${allocation.requestId} is ${intent.value.state} on ${intent.value.nodeId}; only a settled placement can be resized`,
      { requestId: allocation.requestId, state: intent.value.state },
    );
  }
  const moving = await moveInFlight(d, intent);
  if (!moving.ok) return moving;
  if (moving.value !== undefined) {
    // The held destination has the size the move started with: resize before the move, or after its confirm.
    return err('conflict', `allocation ${allocation.id} is being moved (move ${moving.value}); confirm or abort the move first`, {
      allocationId: allocation.id,
      reason: 'moving',
      moveRequestId: moving.value,
    });
  }
  const inFlight = intent.value.resizing;
  if (inFlight !== undefined && inFlight.requestId !== r.requestId) {
    return err('conflict', `resize ${inFlight.requestId} of ${allocation.id} is still in flight; retry it first`, {
      allocationId: allocation.id,
      resizing: inFlight.requestId,
    });
  }
  const target = r.resources;
  const before = inFlight === undefined ? amountsOf(intent.value) : { memoryMiB: inFlight.memoryMiB, vcpus: inFlight.vcpus };
  let held = intent;
  if (inFlight === undefined) {
    // Hold the resize first (the larger amount per dimension): a growth is refused here with quota_exceeded, before any
    // agent; a shrink's hold only marks it in flight.
    const peak = { memoryMiB: Math.max(before.memoryMiB, target.memoryMiB), vcpus: Math.max(before.vcpus, target.vcpus) };
    // A move that marked the placement since it was read above wins (its destination has the size it read): the
    // hold's compare-and-set orders the two (sim seed 373).
    const marked = (at: StoredIntent) => at.value.movingTo?.requestId !== intent.value.movingTo?.requestId;
    const hold = await settle(d, intent, (at) =>
      at.value.resizing !== undefined || marked(at)
        ? undefined
        : { amounts: peak, resizing: { requestId: r.requestId, ...amountsOf(at.value) } },
    );
    if (!hold.ok) return hold;
    const movedMeanwhile = hold.value.value.movingTo;
    if (hold.value.value.resizing?.requestId !== r.requestId && marked(hold.value) && movedMeanwhile !== undefined) {
      return err(
        'conflict',
        `allocation ${allocation.id} is being moved (move ${movedMeanwhile.moveRequestId}); confirm or abort the move first`,
        {
          allocationId: allocation.id,
          reason: 'moving',
          moveRequestId: movedMeanwhile.moveRequestId,
        },
      );
    }
    if (hold.value.value.resizing?.requestId !== r.requestId) {
      return err('conflict', `another resize of ${allocation.id} started meanwhile; retry`, { allocationId: allocation.id });
    }
    held = hold.value;
  }
  const resized = await d.agents.call(
    allocation.nodeId,
    'resize',
    { requestId: r.requestId, allocationId: allocation.id, resources: target, fence: intent.value.attempt },
    { requestId: r.requestId, ...(d.agentTimeoutMs === undefined ? {} : { timeoutMs: d.agentTimeoutMs }) },
  );
  const ours = (at: StoredIntent) => at.value.resizing === undefined || at.value.resizing.requestId === r.requestId;
  if (!resized.ok) {
    if (held.value.resizing === undefined || !definitive(resized.error)) return resized;
    // The agent will not grow it under this id: give the hold back, fenced.
    const back = await settleHold(d, held);
    if (!back.ok)
      d.logger?.warn(
        { allocationId: allocation.id, resize: r.requestId, err: back.error },
        'resize refused by the agent; the held growth is given back by a retry or the reconciler',
      );
    return resized;
  }
  // What is live now: a retry of an older resize id answers what that resize did then, possibly before later resizes.
  // Read from the node whenever the answer differs from the allocation read above; never by comparing the agent's
  // updatedAt instants, which a step of the host's wall clock reorders (sim seed 3 --lifecycle gave a growth back).
  // Unread, the hold stays: a retry of this id or the reconciler settles it from what the node holds. No longer live
  // (released or preempted since the agent resized it): the resize was done, and the allocation's end ends the intent.
  let now = resized.value;
  if (now.granted.memoryMiB !== allocation.granted.memoryMiB || now.granted.vcpus !== allocation.granted.vcpus) {
    const reread = await liveAllocation(d, allocation.id, tenantId);
    if (!reread.ok) return reread.error.code === 'not_found' ? ok(resized.value) : reread;
    now = reread.value;
  }
  const settled = await settle(
    d,
    held,
    (at) => {
      if (!ours(at)) return undefined;
      const same = at.value.memoryMiB === now.granted.memoryMiB && at.value.vcpus === now.granted.vcpus && at.value.resizing === undefined;
      return same ? undefined : { amounts: { memoryMiB: now.granted.memoryMiB, vcpus: now.granted.vcpus } };
    },
    now,
  );
  if (!settled.ok) {
    // Resized on the node; the intent still holds the larger of the two amounts until a retry of this id settles it.
    d.logger?.warn(
      { allocationId: allocation.id, resize: r.requestId, err: settled.error },
      'resized on the node, intent not yet settled; a retry of the resize settles it',
    );
    return settled;
  }
  return ok(resized.value);
}

/** What settling a held growth did: the agent holds it grown (kept), or not (given back); raced: the intent moved on. */
export type HoldOutcome = 'kept' | 'given back' | 'raced';

/**
 * Settles the growth held by `at` (a placed intent with `resizing`) without the resize's answer: fences the placement's
 * request id on its node at attempt+1 (the agent journals it before answering: from then on it refuses any resize,
 * release or allocate of that request id at a lower fence), reads what the allocation holds in the answer, and writes
 * those amounts, the new attempt and no `resizing` in one compare-and-set (the tenant's usage following in the same
 * batch). An allocation no longer held there keeps the amounts before the resize (its release ends the intent).
 * Refused when the node does not answer (the hold stays; try again later) or the intent changed meanwhile (raced).
 */
export async function settleHold(
  d: Pick<ResizeDeps, 'store' | 'agents' | 'agentTimeoutMs'>,
  at: StoredIntent,
): Promise<Result<HoldOutcome>> {
  const intent = at.value;
  const resizing = intent.resizing;
  if (intent.state !== 'placed' || resizing === undefined) return ok('raced');
  const fence = intent.attempt + 1;
  const fenced = await d.agents.call(
    intent.nodeId,
    'fence',
    { requestId: intent.requestId, fence },
    { requestId: intent.requestId, ...(d.agentTimeoutMs === undefined ? {} : { timeoutMs: d.agentTimeoutMs }) },
  );
  if (!fenced.ok) return fenced;
  const allocation = fenced.value.allocation;
  const live = allocation !== null && allocation.status === 'active';
  const amounts = live ? { memoryMiB: allocation.granted.memoryMiB, vcpus: allocation.granted.vcpus } : amountsOf(resizing);
  const written = await d.store.resized(at, amounts, undefined, live ? allocation : undefined, fence);
  if (!written.ok) return written.error.code === 'conflict' ? ok('raced') : written;
  return ok(amounts.memoryMiB > resizing.memoryMiB || amounts.vcpus > resizing.vcpus ? 'kept' : 'given back');
}
