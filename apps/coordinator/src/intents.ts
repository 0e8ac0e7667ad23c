import { createHash } from 'node:crypto';
import {
  AllocationIdSchema,
  AllotErrorSchema,
  EpochMsSchema,
  HugepagesRequestSchema,
  NodeIdSchema,
  RequestIdSchema,
  TenantIdSchema,
} from '@allot/core';
import { PlaceReplySchema, PlaceRequestSchema, type PlaceRequest } from '@allot/protocol';
import { z } from 'zod';

/** Who or what ended a placement. */
/** `agent`: found released on its node (released there directly); `expiry`: a reservation that expired on its node. */
/** `decommission`: its node was decommissioned while lost: gone with the node, on the operator's word. */
/** `move`: a move of it was confirmed: its destination is the placement now (moves/*.ts). */
/** `batch`: a member of a batch that failed as a whole, released on its node (place-batch.ts). */
export const ReleaseCauseSchema = z.enum(['tenant', 'expiry', 'preemption', 'sweep', 'agent', 'decommission', 'move', 'batch']);
export type ReleaseCause = z.infer<typeof ReleaseCauseSchema>;

/**
 * A placement intent, stored under the request id. It is what makes `place` idempotent across coordinators: created
 * before any agent is asked, it names the one node that may hold (or be about to hold) the allocation. Its states and
 * transitions are owned by IntentStore (intents/intent-store.ts; diagram in README.md, "The place protocol").
 * - pending: `nodeId` is being asked (or was, by a coordinator that died): a retry asks that node again, never another.
 * - placed: `reply` is the answer, returned as it is to every retry.
 * - failed: nothing was placed (every candidate refused, or a reconciler fenced an abandoned one); a retry may take it over.
 * - released: placed, then released (by the tenant, a reservation's expiry, preemption or the sweep).
 */
export const PlacementIntentSchema = z.object({
  requestId: RequestIdSchema,
  tenantId: TenantIdSchema,
  /** sha256 of the canonical request: the same id with a different request is a conflict. */
  hash: z.string().length(64),
  state: z.enum(['pending', 'placed', 'failed', 'released']),
  nodeId: NodeIdSchema,
  /**
   * The fencing epoch: every drive (create, ask the same node again, move to the next node, take over a failed intent)
   * sets attempt+1 by compare-and-set, then sends allocate with `fence: attempt`. An agent never commits a fence at or
   * below one it refused or was fenced at, so whoever wrote the highest attempt is the only driver that can still commit.
   */
  attempt: z.int().min(1),
  /** Nodes that refused definitively: never asked again for this request. */
  refusedBy: z.array(NodeIdSchema).max(64),
  reply: PlaceReplySchema.optional(),
  error: AllotErrorSchema.optional(),
  releasedBy: ReleaseCauseSchema.optional(),
  /** Released by a preemption: the preemptor's request id, when known (a later confirm of a move names it: moves/move.ts). */
  preemptedBy: RequestIdSchema.optional(),
  /** The coordinator that last wrote it (for operators reading the bucket). */
  coordinatorId: z.string().max(64),
  /** Wall time of the last write, for operators only: no decision compares it with another clock. */
  updatedAt: EpochMsSchema,
  /** memory and vCPUs: what the intent counts against the tenant's usage while pending or placed. */
  memoryMiB: z.int().min(0),
  vcpus: z.int().min(0),
  /** The request's hugepages, counted against the tenant's maxHugepagesMiB like the amounts above (absent: none). */
  hugepages: HugepagesRequestSchema.optional(),
  /**
   * A resize in flight (resize.ts): its request id and the amounts before it. The amounts above already count the
   * larger of old and new per dimension (a growth held before the agent was asked; a shrink changes nothing until
   * answered); the agent's answer settles them, a retry of the same resize or the reconciler finishes it, and another
   * resize waits for it.
   */
  resizing: z.object({ requestId: RequestIdSchema, memoryMiB: z.int().min(0), vcpus: z.int().min(0) }).optional(),
  /**
   * The place request as it was asked (constraints, anti-affinity group, CPU options): what a move of this placement
   * asks of its destination. Absent from intents written before moves existed (a move then asks the amounts only).
   */
  asked: PlaceRequestSchema.optional(),
  /**
   * This intent is a move's destination (moves/move.ts): held on its node while the source placement still runs. It
   * does not count against the tenant's usage (the source does) until the move is confirmed, when one atomic batch
   * releases the source and drops this field.
   */
  movesFrom: z
    .object({ requestId: RequestIdSchema, allocationId: AllocationIdSchema, nodeId: NodeIdSchema, moveRequestId: RequestIdSchema })
    .optional(),
  /** A confirmed move's destination: where it moved from (informative only; counts as any placement). */
  movedFrom: z
    .object({ requestId: RequestIdSchema, allocationId: AllocationIdSchema, nodeId: NodeIdSchema, moveRequestId: RequestIdSchema })
    .optional(),
  /** On a placed source: the destination's request id of its move in flight (one at a time; cleared on abort). */
  movingTo: z.object({ requestId: RequestIdSchema, moveRequestId: RequestIdSchema }).optional(),
  /**
   * On a move's destination: which way the move is being settled, claimed by compare-and-set before the first step that
   * cannot be undone (moves/move.ts). `confirm`: its destination is active and its source may be released, so it only
   * goes forward; `abort`: its destination is being released, so its source is never released for it. One claim per
   * move, never changed: whoever finishes the move (a retry, another coordinator, the reconciler) follows it.
   */
  settling: z.enum(['confirm', 'abort']).optional(),
  /**
   * A member of a batch placed all or nothing (place-batch.ts): the batch's id, this member's position, the batch's
   * size. Its members were created together in one atomic write; a retry of the batch finds them by it. `first`, member
   * 0's request id, tells this batch from another of the tenant's with the same id (batch-settle.ts; absent in intents
   * written before it).
   */
  batch: z.object({ batchId: RequestIdSchema, index: z.int().min(0), size: z.int().min(1), first: RequestIdSchema.optional() }).optional(),
});
export type PlacementIntent = z.infer<typeof PlacementIntentSchema>;
export type IntentState = PlacementIntent['state'];

/** Whether an intent in this state names a placement that may be live on its node (pending or placed). */
export function counts(state: IntentState): boolean {
  return state === 'pending' || state === 'placed';
}

/** Whether the intent counts against its tenant's usage: pending or placed, and not a move's destination (its source counts). */
export function countsAgainstQuota(intent: Pick<PlacementIntent, 'state' | 'movesFrom'>): boolean {
  return counts(intent.state) && intent.movesFrom === undefined;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = canonical(v);
    }
    return out;
  }
  return value;
}

/** The request's fingerprint: the parsed request (defaults filled) with keys sorted, so key order does not matter. */
export function requestHash(request: PlaceRequest): string {
  return createHash('sha256')
    .update(JSON.stringify(canonical(request)))
    .digest('hex');
}
