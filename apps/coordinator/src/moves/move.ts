import { createHash } from 'node:crypto';
import { err, errorOf, ok, type Allocation, type AllotError, type Result } from '@allot/core';
import {
  PlaceRequestSchema,
  type AllotEvent,
  type Move,
  type MoveRequest,
  type MoveSettleRequest,
  type PlaceReply,
  type PlaceRequest,
} from '@allot/protocol';
import { ALREADY_TRIED, unavailableMessage } from '@allot/placement';
import type { Logger } from 'pino';
import type { AgentCaller } from '../agents.ts';
import { liveAllocation } from '../live-allocation.ts';
import type { IntentStore, StoredIntent } from '../intents/intent-store.ts';
import { counts, countsAgainstQuota, type PlacementIntent, type ReleaseCause } from '../intents.ts';
import { settlePending } from '../intents/pending-placement.ts';

/*
 * A move of one placement to another node, in two phases over the place protocol (README.md, "Moves and evacuation"):
 * 1. start: the destination is placed as a reservation through PlaceFlow (fencing, retries, the reconciler: the place
 *    protocol's own), under a request id derived from the source allocation id and the move's request id, so a retry
 *    of the move finds the same destination. Its intent carries `movesFrom` and does not count against the tenant's
 *    usage; the source intent is marked `movingTo` (one move at a time).
 * 2. confirm: the destination is activated on its node, the move is claimed for its confirm (`settling: confirm` on the
 *    destination intent, by compare-and-set), then the source's agent releases the source allocation, and only then ONE
 *    atomic batch releases the source intent and makes the destination the placement (the usage moves the VM between
 *    nodes, counting it once). A source node that does not answer leaves the move "releasing source" (the destination
 *    active, uncounted; the source counted): a retry of the confirm, or the reconciler, finishes it.
 *    abort: the move is claimed for its abort (`settling: abort`), then the destination is released on its node and its
 *    intent released; the source is as it was.
 * The claim is the fence between the two: one compare-and-set on the destination intent wins, so a source is released
 * only by a claimed confirm and a destination only by a claimed abort; whoever comes later (a retry, another
 * coordinator, the reconciler) follows the claim. Every step is idempotent and resumable from the intents.
 */

export interface MoveDeps {
  readonly store: IntentStore;
  readonly flow: DestinationPlacer;
  readonly agents: AgentCaller;
  /** Whether a node has reported (an allocation id names its node: `<nodeId>:<counter>`). */
  readonly knowsNode: (nodeId: string) => boolean;
  /** A node the view has not heard from that is known to exist (unheard-node.ts): `unavailable`, not `not_found`. */
  readonly knownUnheard?: (nodeId: string) => boolean;
  /** How long a destination is held unconfirmed when the request names no holdMs. */
  readonly holdMs: number;
  readonly agentTimeoutMs?: number;
  readonly logger?: Logger;
  /** Publishes a cluster event (move_started, move_confirmed, move_aborted); fire and forget. */
  readonly publishEvent?: (event: AllotEvent, msgId: string) => void;
  /** The node is decommissioned and lost: a source there that does not answer is given up (decommission.ts). */
  readonly nodeGone?: (nodeId: string) => boolean;
}

/** What a confirm needs (the reconciler finishes half-confirmed moves with it). */
export type ConfirmDeps = Pick<MoveDeps, 'store' | 'agents' | 'agentTimeoutMs' | 'logger' | 'publishEvent' | 'nodeGone'>;

/** The reason counted for the source's node when no destination fits. */
const OWN_NODE = "is the allocation's own node";

/** A place that is a move's destination (moves/move.ts): never on the source's node, and not counted while it moves. */
export interface MoveDestination {
  readonly movesFrom: NonNullable<PlacementIntent['movesFrom']>;
  /** The source's place request as asked, kept on the destination for its own later moves. */
  readonly asked?: PlacementIntent['asked'];
}

/** What a move needs of the place flow (place-flow.ts, which imports this module): placing its destination. */
interface DestinationPlacer {
  place(req: PlaceRequest, move?: MoveDestination): Promise<Result<PlaceReply>>;
}

/** How a confirm's release of the source begins its reason (the agent's event carries it: quota-events.ts). */
export const MOVED_REASON = 'moved to ';

/** Rounds of re-reading an intent another writer changed meanwhile. */
const MAX_ROUNDS = 8;

/** A request id of our own, deterministic in its inputs (so every retry derives the same one), at most 128 characters. */
export function derivedRequestId(kind: string, ...parts: readonly string[]): string {
  return `${kind}-${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 40)}`;
}

/** The destination's request id of move `moveRequestId` of allocation `allocationId`. */
export function destinationRequestId(allocationId: string, moveRequestId: string): string {
  return derivedRequestId('move', allocationId, moveRequestId);
}

function agentOpts(timeoutMs: number | undefined, requestId: string): { requestId: string; timeoutMs?: number } {
  return timeoutMs === undefined ? { requestId } : { requestId, timeoutMs };
}

function sourceOf(intent: StoredIntent): Move['source'] | undefined {
  const allocationId = intent.value.reply?.allocation.id;
  return allocationId === undefined ? undefined : { allocationId, requestId: intent.value.requestId, nodeId: intent.value.nodeId };
}

/** The move as its destination intent tells it. */
export function moveOf(dest: StoredIntent['value'], source: Move['source'], moveRequestId: string, sourceReleased?: boolean): Move {
  // Claimed for its abort, the destination is on its way out: the move is aborted (its release may still be in flight).
  // Confirmed (its source handed it the count), it stays confirmed when the VM ends there later (released, preempted)
  // if it ran there: a hold handed the count because its source ended, and expired unconfirmed, was no move (seed 669).
  const state: Move['state'] =
    dest.settling === 'abort'
      ? 'aborted'
      : dest.movesFrom === undefined && (dest.state === 'placed' || (dest.state === 'released' && ranThere(dest)))
        ? 'confirmed'
        : dest.state === 'released' || dest.state === 'failed'
          ? 'aborted'
          : 'held';
  const allocation = dest.reply?.allocation;
  return {
    moveRequestId,
    tenantId: dest.tenantId,
    state,
    source,
    destination: { requestId: dest.requestId, nodeId: dest.nodeId, ...(allocation === undefined ? {} : { allocation }) },
    ...(sourceReleased === undefined ? {} : { sourceReleased }),
  };
}

/** A confirmed destination that ran on its node: the confirm's claim kept the activated allocation as its reply. */
function ranThere(dest: StoredIntent['value']): boolean {
  return dest.reply?.allocation.status === 'active';
}

/** Past the move's point of no return: confirmed and ran there, or claimed for its confirm (which goes forward). */
function pastNoReturn(dest: StoredIntent['value']): boolean {
  return (dest.movesFrom === undefined && ranThere(dest)) || dest.settling === 'confirm';
}

/** The intent; a pending one is settled from its node first (a placement answered a moment ago may not read placed yet). */
async function readIntent(d: ConfirmDeps, requestId: string): Promise<Result<StoredIntent | null>> {
  const read = await d.store.get(requestId);
  return read.ok && read.value?.value.state === 'pending' ? settlePending(d, read.value) : read;
}

/** The placed intent of the tenant's live allocation `allocationId`, found through its node's agent. */
async function sourceIntent(d: MoveDeps, allocationId: string, tenantId: string): Promise<Result<StoredIntent>> {
  const live = await liveAllocation(d, allocationId, tenantId);
  if (!live.ok) return live;
  const found = live.value;
  const read = await readIntent(d, found.requestId);
  if (!read.ok) return read;
  if (read.value === null || read.value.value.tenantId !== tenantId) {
    return err(
      'not_found',
      `allocation ${allocationId} was not placed through a coordinator (no placement ${found.requestId}); it cannot be moved`,
      { allocationId, requestId: found.requestId },
    );
  }
  return ok(read.value);
}

/** What the destination is asked: the source's place request (constraints, group, CPU options) as a held reservation. */
export function destinationRequest(
  source: StoredIntent['value'],
  destRequestId: string,
  holdMs: number,
  to: string | undefined,
): PlaceRequest {
  const asked = source.asked;
  const request = {
    ...(asked?.request ?? { tenantId: source.tenantId, resources: {} }),
    requestId: destRequestId,
    tenantId: source.tenantId,
    // The amounts the source counts now (a resize since the place changed them).
    resources: { ...(asked?.request.resources ?? {}), memoryMiB: source.memoryMiB, vcpus: source.vcpus },
    reservation: { ttlMs: holdMs },
  };
  const { nodeId: _manualNode, strategy, ...options } = asked?.placement ?? { constraints: [], allowPreemption: false };
  // A manual place named the source's node: the destination is placement's choice unless the move names one.
  const placement = {
    ...options,
    allowPreemption: false,
    ...(to !== undefined
      ? { strategy: 'manual' as const, nodeId: to }
      : strategy === undefined || strategy === 'manual'
        ? {}
        : { strategy }),
  };
  return PlaceRequestSchema.parse({ request, placement });
}

/**
 * Starts (or answers) move `moveRequestId` of the placed `source`: its destination held as a reservation elsewhere.
 * `to`: the destination node (default: placement's choice). Refusals: the source is not placed (`conflict`), another
 * move of it is in flight (`conflict`, reason `moving`), nothing fits (`insufficient_capacity` with the counted reasons).
 */
export async function startMove(
  d: MoveDeps,
  first: StoredIntent,
  moveRequestId: string,
  opts: { to?: string; holdMs?: number } = {},
): Promise<Result<Move>> {
  const source = sourceOf(first);
  if (source === undefined || first.value.movesFrom !== undefined) {
    return err(
      'conflict',
      `placement ${first.value.requestId} is ${first.value.state}${first.value.movesFrom === undefined ? '' : ' (a move destination)'}; only a placed allocation can be moved`,
      { requestId: first.value.requestId, state: first.value.state },
    );
  }
  if (opts.to !== undefined && opts.to === source.nodeId)
    return err('invalid_request', `allocation ${source.allocationId} is on ${opts.to} already`, { field: 'to' });
  const destId = destinationRequestId(source.allocationId, moveRequestId);
  const existing = await readIntent(d, destId);
  if (!existing.ok) return existing;
  const settled = existing.value?.value;
  // A settled move answers what it did (its source intent was released by the confirm, or left by the abort).
  if (
    settled !== undefined &&
    (settled.state === 'released' || settled.settling === 'abort' || (settled.state === 'placed' && settled.movesFrom === undefined))
  )
    return ok(moveOf(settled, source, moveRequestId));
  if (first.value.state !== 'placed') {
    return err('conflict', `placement ${first.value.requestId} is ${first.value.state}; only a placed allocation can be moved`, {
      requestId: first.value.requestId,
      state: first.value.state,
    });
  }
  if (first.value.movingTo?.requestId !== destId) {
    const active = await activeOnNode(d, first.value, source);
    if (!active.ok) return active;
  }
  const marked = await markSource(d, first, destId, moveRequestId);
  if (!marked.ok) return marked;
  const holdMs = opts.holdMs ?? d.holdMs;
  const req = destinationRequest(marked.value.value, destId, holdMs, opts.to);
  const placed = await d.flow.place(req, {
    movesFrom: { requestId: source.requestId, allocationId: source.allocationId, nodeId: source.nodeId, moveRequestId },
    ...(marked.value.value.asked === undefined ? {} : { asked: marked.value.value.asked }),
  });
  if (!placed.ok) {
    // Nothing held (failed) or never written: the source is free to move again under another id.
    const dest = await readIntent(d, destId);
    if (dest.ok && (dest.value === null || dest.value.value.state === 'failed')) await unmarkSource(d, source.requestId, destId);
    return { ok: false, error: sourceNodeNamed(placed.error) };
  }
  // A release of the source in flight when the move began may have landed since: its copy must not outlive it.
  const alive = await liveAllocation(d, source.allocationId, first.value.tenantId);
  if (!alive.ok && alive.error.code === 'not_found') {
    const dropped = await releaseHeldDestination(d, marked.value.value);
    if (!dropped.ok) return dropped;
    return err('conflict', `allocation ${source.allocationId} ended on ${source.nodeId} during its move; its destination was released`, {
      allocationId: source.allocationId,
      reason: 'source_ended',
    });
  }
  const reply: PlaceReply = placed.value;
  d.publishEvent?.(
    {
      kind: 'move_started',
      nodeId: reply.nodeId,
      at: Date.now(),
      requestId: destId,
      allocationId: source.allocationId,
      tenantId: first.value.tenantId,
      reason: `move ${moveRequestId}: ${source.allocationId} on ${source.nodeId} held on ${reply.nodeId} as ${reply.allocation.id}`,
    },
    `move_started-${destId}`,
  );
  const dest = await readIntent(d, destId);
  if (!dest.ok) return dest;
  if (dest.value === null) return err('internal', `move destination ${destId} disappeared`, { requestId: destId });
  return ok(moveOf(dest.value.value, source, moveRequestId));
}

/**
 * Only an active source is moved: a reservation can expire under its move (its quota given back) and leave the held
 * destination counted by nothing. An intent placed as a reservation may have been activated since: its node says.
 */
async function activeOnNode(d: MoveDeps, intent: StoredIntent['value'], source: Move['source']): Promise<Result<void>> {
  if (intent.reply?.allocation.status === 'active') return ok(undefined);
  const live = await liveAllocation(d, source.allocationId, intent.tenantId);
  if (!live.ok) return live;
  if (live.value.status === 'active') return ok(undefined);
  return err(
    'conflict',
    `allocation ${source.allocationId} is ${live.value.status}; only an active allocation can be moved (activate it first)`,
    { allocationId: source.allocationId, status: live.value.status, reason: 'not_active' },
  );
}

/** Placement counts the source's node, which a move excludes, as "already tried": say what it is. */
function sourceNodeNamed(e: AllotError): AllotError {
  const rejected = e.details?.['rejected'] as Record<string, number> | undefined;
  const tried = rejected?.[ALREADY_TRIED];
  const nodes = e.details?.['nodes'];
  if (e.code !== 'insufficient_capacity' || rejected === undefined || tried === undefined || typeof nodes !== 'number') return e;
  const { [ALREADY_TRIED]: _tried, ...rest } = rejected;
  const named = { ...rest, [OWN_NODE]: tried };
  return errorOf(e.code, unavailableMessage(nodes, named), { ...e.details, rejected: named });
}

/** Marks the source as moving to `destId`, refusing while another move of it holds a destination. */
async function markSource(d: MoveDeps, first: StoredIntent, destId: string, moveRequestId: string): Promise<Result<StoredIntent>> {
  let at = first;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const moving = at.value.movingTo;
    if (moving?.requestId === destId) return ok(at);
    // A resize in flight: the destination would be held at the size before it (sim seed 373: a shrink settled after
    // the move began, its destination kept 4 vCPUs the quota no longer counted). The mark's compare-and-set orders the two.
    const resizing = at.value.resizing;
    if (resizing !== undefined)
      return err(
        'conflict',
        `allocation ${at.value.reply?.allocation.id ?? at.value.requestId} is being resized (resize ${resizing.requestId}); retry the resize first, then move`,
        { reason: 'resizing', resizing: resizing.requestId },
      );
    if (moving !== undefined) {
      const other = await readIntent(d, moving.requestId);
      if (!other.ok) return other;
      const live =
        other.value !== null &&
        (other.value.value.state === 'pending' || other.value.value.state === 'placed') &&
        other.value.value.movesFrom !== undefined;
      if (live) {
        return err(
          'conflict',
          `allocation ${at.value.reply?.allocation.id ?? at.value.requestId} is being moved by move ${moving.moveRequestId}; confirm or abort it first`,
          { reason: 'moving', moveRequestId: moving.moveRequestId },
        );
      }
    }
    const written = await d.store.markMoving(at, { requestId: destId, moveRequestId });
    if (written.ok || written.error.code !== 'conflict') return written;
    const read = await readIntent(d, at.value.requestId);
    if (!read.ok) return read;
    if (read.value === null || read.value.value.state !== 'placed')
      return err('conflict', `placement ${at.value.requestId} changed during the move; it is ${read.value?.value.state ?? 'gone'}`, {
        requestId: at.value.requestId,
      });
    at = read.value;
  }
  return err('unavailable', `placement ${first.value.requestId} keeps changing; retry the move`, { requestId: first.value.requestId });
}

/** Clears the source's movingTo when it names `destId` (best effort: a stale mark is replaced by the next move). */
async function unmarkSource(d: ConfirmDeps, sourceRequestId: string, destId: string): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const read = await readIntent(d, sourceRequestId);
    if (!read.ok || read.value === null || read.value.value.movingTo?.requestId !== destId || read.value.value.state !== 'placed') return;
    const written = await d.store.markMoving(read.value, undefined);
    if (written.ok || written.error.code !== 'conflict') return;
  }
}

/** move (allot.sched.<tenant>.move): the tenant's live allocation, found on its node, moved (held elsewhere). */
export async function moveAllocation(d: MoveDeps, r: MoveRequest, tenantId: string): Promise<Result<Move>> {
  const source = await sourceIntent(d, r.allocationId, tenantId);
  if (!source.ok) return source;
  if (source.value.value.reply?.allocation.id !== r.allocationId) {
    return err('conflict', `allocation ${r.allocationId} is not the placement ${source.value.value.requestId} the coordinators know`, {
      allocationId: r.allocationId,
    });
  }
  return startMove(d, source.value, r.requestId, {
    ...(r.to === undefined ? {} : { to: r.to }),
    ...(r.holdMs === undefined ? {} : { holdMs: r.holdMs }),
  });
}

/** The move's destination and source intents, the destination checked to be this tenant's move of this allocation. */
async function intentsOf(
  d: ConfirmDeps,
  r: MoveSettleRequest,
  tenantId: string,
): Promise<Result<{ dest: StoredIntent; source: StoredIntent | null; from: Move['source'] }>> {
  const destId = destinationRequestId(r.allocationId, r.requestId);
  const notFound = err('not_found', `tenant ${tenantId} has no move ${r.requestId} of ${r.allocationId}`, {
    requestId: r.requestId,
    allocationId: r.allocationId,
  });
  const dest = await readIntent(d, destId);
  if (!dest.ok) return dest;
  if (dest.value === null || dest.value.value.tenantId !== tenantId) return notFound;
  const from = dest.value.value.movesFrom ?? dest.value.value.movedFrom;
  if (from === undefined || from.allocationId !== r.allocationId) return notFound;
  const source = await readIntent(d, from.requestId);
  if (!source.ok) return source;
  return ok({
    dest: dest.value,
    source: source.value,
    from: { allocationId: from.allocationId, requestId: from.requestId, nodeId: from.nodeId },
  });
}

/**
 * move.confirm: the destination activated on its node, the move claimed for its confirm, the source released on its
 * node, then one batch: source intent released, destination the placement (counted once). The source stays counted
 * until its release is proven (its node answered, its intent ended, or its node is gone): otherwise `unavailable`
 * (reason `move_source`), the move left "releasing source" for a retry or the reconciler. A move claimed for its abort
 * is finished that way and answers `conflict` (reason `aborted`). Repeating it answers the confirmed move.
 */
export async function confirmMove(d: ConfirmDeps, r: MoveSettleRequest, tenantId: string): Promise<Result<Move>> {
  const found = await intentsOf(d, r, tenantId);
  if (!found.ok) return found;
  let { dest, source } = found.value;
  const from = found.value.from;
  const reread = async (): Promise<Result<void>> => {
    const again = await intentsOf(d, r, tenantId);
    if (!again.ok) return again;
    ({ dest, source } = again.value);
    return ok(undefined);
  };
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const v = dest.value;
    const ended = await endedDestination(d, v, source, from, r.requestId);
    if (ended !== undefined) return ended;
    if (v.settling === 'abort' || v.state === 'released' || v.state === 'failed') {
      // Aborted, or being aborted: that is finished, never the confirm (its source may be all that is left).
      const ended = v.settling === 'abort' && counts(v.state) ? await finishAbort(d, dest, `move ${r.requestId} aborted`) : ok(dest);
      if (!ended.ok) {
        if (ended.error.code !== 'conflict') return ended;
        const again = await reread();
        if (!again.ok) return again;
        continue;
      }
      return err(
        'conflict',
        `move ${r.requestId} was aborted${ended.value.value.releasedBy === 'expiry' ? ' (its hold expired)' : ''}; its destination on ${v.nodeId} is released`,
        { requestId: r.requestId, state: ended.value.value.state, reason: 'aborted' },
      );
    }
    if (v.state === 'placed' && v.movesFrom === undefined) {
      // Handed the count while still held (its source ended: endPlacement): the confirm activates it now.
      const held = v.reply?.allocation;
      if (held !== undefined && held.status !== 'active') {
        const activated = await activateDestination(d, v, held, r.requestId, from);
        if (!activated.ok) return activated;
      }
      const released = await releaseSource(d, from, v.nodeId, r.requestId);
      return ok(moveOf(v, from, r.requestId, released));
    }
    if (v.state === 'pending')
      return err(
        'conflict',
        `move ${r.requestId}: its destination on ${v.nodeId} is still pending; retry the move with its request id first`,
        { requestId: r.requestId, state: 'pending' },
      );
    const held = v.reply?.allocation;
    if (held === undefined) return err('internal', `move destination ${v.requestId} is placed without a reply`, { requestId: v.requestId });
    // Claimed, it is active already (the claim keeps the activation's answer): its node need not answer again.
    const activated = await activateDestination(d, v, held, r.requestId, from);
    if (!activated.ok) return activated;
    const reply: PlaceReply = { ...(v.reply as PlaceReply), allocation: activated.value, cpuset: activated.value.cpu?.cpuset ?? [] };
    if (v.settling !== 'confirm') {
      // The point of no return: from this claim on no abort releases the destination, and only now may the source go.
      const claimed = await d.store.claimSettling(dest, 'confirm', reply);
      if (claimed.ok) dest = claimed.value;
      else if (claimed.error.code !== 'conflict') return claimed;
      else {
        const again = await reread();
        if (!again.ok) return again;
      }
      continue;
    }
    const active = activated.value;
    // Only a source no longer running (or given up) stops counting: until then the VM counts on its source.
    const freed = await sourceFreed(d, source, from, v.nodeId, r.requestId);
    if (!freed.ok) return freed;
    // A source intent gone (its TTL) or released meanwhile: the destination is admitted alone against the quota.
    const settled = await d.store.moveConfirmed(source, dest, reply);
    if (settled.ok) {
      dest = settled.value.dest;
      d.publishEvent?.(
        {
          kind: 'move_confirmed',
          nodeId: dest.value.nodeId,
          at: Date.now(),
          requestId: dest.value.requestId,
          allocationId: from.allocationId,
          tenantId,
          reason: `move ${r.requestId}: ${from.allocationId} on ${from.nodeId} is ${active.id} on ${dest.value.nodeId} now`,
        },
        `move_confirmed-${dest.value.requestId}`,
      );
      continue; // answers through the confirmed branch: releases the source on its node
    }
    if (settled.error.code !== 'conflict') return settled;
    const again = await reread();
    if (!again.ok) return again;
  }
  return err('unavailable', `move ${r.requestId} keeps changing; retry the confirm`, { requestId: r.requestId });
}

/**
 * What a settle verb answers when the move's destination ended other than by the move's abort or an expired hold:
 * after the move got past its point of no return (confirmed, or claimed for its confirm) and then was preempted or
 * released there, or preempted (or ended there otherwise) while only held. Never "aborted": `conflict` with reason `preempted` (naming the
 * preemptor when known) or `released`, and `state: 'confirmed'` when the VM had moved (its source is gone: a claimed
 * confirm goes forward, releasing the source on its node and ending its intent first, `unavailable` while that node
 * does not answer) or `state: 'released'` when it never left its source (which stays). undefined: not such a move.
 */
async function endedDestination(
  d: ConfirmDeps,
  v: StoredIntent['value'],
  source: StoredIntent | null,
  from: Move['source'],
  moveRequestId: string,
): Promise<Result<never> | undefined> {
  if (v.state !== 'released' || v.settling === 'abort') return undefined;
  const confirmed = pastNoReturn(v);
  const preempted = v.releasedBy === 'preemption';
  // Held, and ended on its node by something else than the move (its agent, the sweep finding it gone: sim seed 464,
  // a preemption whose event came after the sweep; a decommission): an expired hold is the move's own abort.
  const endedThere = preempted || v.releasedBy === 'agent' || v.releasedBy === 'sweep' || v.releasedBy === 'decommission';
  if (!confirmed && !endedThere) return undefined;
  if (v.settling === 'confirm') {
    const freed = await sourceFreed(d, source, from, v.nodeId, moveRequestId);
    if (!freed.ok) return freed;
    const gone = await endMovedSource(d, from.requestId, v);
    if (!gone.ok) return gone;
  }
  const allocationId = v.reply?.allocation.id;
  const preemptedBy = preempted ? await ownPreemptor(d, v) : undefined;
  const what = preempted ? `preempted${preemptedBy === undefined ? '' : ` by ${preemptedBy}`}` : `released (${v.releasedBy ?? 'unknown'})`;
  const message = confirmed
    ? `move ${moveRequestId} was confirmed; its allocation ${allocationId ?? v.requestId} on ${v.nodeId} was since ${what}`
    : `move ${moveRequestId}: its destination on ${v.nodeId} was ${what} before the move was confirmed; the allocation stays on ${from.nodeId}`;
  return err('conflict', message, {
    requestId: moveRequestId,
    reason: preempted ? 'preempted' : 'released',
    state: confirmed ? 'confirmed' : 'released',
    nodeId: v.nodeId,
    ...(allocationId === undefined ? {} : { allocationId }),
    ...(v.releasedBy === undefined ? {} : { releasedBy: v.releasedBy }),
    ...(preemptedBy === undefined ? {} : { preemptedBy }),
  });
}

/**
 * The preemptor's request id when it is the victim's own tenant's; another tenant's is not named (as a place names only
 * the caller's own victims): its intent is read, and one not found (finished long ago) is not named either.
 */
async function ownPreemptor(d: ConfirmDeps, v: StoredIntent['value']): Promise<string | undefined> {
  if (v.preemptedBy === undefined) return undefined;
  const read = await d.store.get(v.preemptedBy);
  return read.ok && read.value?.value.tenantId === v.tenantId ? v.preemptedBy : undefined;
}

/** The source intent of a claimed confirm whose destination ended: released, as the VM ended (its count goes back). */
async function endMovedSource(d: ConfirmDeps, sourceRequestId: string, dest: StoredIntent['value']): Promise<Result<void>> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const read = await d.store.get(sourceRequestId);
    if (!read.ok) return read;
    const at = read.value;
    if (at === null || !countsAgainstQuota(at.value) || at.value.movingTo?.requestId !== dest.requestId) return ok(undefined);
    const written = await d.store.released(at, dest.releasedBy ?? 'move', dest.preemptedBy);
    if (written.ok) return ok(undefined);
    if (written.error.code !== 'conflict') return written;
  }
  return err('unavailable', `placement ${sourceRequestId} keeps changing; retry the confirm`, { requestId: sourceRequestId });
}

/** The destination activated on its node (idempotent: a derived request id), or why not (its hold expired). */
async function activateDestination(
  d: ConfirmDeps,
  v: StoredIntent['value'],
  held: Allocation,
  moveRequestId: string,
  from: Move['source'],
): Promise<Result<Allocation>> {
  if (held.status === 'active') return ok(held);
  const activated = await d.agents.call(
    v.nodeId,
    'activate',
    { requestId: derivedRequestId('move-activate', v.requestId), allocationId: held.id },
    agentOpts(d.agentTimeoutMs, v.requestId),
  );
  if (!activated.ok) return activated;
  if (activated.value.status !== 'active')
    return err(
      'conflict',
      `move ${moveRequestId}: the destination ${held.id} is ${activated.value.status} (its hold expired?); the allocation stays on ${from.nodeId}`,
      { requestId: moveRequestId, status: activated.value.status },
    );
  return ok(activated.value);
}

/**
 * Proves the source no longer runs, or is given up: its intent ended already (its agent's event, a decommission: its
 * quota went back then), its node released it, or its node is decommissioned and lost. Else `unavailable`.
 */
async function sourceFreed(
  d: ConfirmDeps,
  source: StoredIntent | null,
  from: Move['source'],
  destNode: string,
  moveRequestId: string,
): Promise<Result<void>> {
  if (source === null || !countsAgainstQuota(source.value)) return ok(undefined);
  if (await releaseSource(d, from, destNode, moveRequestId)) return ok(undefined);
  if (d.nodeGone?.(from.nodeId) === true) return ok(undefined);
  return err(
    'unavailable',
    `move ${moveRequestId}: the source ${from.allocationId} on ${from.nodeId} did not answer its release; it stays counted there (retry the confirm)`,
    { requestId: moveRequestId, reason: 'move_source', nodeId: from.nodeId },
  );
}

/**
 * A moved VM's source released on its node under the confirm's release id, so every sender (the confirm, a later
 * release of the moved VM: place-flow.ts) sends the same request; not_found counts as released. The reason starts with
 * MOVED_REASON, which the quota events read as the confirm's own release.
 */
export async function releaseSourceOnNode(
  agents: AgentCaller,
  from: Pick<Move['source'], 'nodeId' | 'allocationId' | 'requestId'>,
  destNode: string,
  moveRequestId: string,
  timeoutMs?: number,
): Promise<Result<void>> {
  const releaseId = derivedRequestId('move-release', from.allocationId, moveRequestId);
  const released = await agents.call(
    from.nodeId,
    'release',
    { requestId: releaseId, allocationRequestId: from.requestId, reason: `${MOVED_REASON}${destNode} (move ${moveRequestId})` },
    agentOpts(timeoutMs, releaseId),
  );
  return released.ok || released.error.code === 'not_found' ? ok(undefined) : released;
}

/** A move's destination released on its node at its fence under the abort's release id; not_found counts as released. */
async function releaseDestinationOnNode(
  agents: AgentCaller,
  dest: Pick<StoredIntent['value'], 'nodeId' | 'requestId' | 'attempt'>,
  reason: string,
  timeoutMs?: number,
): Promise<Result<void>> {
  const releaseId = derivedRequestId('move-abort', dest.requestId);
  const released = await agents.call(
    dest.nodeId,
    'release',
    { requestId: releaseId, allocationRequestId: dest.requestId, fence: dest.attempt, reason },
    agentOpts(timeoutMs, releaseId),
  );
  return released.ok || released.error.code === 'not_found' ? ok(undefined) : released;
}

/** Releases the source allocation on its node (idempotent); false when the node did not answer. */
async function releaseSource(d: ConfirmDeps, from: Move['source'], destNode: string, moveRequestId: string): Promise<boolean> {
  const released = await releaseSourceOnNode(d.agents, from, destNode, moveRequestId, d.agentTimeoutMs);
  if (released.ok) return true;
  d.logger?.warn(
    { allocationId: from.allocationId, node: from.nodeId, move: moveRequestId, code: released.error.code },
    'move: the source node did not answer the release of the source',
  );
  return false;
}

/**
 * Ends a placement intent found ended or given up on its node (decommission.ts, sweep.ts, quota-events.ts). When a move
 * holds a destination for it, the destination takes its count in the batch that releases the source: released alone,
 * the source's quota would go back while the destination, counted 0, stays on (or still lands on) its node. A
 * destination held or half-confirmed becomes the placement (its confirm activates it); one still pending, or being
 * aborted, is claimed for its abort and counted until it is proven gone (the abort or the next reconcile round).
 */
export async function endPlacement(
  store: IntentStore,
  source: StoredIntent,
  cause: ReleaseCause,
  preemptedBy?: string,
): Promise<Result<unknown>> {
  const moving = source.value.movingTo;
  const dest = moving === undefined ? undefined : await store.get(moving.requestId);
  if (dest !== undefined && !dest.ok) return dest;
  const held = dest?.value;
  if (held === undefined || held === null || !counts(held.value.state) || held.value.movesFrom?.requestId !== source.value.requestId)
    return store.released(source, cause, preemptedBy);
  if (held.value.state === 'pending' || held.value.settling === 'abort') return store.sourceEnded(source, held, cause);
  if (held.value.reply === undefined) return store.released(source, cause);
  return store.moveConfirmed(source, held, held.value.reply);
}

/**
 * The destination a move holds for a source being released (a release in flight on the source's node when the move
 * marked it; place-flow.ts): claimed for its abort, released on its node at its fence and its intent released, before
 * the source's quota goes back, so no held copy outlives its counted source. A move claimed for its confirm is left to
 * it (the VM goes on at its destination).
 */
export async function releaseHeldDestination(
  d: Pick<ConfirmDeps, 'store' | 'agents' | 'agentTimeoutMs'>,
  source: StoredIntent['value'],
): Promise<Result<void>> {
  const moving = source.movingTo;
  if (moving === undefined) return ok(undefined);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const read = await d.store.get(moving.requestId);
    if (!read.ok) return read;
    const dest = read.value;
    if (dest === null || !counts(dest.value.state) || dest.value.settling === 'confirm') return ok(undefined);
    if ((dest.value.movesFrom ?? dest.value.movedFrom)?.requestId !== source.requestId) return ok(undefined);
    if (dest.value.movesFrom === undefined && dest.value.settling !== 'abort') return ok(undefined); // confirmed
    const ended = await finishAbort(d, dest, `its source ${source.requestId} was released`);
    if (ended.ok || ended.error.code !== 'conflict') return ended.ok ? ok(undefined) : ended;
  }
  return err('unavailable', `move destination ${moving.requestId} keeps changing; retry`, { requestId: moving.requestId });
}

/**
 * Drives a move's destination to its abort: claimed `abort` first (by compare-and-set, unless claimed already; a move
 * claimed for its confirm is `conflict`, reason `confirming`), then released on its node at its fence under the abort's
 * release id (a destination still pending is fenced at its attempt first: nothing lands for it after that), then its
 * intent released (or failed: nothing landed), giving back the count it took if its source ended (endPlacement). The
 * source's mark is cleared. `conflict`: the intent moved meanwhile (re-read and call again).
 */
export async function finishAbort(
  d: Pick<ConfirmDeps, 'store' | 'agents' | 'agentTimeoutMs' | 'publishEvent'>,
  at: StoredIntent,
  reason: string,
): Promise<Result<StoredIntent>> {
  let dest = at;
  const v0 = dest.value;
  if (!counts(v0.state)) return ok(dest);
  if (v0.settling === 'confirm')
    return err('conflict', `move destination ${v0.requestId} is claimed by its confirm; confirm it again to finish`, {
      requestId: v0.requestId,
      reason: 'confirming',
    });
  if (v0.settling !== 'abort') {
    const claimed = await d.store.claimSettling(dest, 'abort');
    if (!claimed.ok) return claimed;
    dest = claimed.value;
  }
  const v = dest.value;
  const opts = agentOpts(d.agentTimeoutMs, v.requestId);
  if (v.state === 'pending') {
    const fenced = await d.agents.call(v.nodeId, 'fence', { requestId: v.requestId, fence: v.attempt }, opts);
    if (!fenced.ok) return fenced;
    if (fenced.value.allocation === null) {
      const error = errorOf('conflict', `move destination ${v.requestId} was aborted before it landed on ${v.nodeId}`, {
        requestId: v.requestId,
        reason: 'aborted',
      });
      return settledAbort(d, dest, await d.store.failed(dest, error));
    }
  }
  const released = await releaseDestinationOnNode(d.agents, v, reason, d.agentTimeoutMs);
  if (!released.ok) return released;
  return settledAbort(d, dest, await d.store.released(dest, 'tenant'));
}

/** After an abort's write: the source's mark cleared and the move_aborted event published. */
async function settledAbort(
  d: Pick<ConfirmDeps, 'store' | 'agents' | 'agentTimeoutMs' | 'publishEvent'>,
  at: StoredIntent,
  written: Result<StoredIntent>,
): Promise<Result<StoredIntent>> {
  if (!written.ok) return written;
  const v = at.value;
  const from = v.movesFrom ?? v.movedFrom;
  if (from === undefined) return written;
  await unmarkSource(d, from.requestId, v.requestId);
  d.publishEvent?.(
    {
      kind: 'move_aborted',
      nodeId: v.nodeId,
      at: Date.now(),
      requestId: v.requestId,
      allocationId: from.allocationId,
      tenantId: v.tenantId,
      reason: `move ${from.moveRequestId}: ${from.allocationId} stays on ${from.nodeId}`,
    },
    `move_aborted-${v.requestId}`,
  );
  return written;
}

/** move.abort: claimed for its abort, the destination released on its node and its intent released; the source stays. */
export async function abortMove(d: ConfirmDeps, r: MoveSettleRequest, tenantId: string): Promise<Result<Move>> {
  const found = await intentsOf(d, r, tenantId);
  if (!found.ok) return found;
  let dest = found.value.dest;
  const from = found.value.from;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const v = dest.value;
    // Past its point of no return and ended since (preempted, released): the move is not aborted, it was confirmed.
    if (v.state === 'released' && pastNoReturn(v)) {
      const ended = await endedDestination(d, v, found.value.source, from, r.requestId);
      if (ended !== undefined) return ended;
    }
    if (v.state === 'released' || v.state === 'failed') {
      await unmarkSource(d, from.requestId, v.requestId);
      return ok(moveOf(v, from, r.requestId));
    }
    if (v.settling !== 'abort') {
      if (v.state === 'placed' && v.movesFrom === undefined)
        return err('conflict', `move ${r.requestId} was confirmed; the allocation is on ${v.nodeId} now (move it back with a new move)`, {
          requestId: r.requestId,
          state: 'confirmed',
        });
      if (v.settling === 'confirm')
        return err(
          'conflict',
          `move ${r.requestId}: its confirm activated the destination and may have released the source ${from.allocationId} on ${from.nodeId}; confirm it again to finish`,
          { requestId: r.requestId, reason: 'confirming' },
        );
      if (v.state === 'pending')
        return err(
          'conflict',
          `move ${r.requestId}: its destination on ${v.nodeId} is still pending; retry the move with its request id, then abort`,
          { requestId: r.requestId, state: 'pending' },
        );
    }
    const ended = await finishAbort(d, dest, `move ${r.requestId} aborted`);
    if (ended.ok) {
      dest = ended.value;
      continue;
    }
    if (ended.error.code !== 'conflict') return ended;
    const read = await readIntent(d, v.requestId);
    if (!read.ok) return read;
    if (read.value === null) return err('not_found', `move ${r.requestId} is gone`, { requestId: r.requestId });
    dest = read.value;
  }
  return err('unavailable', `move ${r.requestId} keeps changing; retry the abort`, { requestId: r.requestId });
}
