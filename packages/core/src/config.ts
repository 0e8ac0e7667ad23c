import { z } from 'zod';
import { CoreIdSchema, CpuPolicySchema, LimitsSchema, ResourceTypeSchema } from './domain.ts';

/**
 * Health thresholds, per mille of effective capacity (committed) or of real capacity (used), so they stay integers.
 * A manager is Degraded past the degraded threshold and Unhealthy past the unhealthy one; a probe whose last sample
 * is older than probeStaleMs makes it Degraded (its usage figures can no longer be trusted).
 */
export const HealthThresholdsSchema = z.object({
  committedDegradedPermille: z.int().min(1).max(1000).default(950),
  usedDegradedPermille: z.int().min(1).max(1000).default(900),
  usedUnhealthyPermille: z.int().min(1).max(1000).default(980),
  probeStaleMs: z.int().min(100).max(3_600_000).default(30_000),
});
export type HealthThresholds = z.infer<typeof HealthThresholdsSchema>;

// Defined beside the request schema (a request may name its own policy); re-exported here where they used to live.
export { CPU_POLICIES, CpuPolicySchema } from './domain.ts';
export type { CpuPolicy } from './domain.ts';

export const MemoryManagerConfigSchema = z.object({
  resourceType: z.literal('memory'),
  /** capacity and reserve in MiB. */
  limits: LimitsSchema,
  health: HealthThresholdsSchema.default(HealthThresholdsSchema.parse({})),
});
export type MemoryManagerConfig = z.infer<typeof MemoryManagerConfigSchema>;

/**
 * CPU: limits.capacity is the number of logical cores, limits.systemReserve the number of reserved cores (which ones:
 * reservedCores, or the lowest ids when empty), limits.overcommitRatio the vCPUs per shared logical core.
 * Exclusive cores are taken whole out of the shared pool and never overcommitted.
 */
export const CpuManagerConfigSchema = z.object({
  resourceType: z.literal('cpu'),
  limits: LimitsSchema,
  policy: CpuPolicySchema.default('first-fit'),
  reservedCores: z.array(CoreIdSchema).max(4096).default([]),
  health: HealthThresholdsSchema.default(HealthThresholdsSchema.parse({})),
});
export type CpuManagerConfig = z.infer<typeof CpuManagerConfigSchema>;

/** A manager for another resource type (custom:<name>, disk, ...) counts integer units against its limits. */
export const GenericManagerConfigSchema = z.object({
  resourceType: ResourceTypeSchema,
  limits: LimitsSchema,
  health: HealthThresholdsSchema.default(HealthThresholdsSchema.parse({})),
});
export type GenericManagerConfig = z.infer<typeof GenericManagerConfigSchema>;

export type ManagerConfig = MemoryManagerConfig | CpuManagerConfig | GenericManagerConfig;

/** One problem in a configuration: where, and why. Configuration is checked whole: every problem, not the first. */
export const ConfigProblemSchema = z.object({ path: z.string(), message: z.string() });
export type ConfigProblem = z.infer<typeof ConfigProblemSchema>;

/**
 * How a process reaches NATS: servers plus at most one way to authenticate, and TLS. Shared by the agent, the
 * coordinator and the CLI so that their config files and flags read the same. Strict: a misspelt key (credFile) is an
 * error, never a credential silently dropped.
 */
export const NatsConnectionConfigSchema = z
  .strictObject({
    servers: z.array(z.string().min(1).max(512)).min(1).max(32).default(['nats://127.0.0.1:4222']),
    /** Shown in `nats server report connections`; defaults to `allot-<role>-<nodeId>`. */
    name: z.string().max(128).optional(),
    user: z.string().max(256).optional(),
    password: z.string().max(1024).optional(),
    token: z.string().max(1024).optional(),
    /** An nkey seed (SU...), inline or as a file path in nkeySeedFile. */
    nkeySeed: z.string().max(256).optional(),
    nkeySeedFile: z.string().max(4096).optional(),
    /** A .creds file (JWT + nkey seed), as issued by nsc. */
    credsFile: z.string().max(4096).optional(),
    /** TLS: present (even `{}`, which trusts the system CAs) means the connection must be TLS. */
    tls: z
      .strictObject({
        caFile: z.string().max(4096).optional(),
        certFile: z.string().max(4096).optional(),
        keyFile: z.string().max(4096).optional(),
        /** Upgrade to TLS before the NATS handshake (server `handshake_first`). */
        handshakeFirst: z.boolean().default(false),
      })
      .optional(),
    /** Request/reply timeout for calls this process makes. */
    requestTimeoutMs: z.int().min(10).max(600_000).default(5_000),
    /** In production, connecting without credentials or without TLS is refused unless this is true. */
    insecure: z.boolean().optional(),
  })
  .refine(
    (c) =>
      [
        c.user !== undefined || c.password !== undefined,
        c.token !== undefined,
        c.nkeySeed !== undefined || c.nkeySeedFile !== undefined,
        c.credsFile !== undefined,
      ].filter(Boolean).length <= 1,
    { message: 'choose one way to authenticate: user/password, token, nkey seed or creds file' },
  );
export type NatsConnectionConfig = z.infer<typeof NatsConnectionConfigSchema>;
