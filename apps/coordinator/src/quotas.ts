import { decode, err, ok, type Result, type TenantQuota } from '@allot/core';
import {
  migrateLegacyQuotas,
  newQuotaRecord,
  recordPlacement,
  recordRelease,
  TenantQuotaRecordSchema,
  usageOf,
  withQuota,
  type MigrationReport,
  type Placement,
  type TenantQuotaRecord,
} from '@allot/quota';
import type { Logger } from 'pino';
import { KvStore, type Versioned } from './kv-store.ts';
import type { KV } from './nats-deps.ts';

/** Compare-and-set rounds before a quota update gives up with `unavailable` (only under extreme contention). */
const MAX_CAS_ROUNDS = 64;

/** What quota.get answers. */
export interface TenantQuotaView {
  quota: TenantQuota;
  usage: { vms: number; vcpus: number; memoryMiB: number };
}

/**
 * Tenant quotas, enforced cluster-wide through each tenant's TenantQuotaRecord in KV allot_quotas, updated by
 * compare-and-set so several coordinators never admit more than the quota between them.
 *
 * The bucket is watched, so every coordinator knows which tenants have a record: a tenant without one costs no KV round
 * trip on the hot path (the common case stays one agent round trip). The watched copy is also the first guess of every
 * CAS (its revision); a lost race re-reads the record. A quota just set on another coordinator is seen here within the
 * watch's propagation delay (milliseconds); until then this coordinator treats the tenant as it was.
 */
export class QuotaService {
  readonly #store: KvStore<typeof TenantQuotaRecordSchema>;
  readonly #cache = new Map<string, Versioned<TenantQuotaRecord>>();
  readonly #logger: Logger;
  #stopWatch: (() => void) | undefined;
  /** Resolves once the watch has delivered every record stored when it started. */
  ready: Promise<void> = Promise.resolve();

  constructor(kv: KV, logger: Logger) {
    this.#store = new KvStore(kv, TenantQuotaRecordSchema, 'quota record');
    this.#logger = logger;
  }

  async start(): Promise<void> {
    const watch = await this.#store.kv.watch();
    let markReady: () => void = () => {};
    this.ready = new Promise((resolve) => (markReady = resolve));
    this.#stopWatch = () => watch.stop();
    void (async () => {
      for await (const e of watch) {
        if (e.operation === 'PUT') {
          const record = decode(TenantQuotaRecordSchema, e.value, Number.POSITIVE_INFINITY);
          if (record.ok) this.#remember(record.value, e.revision);
          else this.#logger.warn({ key: e.key, error: record.error.message }, 'invalid quota record ignored');
        } else this.#cache.delete(e.key);
        if (e.delta === 0) markReady();
      }
    })();
    // An empty bucket delivers nothing: the watch's initial pass is then already over.
    const status = await this.#store.kv.status();
    if (status.values === 0) markReady();
  }

  stop(): void {
    this.#stopWatch?.();
  }

  /** The tenant's quota as last seen (for rate limits and the per-node VM filter); undefined when it has none. */
  quotaOf(tenantId: string): TenantQuota | undefined {
    return this.#cache.get(tenantId)?.value.quota;
  }

  /** Every tenant with a quota, as last seen by the watch (no KV round trip): the dashboard's tenant list. */
  list(): TenantQuotaView[] {
    return [...this.#cache.values()].map((v) => viewOf(v.value));
  }

  #remember(record: TenantQuotaRecord, revision: number): void {
    const held = this.#cache.get(record.tenantId);
    if (held === undefined || held.revision < revision) this.#cache.set(record.tenantId, { value: record, revision });
  }

  /**
   * Runs `change` on the tenant's record until a CAS lands. `change` returns the new record, the same object (nothing to
   * write), or an error (nothing written). The first round uses the watched copy; later rounds re-read.
   */
  async #cas(tenantId: string, change: (r: TenantQuotaRecord) => Result<TenantQuotaRecord>): Promise<Result<TenantQuotaRecord | null>> {
    let held: Versioned<TenantQuotaRecord> | null | undefined = this.#cache.get(tenantId);
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      if (held === undefined || round > 0) {
        const read = await this.#store.get(tenantId);
        if (!read.ok) return read;
        held = read.value;
      }
      if (held === null) return ok(null);
      const next = change(held.value);
      if (!next.ok) return next;
      if (next.value === held.value) return ok(held.value);
      const written = await this.#store.update(tenantId, next.value, held.revision);
      if (written.ok) {
        this.#remember(next.value, written.value);
        return ok(next.value);
      }
      if (written.error.code !== 'conflict') return written;
    }
    return err('unavailable', `tenant ${tenantId}: quota record still contended after ${MAX_CAS_ROUNDS} attempts; retry`, { tenantId });
  }

  /**
   * Counts the placement `requestId` on `placement.nodeId` against the tenant's quota, before any agent is asked.
   * Idempotent: counted already on that node, nothing changes; counted on another node (the place moved after a
   * refusal), it is moved. A tenant without a record is not counted and costs nothing.
   */
  async reserve(tenantId: string, requestId: string, placement: Placement): Promise<Result<void>> {
    if (!this.#cache.has(tenantId)) return ok(undefined);
    const r = await this.#cas(tenantId, (record) => {
      const counted = record.live.find((p) => p.requestId === requestId);
      if (counted !== undefined && counted.nodeId === placement.nodeId && counted.memoryMiB === placement.memoryMiB && counted.vcpus === placement.vcpus) return ok(record);
      return recordPlacement(counted === undefined ? record : without(record, requestId), requestId, placement);
    });
    return r.ok ? ok(undefined) : r;
  }

  /**
   * Gives back what `reserve` counted for a place that placed nothing. Unlike a release, the id is not remembered as
   * released, so a later retry of the same request is counted again.
   */
  async unreserve(tenantId: string, requestId: string): Promise<Result<void>> {
    if (!this.#cache.has(tenantId)) return ok(undefined);
    const r = await this.#cas(tenantId, (record) => ok(record.live.some((p) => p.requestId === requestId) ? without(record, requestId) : record));
    return r.ok ? ok(undefined) : r;
  }

  /** Stops counting a released placement (idempotent). */
  async release(tenantId: string, placementRequestId: string): Promise<Result<void>> {
    if (!this.#cache.has(tenantId)) return ok(undefined);
    const r = await this.#cas(tenantId, (record) => recordRelease(record, placementRequestId));
    return r.ok ? ok(undefined) : r;
  }

  async get(tenantId: string): Promise<Result<TenantQuotaView>> {
    const read = await this.#store.get(tenantId);
    if (!read.ok) return read;
    if (read.value === null) return err('not_found', `tenant ${tenantId} has no quota`, { tenantId });
    this.#remember(read.value.value, read.value.revision);
    return ok(viewOf(read.value.value));
  }

  /** Creates or replaces the tenant's quota; usage stays as counted. */
  async set(quota: TenantQuota): Promise<Result<TenantQuotaView>> {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const read = await this.#store.get(quota.tenantId);
      if (!read.ok) return read;
      if (read.value === null) {
        const record = newQuotaRecord(quota);
        const created = await this.#store.create(quota.tenantId, record);
        if (created.ok) {
          this.#remember(record, created.value);
          return ok(viewOf(record));
        }
        if (created.error.code !== 'conflict') return created;
        continue;
      }
      const next = withQuota(read.value.value, quota);
      if (!next.ok) return next;
      const written = await this.#store.update(quota.tenantId, next.value, read.value.revision);
      if (written.ok) {
        this.#remember(next.value, written.value);
        return ok(viewOf(next.value));
      }
      if (written.error.code !== 'conflict') return written;
    }
    return err('unavailable', `tenant ${quota.tenantId}: quota record still contended; retry`, { tenantId: quota.tenantId });
  }

  /**
   * Imports legacy quota documents through @allot/quota's migration, merged with the quotas already here. Idempotent:
   * importing the same documents again reports them unchanged and writes nothing.
   */
  async import(documents: readonly unknown[]): Promise<Result<MigrationReport>> {
    await this.ready;
    const existing = [...this.#cache.values()].map((v) => v.value.quota);
    const result = migrateLegacyQuotas(documents, { existing });
    const changed = new Set(result.report.entries.filter((e) => e.outcome === 'migrated' || e.outcome === 'updated').map((e) => e.tenantId));
    for (const quota of result.quotas) {
      if (!changed.has(quota.tenantId)) continue;
      const set = await this.set(quota);
      if (!set.ok) return err(set.error.code, `import stopped at tenant ${quota.tenantId}: ${set.error.message}`, { tenantId: quota.tenantId, report: result.report });
    }
    return ok(result.report);
  }
}

/** The record without the request's placement, usage recomputed from what stays. */
function without(record: TenantQuotaRecord, requestId: string): TenantQuotaRecord {
  const live = record.live.filter((p) => p.requestId !== requestId);
  return { ...record, live, usage: usageOf(live) };
}

function viewOf(record: TenantQuotaRecord): TenantQuotaView {
  return { quota: record.quota, usage: { vms: record.usage.vms, vcpus: record.usage.vcpus, memoryMiB: record.usage.memoryMiB } };
}
