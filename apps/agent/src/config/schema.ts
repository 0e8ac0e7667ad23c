import {
  CoreIdSchema,
  CpuPolicySchema,
  GenericManagerConfigSchema,
  HealthThresholdsSchema,
  LabelsSchema,
  LimitsSchema,
  MAX_CORE_ID,
  MAX_MEMORY_MIB,
  MemoryMiBSchema,
  NatsConnectionConfigSchema,
  NodeIdSchema,
  VcpuCountSchema,
} from '@allot/core';
import { validateLayout } from '@allot/probe';
import { z } from './zod.ts';

/** The same rule as every manager's limits: a real number >= 1 with at most two decimals, default 1 (no overcommit). */
const OvercommitRatioSchema = LimitsSchema.shape.overcommitRatio;

/**
 * Memory of this host, in MiB. capacityMiB defaults to the probe's total less the hugepage pools (hugepages are their
 * own resource, per NUMA node, and never regular memory), and may not exceed that; the effective capacity the agent
 * commits against is floor((capacity - systemReserve) x overcommitRatio), capped by hardLimitMiB. Requests that name a
 * NUMA node are also held to that node's memory (never overcommitted): see docs/architecture.md, "NUMA-local memory".
 */
export const AgentMemoryConfigSchema = z
  .strictObject({
    capacityMiB: MemoryMiBSchema.min(1).optional(),
    systemReserveMiB: MemoryMiBSchema.default(0),
    overcommitRatio: OvercommitRatioSchema,
    /** Committed above this makes health Degraded; it does not refuse. */
    softLimitMiB: MemoryMiBSchema.optional(),
    /** Committed never goes above this, whatever the ratio. */
    hardLimitMiB: MemoryMiBSchema.optional(),
  })
  .superRefine((m, ctx) => {
    if (m.capacityMiB !== undefined && m.systemReserveMiB >= m.capacityMiB) {
      ctx.addIssue({
        code: 'custom',
        path: ['systemReserveMiB'],
        message: `${m.systemReserveMiB} MiB leaves nothing of capacityMiB ${m.capacityMiB} MiB`,
      });
    }
    if (m.softLimitMiB !== undefined && m.hardLimitMiB !== undefined && m.softLimitMiB > m.hardLimitMiB) {
      ctx.addIssue({ code: 'custom', path: ['softLimitMiB'], message: `${m.softLimitMiB} is above hardLimitMiB ${m.hardLimitMiB}` });
    }
  });

/**
 * CPU of this host. cores defaults to the probe's logical cores. reservedCores names the cores kept for the host
 * itself; systemReserveCores counts them and defaults to reservedCores.length (with no ids named, the manager
 * reserves the lowest ids). overcommitRatio is vCPUs per shared logical core.
 */
export const AgentCpuConfigSchema = z
  .strictObject({
    cores: z.int().min(1).max(MAX_CORE_ID).optional(),
    reservedCores: z.array(CoreIdSchema).max(4096).default([]),
    systemReserveCores: z.int().min(0).max(MAX_CORE_ID).optional(),
    overcommitRatio: OvercommitRatioSchema,
    policy: CpuPolicySchema.default('first-fit'),
    hardLimitVcpus: VcpuCountSchema.optional(),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<number>();
    c.reservedCores.forEach((id, index) => {
      if (seen.has(id)) ctx.addIssue({ code: 'custom', path: ['reservedCores', index], message: `core ${id} is named twice` });
      if (c.cores !== undefined && id >= c.cores)
        ctx.addIssue({ code: 'custom', path: ['reservedCores', index], message: `core ${id} does not exist with ${c.cores} cores` });
      seen.add(id);
    });
    if (c.systemReserveCores !== undefined && c.reservedCores.length > 0 && c.systemReserveCores !== c.reservedCores.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['systemReserveCores'],
        message: `${c.systemReserveCores} differs from the ${c.reservedCores.length} reservedCores named`,
      });
    }
    const reserve = c.systemReserveCores ?? c.reservedCores.length;
    if (c.cores !== undefined && reserve >= c.cores) {
      ctx.addIssue({
        code: 'custom',
        path: ['systemReserveCores'],
        message: `${reserve} reserved cores leave none of the ${c.cores} cores for VMs`,
      });
    }
  })
  .transform((c) => ({ ...c, systemReserveCores: c.systemReserveCores ?? c.reservedCores.length }));

/**
 * Another resource this host offers (disk, gpu, custom:<name>), counted in integer units against its limits;
 * requests ask for it in resources.extra and the usage snapshot carries it in `extra`.
 */
export const AgentResourceConfigSchema = GenericManagerConfigSchema.strict().refine(
  (r) => r.resourceType !== 'memory' && r.resourceType !== 'cpu',
  {
    message: 'memory and cpu are configured under their own keys',
    path: ['resourceType'],
  },
);

/** The size of a simulated host (the local cluster runs several agents on one machine); its usage is derived, not read. */
export const SimulatedHostSchema = z
  .strictObject({
    /** Logical cores. */
    cores: z.int().min(1).max(4096),
    sockets: z.int().min(1).max(64).default(1),
    numaNodes: z.int().min(1).max(256).default(1),
    threadsPerCore: z.int().min(1).max(8).default(1),
    memoryMiB: z.int().min(1).max(MAX_MEMORY_MIB),
    /** 2 MiB hugepages on every NUMA node, out of its share of memoryMiB (absent: none). */
    hugepages2MiPerNode: z
      .int()
      .min(0)
      .max(MAX_MEMORY_MIB / 2)
      .optional(),
    /** 1 GiB hugepages on every NUMA node, out of its share of memoryMiB (absent: none). */
    hugepages1GiPerNode: z
      .int()
      .min(0)
      .max(MAX_MEMORY_MIB / 1024)
      .optional(),
  })
  .superRefine((size, ctx) => {
    const layout = validateLayout(size);
    if (!layout.ok) {
      const field = typeof layout.error.details?.field === 'string' ? layout.error.details.field : 'cores';
      ctx.addIssue({ code: 'custom', path: [field], message: layout.error.message.replace(/^\w+: /, '') });
    }
  });
export type SimulatedHost = z.infer<typeof SimulatedHostSchema>;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Everything the agent reads at start-up: a JSON file overridden by ALLOT_* environment variables (see env.ts).
 * Unknown keys are refused so that a misspelt key is an error, not a silently ignored setting.
 */
export const AgentConfigSchema = z
  .strictObject({
    /** This host's id in subjects and the registry; defaults to the hostname in the NodeIdSchema alphabet. */
    nodeId: NodeIdSchema,
    /** Production rules: stateDir required, NATS credentials and TLS required (or nats.insecure). Also NODE_ENV=production. */
    production: z.boolean().optional(),
    nats: NatsConnectionConfigSchema.prefault({}),
    /** zone, rack, anything placement constraints may name. Reloaded on SIGHUP, like logLevel and health (config/reload.ts). */
    labels: LabelsSchema.default({}),
    memory: AgentMemoryConfigSchema.prefault({}),
    cpu: AgentCpuConfigSchema.prefault({}),
    health: HealthThresholdsSchema.strict().prefault({}),
    /** Counted resources besides memory and CPU, one per type. */
    resources: z
      .array(AgentResourceConfigSchema)
      .max(64)
      .refine((list) => new Set(list.map((r) => r.resourceType)).size === list.length, { message: 'one entry per resourceType' })
      .optional(),
    /** Where the ledger lives. Required when NODE_ENV=production; otherwise `./.allot/agent-<nodeId>`. */
    stateDir: z.string().min(1).max(4096),
    /** How often the probe is sampled. */
    samplingIntervalMs: z.int().min(100).max(600_000).default(1000),
    /**
     * The publish loop's tick: a change is sent at once (coalesced, usagePublishMinIntervalMs), an idle status at most
     * this often; snapshots announce it, and a coordinator calls a node suspect after 3 of them without a report
     * (unless, on coordinators that watch the node leases, its lease is renewed).
     */
    heartbeatMs: z.int().min(100).max(600_000).default(2000),
    /**
     * An idle host (nothing changed) sends its status this often; default heartbeatMs. The agent's node lease, renewed
     * every 5 s, is its liveness for coordinators of this release, which watch the leases. Raise it (e.g. 60000) once
     * every coordinator runs this release: an older one judges liveness from reports only and would call a host that
     * reports every 60 s suspect after 3 x heartbeatMs of silence (docs/operations.md, "Rolling restarts and upgrades").
     */
    idleStatusMs: z.int().min(100).max(3_600_000).optional(),
    /** Changes closer together than this are coalesced into one usage snapshot. */
    usagePublishMinIntervalMs: z.int().min(0).max(60_000).default(250),
    /** When set, the host is simulated with this size instead of probed (the local cluster). */
    simulatedHost: SimulatedHostSchema.optional(),
    /**
     * Metrics and health over HTTP; off unless configured. Loopback unless `host` says otherwise; with `tokenFile` (a
     * file holding the token, never the token itself) /metrics needs `Authorization: Bearer <token>`, /healthz stays
     * open. In production a host other than loopback needs tokenFile.
     */
    http: z
      .strictObject({
        host: z.string().min(1).max(255).default('127.0.0.1'),
        port: z.int().min(0).max(65_535),
        tokenFile: z.string().min(1).max(4096).optional(),
      })
      .optional(),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    /** Replicas of the streams the agent creates when they are missing (1 locally, 3 on a 3-node NATS cluster). */
    jetstreamReplicas: z.int().min(1).max(5).default(1),
    /** How long a stop waits for in-flight requests and the last ledger flush. */
    shutdownGraceMs: z.int().min(0).max(600_000).default(10_000),
  })
  .superRefine((c, ctx) => {
    if (c.samplingIntervalMs >= c.health.probeStaleMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['samplingIntervalMs'],
        message: `${c.samplingIntervalMs} ms is not below health.probeStaleMs ${c.health.probeStaleMs} ms: every sample would look stale`,
      });
    }
    if (c.idleStatusMs !== undefined && c.idleStatusMs < c.heartbeatMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['idleStatusMs'],
        message: `${c.idleStatusMs} ms is below heartbeatMs ${c.heartbeatMs} ms: an idle status is sent on a heartbeat tick`,
      });
    }
    if (c.usagePublishMinIntervalMs > c.heartbeatMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['usagePublishMinIntervalMs'],
        message: `${c.usagePublishMinIntervalMs} ms is above heartbeatMs ${c.heartbeatMs} ms`,
      });
    }
  });

/** The validated configuration, every default filled in. */
export type AgentConfig = z.output<typeof AgentConfigSchema>;
/** The configuration as a file may write it. */
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;
