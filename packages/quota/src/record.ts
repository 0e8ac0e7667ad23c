import { err, ok, RequestIdSchema, TenantIdSchema, TenantQuotaSchema, type Result, type TenantQuota } from '@allot/core';
import { z } from 'zod';
import { checkQuota } from './check.ts';
import { applyPlacement, applyRelease, emptyUsage, PlacementSchema, TenantUsageSchema, type Placement, type TenantUsage } from './usage.ts';

/*
 * The per-tenant record the coordinators keep in the KV bucket allot_quotas and update by compare-and-set: the quota,
 * the usage it is checked against, and which placements that usage counts. Keeping the live placements by request id
 * is what makes counting idempotent across coordinators: a placement retried on another coordinator finds its id
 * already counted, and a release takes away exactly what was counted, whatever figures the caller sends.
 *
 * Every function here is pure: (record, input) -> new record. A call that changes nothing returns the very same record
 * object, so a CAS loop can skip its write when `result.value === record`.
 */

/**
 * Live placements a record tracks at most, so that the record fits NATS' default 1 MiB payload even with the longest ids
 * (128-character request ids, every VM on its own 64-character node: about 310 bytes a placement in msgpack; typical
 * UUIDs and short node names take about 80). A tenant at this count is refused further placements (quota_exceeded,
 * limit maxTrackedPlacements) until a placement is released.
 */
export const MAX_TRACKED_PLACEMENTS = 3000;
/** The payload a stored record must fit: NATS' default max_payload. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** Request ids of recent releases remembered, so that a late retry of an already released placement is not counted again. */
export const MAX_RECENT_RELEASES = 256;

/** A placement the record counts, under the request id that made it. */
export const LivePlacementSchema = PlacementSchema.extend({ requestId: RequestIdSchema });
export type LivePlacement = z.infer<typeof LivePlacementSchema>;

export const TenantQuotaRecordSchema = z
  .object({
    version: z.literal(1),
    tenantId: TenantIdSchema,
    quota: TenantQuotaSchema,
    usage: TenantUsageSchema,
    /**
     * The placements usage counts, oldest first, each with its request id. An array rather than a map keyed by request
     * id: copying a plain object of thousands of keys (copy-on-write for CAS) is ~15x slower than copying an array, and a
     * linear search of a few thousand ids costs microseconds.
     */
    live: z
      .array(LivePlacementSchema)
      .max(MAX_TRACKED_PLACEMENTS)
      .refine((ps) => new Set(ps.map((p) => p.requestId)).size === ps.length, { message: 'a request id is counted at most once' }),
    /** Request ids released most recently, oldest first. */
    recentlyReleased: z.array(RequestIdSchema).max(MAX_RECENT_RELEASES),
  })
  .refine((r) => r.quota.tenantId === r.tenantId, { message: 'quota.tenantId must be the record tenantId', path: ['quota', 'tenantId'] })
  .refine((r) => sameUsage(r.usage, usageOf(r.live)), { message: 'usage must equal the sum of the live placements', path: ['usage'] });
export type TenantQuotaRecord = z.infer<typeof TenantQuotaRecordSchema>;

/** A record for a tenant that holds nothing yet. */
export function newQuotaRecord(quota: TenantQuota): TenantQuotaRecord {
  return { version: 1, tenantId: quota.tenantId, quota, usage: emptyUsage(), live: [], recentlyReleased: [] };
}

/**
 * A new quota for the record; usage stays as counted. Lowering a limit below current usage refuses new placements
 * until enough is released; it evicts nothing.
 */
export function withQuota(record: TenantQuotaRecord, quota: TenantQuota): Result<TenantQuotaRecord> {
  if (quota.tenantId !== record.tenantId) {
    return err('invalid_request', `quota.tenantId: ${quota.tenantId} is not the record's tenant ${record.tenantId}`, { field: 'quota.tenantId' });
  }
  return ok({ ...record, quota });
}

/**
 * Count a placement against the tenant's quota, idempotently by its request id:
 * - the same id with the same placement again: ok, record unchanged (a retry, maybe from another coordinator);
 * - the same id with a different placement: conflict;
 * - an id released recently: ok, record unchanged (a late retry must not count a released VM again);
 * - over a limit: quota_exceeded naming the limit and the figures; invalid input: invalid_request naming the field.
 */
export function recordPlacement(record: TenantQuotaRecord, requestId: string, placement: Placement): Result<TenantQuotaRecord> {
  const id = RequestIdSchema.safeParse(requestId);
  if (!id.success) return err('invalid_request', `requestId: ${id.error.issues[0]?.message ?? 'invalid'}`, { field: 'requestId' });
  const parsed = PlacementSchema.safeParse(placement);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = `placement.${issue?.path.map(String).join('.') ?? ''}`;
    return err('invalid_request', `${field}: ${issue?.message ?? 'invalid'}`, { field });
  }
  const counted = record.live.find((p) => p.requestId === requestId);
  if (counted !== undefined) {
    if (samePlacement(counted, parsed.data)) return ok(record);
    return err('conflict', `tenant ${record.tenantId}: request ${requestId} was counted with a different placement`, {
      tenantId: record.tenantId,
      requestId,
      counted: placementOf(counted),
      requested: parsed.data,
    });
  }
  if (record.recentlyReleased.includes(requestId)) return ok(record);

  const tracked = record.live.length;
  if (tracked >= MAX_TRACKED_PLACEMENTS) {
    return err('quota_exceeded', `tenant ${record.tenantId}: ${tracked} live placements, the most one quota record tracks`, {
      tenantId: record.tenantId,
      limit: 'maxTrackedPlacements',
      limitValue: MAX_TRACKED_PLACEMENTS,
      current: tracked,
      requested: 1,
    });
  }
  const fits = checkQuota(record.quota, record.usage, parsed.data);
  if (!fits.ok) return fits;
  return ok({
    ...record,
    usage: applyPlacement(record.usage, parsed.data),
    live: [...record.live, { requestId, ...parsed.data }],
  });
}

/**
 * Stop counting the placement made by `placementRequestId`. Idempotent: releasing what is not counted (already released,
 * never counted, or refused) succeeds and returns the record unchanged. What is subtracted is what was counted.
 */
export function recordRelease(record: TenantQuotaRecord, placementRequestId: string): Result<TenantQuotaRecord> {
  const id = RequestIdSchema.safeParse(placementRequestId);
  if (!id.success) return err('invalid_request', `placementRequestId: ${id.error.issues[0]?.message ?? 'invalid'}`, { field: 'placementRequestId' });
  const at = record.live.findIndex((p) => p.requestId === placementRequestId);
  const counted = record.live[at];
  if (counted === undefined) return ok(record);
  const live = record.live.toSpliced(at, 1);
  const recentlyReleased = [...record.recentlyReleased, placementRequestId];
  if (recentlyReleased.length > MAX_RECENT_RELEASES) recentlyReleased.splice(0, recentlyReleased.length - MAX_RECENT_RELEASES);
  return ok({ ...record, usage: applyRelease(record.usage, counted), live, recentlyReleased });
}

/** Whether a placement's request id is counted by the record. */
export function isCounted(record: TenantQuotaRecord, requestId: string): boolean {
  return record.live.some((p) => p.requestId === requestId);
}

/** The usage a set of placements adds up to: how a record's usage is verified on load. */
export function usageOf(placements: Iterable<Placement>): TenantUsage {
  // Summed in place rather than by folding applyPlacement, which copies vmsPerNode at every step (quadratic).
  const usage = emptyUsage();
  for (const p of placements) {
    usage.vms += 1;
    usage.vcpus += p.vcpus;
    usage.memoryMiB += p.memoryMiB;
    usage.vmsPerNode[p.nodeId] = (usage.vmsPerNode[p.nodeId] ?? 0) + 1;
  }
  return usage;
}

function placementOf(p: Placement): Placement {
  return { nodeId: p.nodeId, memoryMiB: p.memoryMiB, vcpus: p.vcpus };
}

function samePlacement(a: Placement, b: Placement): boolean {
  return a.nodeId === b.nodeId && a.memoryMiB === b.memoryMiB && a.vcpus === b.vcpus;
}

function sameUsage(a: TenantUsage, b: TenantUsage): boolean {
  if (a.vms !== b.vms || a.vcpus !== b.vcpus || a.memoryMiB !== b.memoryMiB) return false;
  const nodes = Object.keys(a.vmsPerNode);
  return nodes.length === Object.keys(b.vmsPerNode).length && nodes.every((n) => a.vmsPerNode[n] === b.vmsPerNode[n]);
}
