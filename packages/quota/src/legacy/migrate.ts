import { PrioritySchema, TenantIdSchema, TenantQuotaSchema, type Rate, type TenantQuota } from '@allot/core';
import { LEGACY_DOCUMENT_KEYS, LEGACY_RATE_KEYS, LegacyQuotaDocumentSchema, type LegacyQuotaDocument } from './document.ts';

/*
 * Legacy quota documents -> allot TenantQuotas, as a pure function with a report. What was chosen where the legacy
 * format is silent (each choice is also a warning in the report, so an operator sees it per tenant):
 *
 * - max_memory_mb: the legacy code used "MB" for MiB of guest memory; converted 1:1 to maxMemoryMiB, with a warning.
 * - max_disk_gb: allot has no disk quota yet; not migrated, warning.
 * - overcommit_ratio: in allot it is a host's property (Limits.overcommitRatio), not a tenant's; not migrated, warning.
 * - priority: clamped to 0..1000 (allot's PrioritySchema), warning when clamped.
 * - api_rate_limits: the legacy limits covered every API call; allot limits place and release separately, so each
 *   operation gets the same rates (a tenant may do up to that many places AND that many releases). Periods are kept:
 *   100 per hour is { count: 100, per: 'hour' }, never 100/3600 per second (the legacy integer-division bug).
 * - a rate of 0 reads as "blocked" (the conservative reading: the operator wrote zero requests). allot's rates cannot be
 *   zero, so a blocked tenant gets maxVms 0 (no new placement; nothing is evicted) and that period's rate is left out
 *   of releaseRates: releases stay allowed so a blocked tenant can still free capacity. Warning either way.
 * - a rate above 1e9 per period (allot's RateSchema maximum) is clamped to 1e9, warning.
 * - null or missing limits mean unlimited; 0 limits mean 0 (nothing allowed).
 * - duplicate tenant ids: the first valid document wins, later ones are skipped with the reason (and the fields they
 *   differ in). Invalid documents do not claim a tenant id.
 * - keys the migration does not know are reported as warnings.
 *
 * Merging with quotas already in allot (`existing`): a tenant whose migrated quota equals the existing one is
 * `unchanged`, one that differs is `updated` with the changed fields (the legacy document wins), a new one `migrated`.
 * Existing quotas without a document are kept as they are. Running again on the output gives the same output.
 */

/** Why a document was not migrated. */
export interface MigrationSkip {
  readonly code: 'invalid_document' | 'duplicate_tenant';
  /** The legacy field at fault, dotted (`api_rate_limits.requests_per_hour`), `(root)` for the document itself. */
  readonly field: string;
  readonly message: string;
}

export interface MigrationWarning {
  readonly field: string;
  readonly message: string;
}

export type MigrationOutcome = 'migrated' | 'updated' | 'unchanged' | 'skipped';

/** What happened to one document, in document order. */
export interface MigrationEntry {
  /** Position of the document in the input. */
  readonly index: number;
  /** The document's tenant_id when it has a readable one. */
  readonly tenantId?: string;
  readonly outcome: MigrationOutcome;
  readonly reason?: MigrationSkip;
  /** For `updated`: the TenantQuota fields that changed. */
  readonly changedFields?: readonly string[];
  readonly warnings: readonly MigrationWarning[];
}

export interface MigrationTotals {
  readonly documents: number;
  readonly migrated: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly skipped: number;
  readonly warnings: number;
}

export interface MigrationReport {
  readonly entries: readonly MigrationEntry[];
  readonly totals: MigrationTotals;
  /** Documents handled (migrated, updated, unchanged or skipped with a reason) out of all, in whole percent, floored:
   * 100 only when every document was handled; 100 for no documents. */
  readonly completionPercent: number;
}

export interface MigrationOptions {
  /** Quotas already in allot, to merge with. */
  readonly existing?: readonly TenantQuota[];
}

export interface MigrationResult {
  /** One quota per tenant: the existing ones (updated where a document says so) in their order, then new ones in document order. */
  readonly quotas: TenantQuota[];
  readonly report: MigrationReport;
}

/** allot's RateSchema maximum count. */
const MAX_RATE_COUNT = 1_000_000_000;
const LIMIT_FIELDS = ['maxVms', 'maxVcpus', 'maxMemoryMiB', 'maxVmsPerNode', 'priority'] as const;
const RATE_FIELDS = ['placeRates', 'releaseRates'] as const;

export function migrateLegacyQuotas(documents: readonly unknown[], options: MigrationOptions = {}): MigrationResult {
  const merged = new Map<string, TenantQuota>();
  for (const quota of options.existing ?? []) if (!merged.has(quota.tenantId)) merged.set(quota.tenantId, quota);
  const existing = new Map(merged);
  /** Tenants claimed by a valid document in this run: index and quota, to judge duplicates. */
  const claimed = new Map<string, { index: number; quota: TenantQuota }>();
  const entries: MigrationEntry[] = [];

  documents.forEach((document, index) => {
    const converted = convertDocument(document);
    if (!converted.ok) {
      entries.push({ index, ...tenantIdOf(document), outcome: 'skipped', reason: converted.skip, warnings: [] });
      return;
    }
    const { quota, warnings } = converted;
    const first = claimed.get(quota.tenantId);
    if (first !== undefined) {
      const differs = changedFields(first.quota, quota);
      const detail = differs.length === 0 ? 'identical' : `it differs in ${differs.join(', ')}`;
      entries.push({
        index,
        tenantId: quota.tenantId,
        outcome: 'skipped',
        reason: {
          code: 'duplicate_tenant',
          field: 'tenant_id',
          message: `tenant ${quota.tenantId} was already migrated from document ${first.index}; this one is skipped (${detail})`,
        },
        warnings,
      });
      return;
    }
    claimed.set(quota.tenantId, { index, quota });
    merged.set(quota.tenantId, quota);
    const before = existing.get(quota.tenantId);
    if (before === undefined) {
      entries.push({ index, tenantId: quota.tenantId, outcome: 'migrated', warnings });
      return;
    }
    const changed = changedFields(before, quota);
    if (changed.length === 0) entries.push({ index, tenantId: quota.tenantId, outcome: 'unchanged', warnings });
    else entries.push({ index, tenantId: quota.tenantId, outcome: 'updated', changedFields: changed, warnings });
  });

  return { quotas: [...merged.values()], report: reportOf(documents.length, entries) };
}

function reportOf(documents: number, entries: readonly MigrationEntry[]): MigrationReport {
  const count = (outcome: MigrationOutcome) => entries.filter((e) => e.outcome === outcome).length;
  const handled = entries.filter((e) => e.outcome !== 'skipped' || e.reason !== undefined).length;
  return {
    entries,
    totals: {
      documents,
      migrated: count('migrated'),
      updated: count('updated'),
      unchanged: count('unchanged'),
      skipped: count('skipped'),
      warnings: entries.reduce((sum, e) => sum + e.warnings.length, 0),
    },
    completionPercent: documents === 0 ? 100 : Math.floor((handled * 100) / documents),
  };
}

type Converted = { ok: true; quota: TenantQuota; warnings: MigrationWarning[] } | { ok: false; skip: MigrationSkip };

/** One legacy document to one TenantQuota and its warnings, or the reason it cannot be migrated. */
export function convertDocument(document: unknown): Converted {
  const parsed = LegacyQuotaDocumentSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
    return { ok: false, skip: { code: 'invalid_document', field, message: `${field}: ${issue?.message ?? 'invalid document'}` } };
  }
  const doc = parsed.data;
  const tenantId = TenantIdSchema.safeParse(doc.tenant_id);
  if (!tenantId.success) {
    return {
      ok: false,
      skip: {
        code: 'invalid_document',
        field: 'tenant_id',
        message: `tenant_id ${JSON.stringify(doc.tenant_id)} is not a valid allot tenant id: ${tenantId.error.issues[0]?.message ?? 'invalid'}`,
      },
    };
  }

  const warnings: MigrationWarning[] = [];
  const quota: TenantQuota = { tenantId: tenantId.data, placeRates: [], releaseRates: [] };
  if (doc.max_vms != null) quota.maxVms = doc.max_vms;
  if (doc.max_vcpus != null) quota.maxVcpus = doc.max_vcpus;
  if (doc.max_memory_mb != null) {
    quota.maxMemoryMiB = doc.max_memory_mb;
    warnings.push({
      field: 'max_memory_mb',
      message: `${doc.max_memory_mb} MB read as ${doc.max_memory_mb} MiB: the legacy code used MB for MiB of guest memory`,
    });
  }
  if (doc.max_vms_per_node != null) quota.maxVmsPerNode = doc.max_vms_per_node;
  if (doc.max_disk_gb != null) {
    warnings.push({ field: 'max_disk_gb', message: `disk quota of ${doc.max_disk_gb} GB not migrated: allot has no disk quota yet` });
  }
  if (doc.overcommit_ratio != null) {
    warnings.push({
      field: 'overcommit_ratio',
      message: `overcommit ratio ${doc.overcommit_ratio} not migrated: in allot overcommit is a host's limit, not a tenant's`,
    });
  }
  if (doc.priority != null) {
    const clamped = Math.min(1000, Math.max(0, doc.priority));
    if (clamped !== doc.priority)
      warnings.push({ field: 'priority', message: `priority ${doc.priority} clamped to ${clamped} (allot priorities are 0..1000)` });
    quota.priority = PrioritySchema.parse(clamped);
  }
  convertRates(doc, quota, warnings);
  warnUnknownKeys(doc, warnings);

  // The quota is built from validated parts; parsing it again is the proof it is a valid TenantQuota.
  const valid = TenantQuotaSchema.safeParse(quota);
  if (!valid.success) {
    const issue = valid.error.issues[0];
    return {
      ok: false,
      skip: {
        code: 'invalid_document',
        field: '(root)',
        message: `converted quota is invalid: ${issue?.path.join('.')}: ${issue?.message}`,
      },
    };
  }
  return { ok: true, quota: valid.data, warnings };
}

const RATE_PERIODS = [
  ['requests_per_second', 'second'],
  ['requests_per_minute', 'minute'],
  ['requests_per_hour', 'hour'],
] as const;

function convertRates(doc: LegacyQuotaDocument, quota: TenantQuota, warnings: MigrationWarning[]): void {
  const limits = doc.api_rate_limits;
  if (limits == null) return;
  let blocked = false;
  for (const [key, per] of RATE_PERIODS) {
    const value = limits[key];
    if (value == null) continue;
    const field = `api_rate_limits.${key}`;
    if (value === 0) {
      blocked = true;
      warnings.push({ field, message: `a rate of 0 per ${per} reads as blocked: placements blocked by maxVms 0; releases stay allowed` });
      continue;
    }
    let count = value;
    if (count > MAX_RATE_COUNT) {
      count = MAX_RATE_COUNT;
      warnings.push({ field, message: `${value} per ${per} clamped to ${MAX_RATE_COUNT}, the largest allot rate` });
    }
    const rate: Rate = { count, per };
    quota.placeRates.push(rate);
    quota.releaseRates.push({ ...rate });
  }
  if (blocked) {
    if (quota.maxVms !== undefined && quota.maxVms !== 0)
      warnings.push({ field: 'max_vms', message: `max_vms ${quota.maxVms} replaced by 0: the tenant is blocked by a zero rate` });
    quota.maxVms = 0;
    quota.placeRates = [];
  }
  if (quota.placeRates.length > 0) {
    warnings.push({ field: 'api_rate_limits', message: 'legacy API-wide rates apply to place and to release separately in allot' });
  }
}

function warnUnknownKeys(doc: LegacyQuotaDocument, warnings: MigrationWarning[]): void {
  for (const key of Object.keys(doc)) {
    if (!LEGACY_DOCUMENT_KEYS.has(key)) warnings.push({ field: key, message: `unknown field ${key} not migrated` });
  }
  const limits = doc.api_rate_limits;
  if (limits == null) return;
  for (const key of Object.keys(limits)) {
    if (!LEGACY_RATE_KEYS.has(key))
      warnings.push({ field: `api_rate_limits.${key}`, message: `unknown field api_rate_limits.${key} not migrated` });
  }
}

/** The TenantQuota fields in which two quotas differ. */
export function changedFields(a: TenantQuota, b: TenantQuota): string[] {
  return [...LIMIT_FIELDS.filter((field) => a[field] !== b[field]), ...RATE_FIELDS.filter((field) => !sameRates(a[field], b[field]))];
}

/** Rates compared by value and order (key order differs between a quota built here and one decoded from KV). */
function sameRates(a: readonly Rate[], b: readonly Rate[]): boolean {
  return a.length === b.length && a.every((r, i) => r.count === b[i]?.count && r.per === b[i]?.per);
}

function tenantIdOf(document: unknown): { tenantId?: string } {
  if (typeof document === 'object' && document !== null && 'tenant_id' in document && typeof document.tenant_id === 'string') {
    return { tenantId: document.tenant_id };
  }
  return {};
}
