import { createHash } from 'node:crypto';
import { AllotErrorSchema, EpochMsSchema, NodeIdSchema, PlaceReplySchema, RequestIdSchema, TenantIdSchema, type PlaceRequest } from '@allot/core';
import { z } from 'zod';

/**
 * A placement intent, stored in KV allot_placements under the request id. It is what makes `place` idempotent across
 * coordinators: created if absent before any agent is asked, it names the one node that may be holding (or about to
 * hold) the allocation; it moves to another node only by compare-and-set after that node refused definitively.
 * - pending: `nodeId` is being asked (or was, by a coordinator that died): a retry asks that node again, never another.
 * - placed: `reply` is the answer, returned as it is to every retry.
 * - failed: nothing was placed (every candidate refused); a retry may try again.
 * - released: placed, then released (by the tenant or by preemption).
 */
export const PlacementIntentSchema = z.object({
  requestId: RequestIdSchema,
  tenantId: TenantIdSchema,
  /** sha256 of the canonical request: the same id with a different request is a conflict. */
  hash: z.string().length(64),
  state: z.enum(['pending', 'placed', 'failed', 'released']),
  nodeId: NodeIdSchema.optional(),
  /** Nodes asked so far, this one included; 1-based count of the current node. */
  attempt: z.int().min(0),
  /** Nodes that refused definitively: never asked again for this request. */
  refusedBy: z.array(NodeIdSchema).max(64),
  reply: PlaceReplySchema.optional(),
  error: AllotErrorSchema.optional(),
  /** The coordinator that last wrote it (for operators reading the bucket). */
  coordinatorId: z.string().max(64),
  updatedAt: EpochMsSchema,
  /** memory and vCPUs, so a release can give the tenant's quota back without asking the agent. */
  memoryMiB: z.int().min(0),
  vcpus: z.int().min(0),
});
export type PlacementIntent = z.infer<typeof PlacementIntentSchema>;

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
  return createHash('sha256').update(JSON.stringify(canonical(request))).digest('hex');
}
