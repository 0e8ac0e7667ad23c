import { decode, encode } from '@allot/protocol';
import { err, NodeIdSchema, ok, TenantIdSchema, TenantQuotaSchema, type Result } from '@allot/core';
import type { Logger } from 'pino';
import { z } from 'zod';
import { PlacementIntentSchema, type PlacementIntent } from '../intents.ts';
import type { Bucket, BucketChange } from '../store/bucket.ts';
import type { IntentStore } from './intent-store.ts';

/*
 * The layout before usage records moved into allot_placements (commit db25bd8 and earlier):
 * - KV `allot_quotas`, one key per tenant (its id), a TenantQuotaRecord v1: {version: 1, tenantId, quota, usage, live:
 *   [{requestId, nodeId, memoryMiB, vcpus}], recentlyReleased}: the limits and a list of the placements they counted;
 * - KV `allot_placements`, one key per place request: the request id itself (`:` written as `/`), no `intent.` prefix,
 *   an intent whose nodeId may be absent and whose attempt counted nodes from 0.
 * The coordinators of this version read neither: a deployment upgrading lost its tenants' limits, and its live
 * placements were neither counted nor releasable. This moves both over, once.
 */

/** The bucket that held the quota records of earlier versions (read here only; never created). */
export const LEGACY_QUOTAS_BUCKET = 'allot_quotas';
/** Written into allot_placements once a migration finished: later starts skip the scans. */
export const LEGACY_MIGRATION_KEY = 'migration.legacy-layout';

/** What is kept of a legacy quota record: its tenant and limits (its counters are rebuilt from the intents). */
const LegacyQuotaRecordSchema = z.object({ tenantId: TenantIdSchema, quota: TenantQuotaSchema });
/** A legacy intent: today's fields, but the node may be absent (failed before any) and attempts counted from 0. */
const LegacyIntentSchema = PlacementIntentSchema.extend({ nodeId: NodeIdSchema.optional(), attempt: z.int().min(0) });

export interface LegacyMigrationReport {
  /** Intents copied to `intent.<requestId>` (pending and placed ones now counted). */
  readonly intentsAdopted: number;
  /** Intents whose new key existed already (an earlier, interrupted run; or placed again since the upgrade). */
  readonly intentsPresent: number;
  /** Legacy intents with no node (failed before any node was asked): nothing to carry. */
  readonly intentsSkipped: number;
  /** Tenants whose limits were carried over. */
  readonly quotasSet: number;
  /** Tenants that had limits already (set since the upgrade: those stand). */
  readonly quotasKept: number;
  /** Keys whose value is neither (left as they are). */
  readonly invalid: readonly string[];
}

/** Every key and value of a bucket (a watch until caught up). */
async function entries(bucket: Bucket): Promise<Result<{ key: string; value: Uint8Array }[]>> {
  const found = new Map<string, Uint8Array>();
  try {
    const watch = await bucket.watch((change: BucketChange) => {
      if ('deleted' in change) found.delete(change.key);
      else found.set(change.key, change.value);
    });
    await watch.caughtUp;
    watch.stop();
  } catch (e) {
    return err('unavailable', `cannot read the bucket: ${(e as Error).message}`);
  }
  return ok([...found].map(([key, value]) => ({ key, value })));
}

/** The key an earlier version stored a request's intent under: the request id, `:` written as `/`. */
function legacyIntentKey(requestId: string): string {
  return requestId.replaceAll(':', '/');
}

/**
 * Moves the legacy layout into this version's, idempotently: legacy intents are adopted under `intent.<requestId>`
 * (counted in the same batch when pending or placed), then each legacy quota record's limits go into its tenant's usage
 * record unless that record has limits already. Then the marker is written, and later starts do nothing. `legacyQuotas`
 * is null when no `allot_quotas` bucket exists (a deployment that never ran an earlier version): nothing to do.
 * Interrupted, it is run again whole: what was done is found done.
 */
export async function migrateLegacyLayout(
  store: IntentStore,
  legacyQuotas: Bucket | null,
  logger: Logger,
): Promise<Result<LegacyMigrationReport | null>> {
  if (legacyQuotas === null) return ok(null);
  const marker = await store.bucket.get(LEGACY_MIGRATION_KEY);
  if (!marker.ok) return marker;
  if (marker.value !== null) return ok(null);

  let intentsAdopted = 0;
  let intentsPresent = 0;
  let intentsSkipped = 0;
  let quotasSet = 0;
  let quotasKept = 0;
  const invalid: string[] = [];

  const placements = await entries(store.bucket);
  if (!placements.ok) return placements;
  for (const { key, value } of placements.value) {
    // This version's keys all have a prefix (intent., usage., ...); a legacy intent sits under its bare request id.
    const legacy = decode(LegacyIntentSchema, value, Number.POSITIVE_INFINITY);
    if (!legacy.ok || legacyIntentKey(legacy.value.requestId) !== key) {
      if (!key.includes('.')) invalid.push(`allot_placements/${key}`);
      continue;
    }
    const { nodeId, attempt, ...rest } = legacy.value;
    if (nodeId === undefined) {
      intentsSkipped += 1;
      continue;
    }
    // Attempts were nodes asked (0 before the first); fences start at 1. No agent holds a fence for it yet.
    const intent: PlacementIntent = { ...rest, nodeId, attempt: Math.max(1, attempt) };
    const adopted = await store.adopt(intent);
    if (adopted.ok) intentsAdopted += 1;
    else if (adopted.error.code === 'conflict') intentsPresent += 1;
    else return adopted;
  }

  const quotas = await entries(legacyQuotas);
  if (!quotas.ok) return quotas;
  for (const { key, value } of quotas.value) {
    const legacy = decode(LegacyQuotaRecordSchema, value, Number.POSITIVE_INFINITY);
    if (!legacy.ok || legacy.value.quota.tenantId !== legacy.value.tenantId) {
      invalid.push(`${LEGACY_QUOTAS_BUCKET}/${key}`);
      continue;
    }
    const held = await store.usage(legacy.value.tenantId);
    if (!held.ok) return held;
    if (held.value?.value.quota !== undefined) {
      quotasKept += 1;
      continue;
    }
    const set = await store.setQuota(legacy.value.quota);
    if (!set.ok) return set;
    quotasSet += 1;
  }

  const report: LegacyMigrationReport = { intentsAdopted, intentsPresent, intentsSkipped, quotasSet, quotasKept, invalid };
  const done = await store.bucket.write([
    { key: LEGACY_MIGRATION_KEY, value: encode({ migratedAt: Date.now(), ...report }), expectedRevision: 0 },
  ]);
  if (!done.ok && done.error.code !== 'conflict') return done;
  if (invalid.length > 0)
    logger.warn(
      { keys: invalid.slice(0, 20), count: invalid.length },
      'legacy migration: values that are neither a quota record nor an intent were left as they are',
    );
  logger.info(report, 'legacy layout migrated: quota limits and placement intents of an earlier version carried over');
  return ok(report);
}
