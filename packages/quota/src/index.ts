/** @allot/quota: tenant quotas and their per-tenant record, token-bucket rate limits, legacy quota migration. Pure, no I/O. */
export * from './usage.ts';
export * from './check.ts';
export * from './record.ts';
export * from './token-bucket.ts';
export * from './rate-limiter.ts';
export * from './legacy/document.ts';
export * from './legacy/migrate.ts';
export * from './legacy/check.ts';
