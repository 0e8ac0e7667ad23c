import { z } from 'zod';

/*
 * The per-tenant quota document of the earlier Rust system (quota_manager.rs, quota_system.rs, resource_quotas.rs), as
 * serde writes it by default: snake_case keys, `Option<T>` as null or missing. Only its summary survives
 * (/work/shared/seed), so the schema is tolerant where that summary is silent:
 *
 * - every limit is optional; null or missing means "no limit" (an Option::None);
 * - integers are whole and non-negative (Rust u32/u64); priority may be any integer (clamped later to 0..1000);
 * - overcommit_ratio is any non-negative number (f32/f64);
 * - unknown keys are kept out of the schema but reported by the migration as warnings, never silently dropped.
 */

const Count = z.int().min(0).nullish();

export const LegacyApiRateLimitsSchema = z
  .object({
    requests_per_second: Count,
    requests_per_minute: Count,
    requests_per_hour: Count,
  })
  .loose();
export type LegacyApiRateLimits = z.infer<typeof LegacyApiRateLimitsSchema>;

export const LegacyQuotaDocumentSchema = z
  .object({
    tenant_id: z.string().min(1),
    max_vms: Count,
    max_vcpus: Count,
    /** "MB" in the legacy code meant MiB of guest memory; see migrate.ts. */
    max_memory_mb: Count,
    max_disk_gb: Count,
    max_vms_per_node: Count,
    overcommit_ratio: z.number().min(0).nullish(),
    priority: z.int().nullish(),
    api_rate_limits: LegacyApiRateLimitsSchema.nullish(),
  })
  .loose();
export type LegacyQuotaDocument = z.infer<typeof LegacyQuotaDocumentSchema>;

/** Keys the migration understands; anything else in a document is reported. */
export const LEGACY_DOCUMENT_KEYS: ReadonlySet<string> = new Set(Object.keys(LegacyQuotaDocumentSchema.shape));
export const LEGACY_RATE_KEYS: ReadonlySet<string> = new Set(Object.keys(LegacyApiRateLimitsSchema.shape));
