import { err, ok, type Result, type TenantQuota } from '@allot/core';
import { migrateLegacyQuotas, type MigrationReport, type TenantUsageRecord } from '@allot/quota';
import type { Logger } from 'pino';
import { decodeUsage, tenantIdOfKey, type IntentStore } from './intents/intent-store.ts';

/** What quota.get answers. */
export interface TenantQuotaView {
  quota: TenantQuota;
  usage: { vms: number; vcpus: number; memoryMiB: number; hugepagesMiB?: { '2Mi'?: number; '1Gi'?: number } };
}

/** What quota.recount answers: the counters before and after the rebuild. */
export interface RecountView {
  tenantId: string;
  before: TenantQuotaView['usage'] | null;
  after: TenantQuotaView['usage'];
}

/**
 * Tenant quotas and usage, as kept by the IntentStore: one usage record per tenant (counters and limits), changed in the
 * same batch as every intent transition that starts or stops counting (see README.md, "Quotas").
 *
 * The records are watched, so every coordinator knows each tenant's limits and rates without a round trip (rate limits,
 * the per-node VM filter, the create-first decision), and the IntentStore's batches start from the newest revision
 * seen. A stale copy costs one lost compare-and-set and a re-read, never a wrong count: admission is always decided on
 * the record at the revision the batch names.
 */
export class QuotaService {
  readonly #store: IntentStore;
  readonly #logger: Logger;
  #stopWatch: (() => void) | undefined;
  /** Resolves once the watch has delivered every record stored when it started. */
  ready: Promise<void> = Promise.resolve();

  constructor(store: IntentStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  async start(): Promise<void> {
    const watch = await this.#store.bucket.watch((change) => {
      const tenantId = tenantIdOfKey(change.key);
      if (tenantId === undefined || 'deleted' in change) return;
      const record = decodeUsage(change.value);
      if (record.ok) this.#store.rememberUsage(tenantId, { value: record.value, revision: change.revision });
      else this.#logger.warn({ key: change.key, error: record.error.message }, 'invalid usage record ignored');
    });
    this.ready = watch.caughtUp;
    this.#stopWatch = () => watch.stop();
  }

  stop(): void {
    this.#stopWatch?.();
  }

  /** The tenant's quota as last seen (for rate limits and the per-node VM filter); undefined when it has none. */
  quotaOf(tenantId: string): TenantQuota | undefined {
    return this.#store.cachedUsage(tenantId)?.value.quota;
  }

  /** Every tenant with a quota, as last seen by the watch (no KV round trip): the dashboard's tenant list. */
  list(): TenantQuotaView[] {
    const views: TenantQuotaView[] = [];
    for (const { value } of this.#store.cachedTenants()) if (value.quota !== undefined) views.push(viewOf(value));
    return views;
  }

  /** The tenant's limits and usage as stored now; a tenant without limits shows its usage under an empty quota. */
  async get(tenantId: string): Promise<Result<TenantQuotaView>> {
    const read = await this.#store.usage(tenantId);
    if (!read.ok) return read;
    if (read.value === null) return err('not_found', `tenant ${tenantId} has no quota and has placed nothing`, { tenantId });
    return ok(viewOf(read.value.value));
  }

  /** Creates or replaces the tenant's quota; usage stays as counted (true from the first placement on). */
  async set(quota: TenantQuota): Promise<Result<TenantQuotaView>> {
    const written = await this.#store.setQuota(quota);
    return written.ok ? ok(viewOf(written.value.value)) : written;
  }

  /** Rebuilds the tenant's counters from its counting intents (operators: see README.md, "Quotas"). */
  async recount(tenantId: string): Promise<Result<RecountView>> {
    const r = await this.#store.recount(tenantId);
    if (!r.ok) return r;
    this.#logger.info({ tenantId, before: r.value.before?.usage, after: r.value.after.usage }, 'usage recounted');
    return ok({ tenantId, before: r.value.before === null ? null : countersOf(r.value.before), after: countersOf(r.value.after) });
  }

  /**
   * Imports legacy quota documents through @allot/quota's migration, merged with the quotas already here. Idempotent:
   * importing the same documents again reports them unchanged and writes nothing.
   */
  async import(documents: readonly unknown[]): Promise<Result<MigrationReport>> {
    await this.ready;
    const existing = this.list().map((v) => v.quota);
    const result = migrateLegacyQuotas(documents, { existing });
    const changed = new Set(
      result.report.entries.filter((e) => e.outcome === 'migrated' || e.outcome === 'updated').map((e) => e.tenantId),
    );
    for (const quota of result.quotas) {
      if (!changed.has(quota.tenantId)) continue;
      const set = await this.set(quota);
      if (!set.ok)
        return err(set.error.code, `import stopped at tenant ${quota.tenantId}: ${set.error.message}`, {
          tenantId: quota.tenantId,
          report: result.report,
        });
    }
    return ok(result.report);
  }
}

function countersOf(record: TenantUsageRecord): TenantQuotaView['usage'] {
  const { vms, vcpus, memoryMiB, hugepagesMiB } = record.usage;
  return hugepagesMiB === undefined ? { vms, vcpus, memoryMiB } : { vms, vcpus, memoryMiB, hugepagesMiB };
}

function viewOf(record: TenantUsageRecord): TenantQuotaView {
  return { quota: record.quota ?? { tenantId: record.tenantId, placeRates: [], releaseRates: [] }, usage: countersOf(record) };
}
