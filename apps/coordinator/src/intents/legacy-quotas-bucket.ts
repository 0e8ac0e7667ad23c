import { err, ok, type Result } from '@allot/core';
import { Kvm } from '@nats-io/kv';
import { jetstream, jetstreamManager, type NatsConnection } from '../nats-deps.ts';
import type { Bucket } from '../store/bucket.ts';
import { NatsBucket } from '../store/nats-bucket.ts';
import { LEGACY_QUOTAS_BUCKET } from './legacy-migration.ts';

/**
 * The `allot_quotas` bucket of earlier versions when it exists, for the legacy migration to read; null when it does not
 * (it is never created: a deployment that never ran an earlier version has nothing to migrate).
 */
export async function openLegacyQuotasBucket(nc: NatsConnection): Promise<Result<Bucket | null>> {
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.info(`KV_${LEGACY_QUOTAS_BUCKET}`);
  } catch (e) {
    if (e instanceof Error && /not found/i.test(e.message)) return ok(null);
    return err('unavailable', `KV ${LEGACY_QUOTAS_BUCKET}: ${(e as Error).message}`, { bucket: LEGACY_QUOTAS_BUCKET });
  }
  try {
    const kv = await new Kvm(jetstream(nc)).open(LEGACY_QUOTAS_BUCKET);
    return ok(new NatsBucket(nc, kv, LEGACY_QUOTAS_BUCKET));
  } catch (e) {
    return err('unavailable', `KV ${LEGACY_QUOTAS_BUCKET}: ${(e as Error).message}`, { bucket: LEGACY_QUOTAS_BUCKET });
  }
}
