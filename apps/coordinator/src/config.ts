import { readFileSync } from 'node:fs';
import { NatsConnectionConfigSchema, PlacementStrategySchema, PrioritySchema, type Result } from '@allot/core';
import { loadProcessConfig, type EnvBinding } from '@allot/nats';
import { exposedWithoutToken } from '@allot/telemetry';
import { z } from 'zod';
import { SweepConfigSchema } from './sweep.ts';

/**
 * Liveness thresholds, as Nomad and the kubelet judge nodes: a node's agent proves it lives by its status reports and,
 * with leaseExpiry, by renewing its node lease in KV allot_nodes (every 5 s), which every coordinator watches. Suspect
 * once its reports are silent past suspectAfterMs (default, per node, 3 x the heartbeat its snapshots announce: 6 s at
 * the agent's default 2 s) and, for a node announcing an idle status (idleStatusMs), its lease unrenewed for
 * max(suspectAfterMs, 10 s); or at once when its lease is deleted (a clean stop). Lost once its reports are silent past
 * lostAfterMs (default 15 s, the lease's TTL) and its lease is gone.
 */
export const LivenessConfigSchema = z.strictObject({
  suspectAfterMs: z.int().min(10).max(3_600_000).optional(),
  lostAfterMs: z
    .int()
    .min(10)
    .max(24 * 3_600_000)
    .default(15_000),
  /** Watch the node leases (KV allot_nodes) and count a renewal as liveness; false: the reports' silence alone decides. */
  leaseExpiry: z.boolean().default(true),
  /** How often the liveness sweep runs. */
  checkEveryMs: z.int().min(5).max(60_000).default(500),
});
export type LivenessConfig = z.infer<typeof LivenessConfigSchema>;

/** How a place request is driven to an agent. */
export const PlaceConfigSchema = z.strictObject({
  /** Nodes asked at most per place (a refusal moves to the next candidate). */
  maxAttempts: z.int().min(1).max(32).default(3),
  /** Wait for one agent's allocate reply; a timeout is not a refusal (the agent may still commit). */
  agentTimeoutMs: z.int().min(10).max(600_000).default(2_000),
  /** Times the same node is asked again after a timeout before the place answers `timeout`. */
  timeoutRetries: z.int().min(0).max(10).default(1),
  /** Candidates asked of @allot/placement per decision. */
  maxCandidates: z.int().min(1).max(64).default(5),
  defaultStrategy: PlacementStrategySchema.default('binpack'),
  /**
   * Nodes whose allocation lists are fetched when planning a preemption: the best ones placement's post-filter names
   * at the lowest victim level over the whole cluster (ranked by their snapshots' per-priority figures).
   */
  preemptionNodes: z.int().min(1).max(256).default(4),
  /** How long a move's destination (move, evacuate) is held as a reservation unconfirmed, when the request names none. */
  moveHoldMs: z
    .int()
    .min(1_000)
    .max(7 * 24 * 3_600_000)
    .default(600_000),
});
export type PlaceConfig = z.infer<typeof PlaceConfigSchema>;

/** The reconciler of placement intents left pending by a client that never retried (see README.md). */
export const ReconcileConfigSchema = z.strictObject({
  /** How often the intents bucket is scanned. */
  everyMs: z
    .int()
    .min(100)
    .max(24 * 3_600_000)
    .default(30_000),
  /**
   * Only intents pending at the same revision for at least this long (on this coordinator's monotonic clock, from when
   * it first saw that revision) are settled: younger ones may still be driven.
   */
  pendingOlderThanMs: z
    .int()
    .min(1_000)
    .max(30 * 24 * 3_600_000)
    .default(60_000),
});
export type ReconcileConfig = z.infer<typeof ReconcileConfigSchema>;

/** The dashboard's HTTP server (static page, JSON API, server-sent events). Absent: no HTTP server at all. */
export const HttpConfigSchema = z.strictObject({
  /** Loopback by default. Any other address needs `token` (http/auth.ts). */
  host: z.string().min(1).max(255).default('127.0.0.1'),
  /** The dashboard's token (16-256 of A-Z a-z 0-9 . _ ~ -), better from ALLOT_DASHBOARD_TOKEN than from a file. */
  token: z.string().optional(),
  /** Host header names accepted (DNS rebinding); default: localhost, 127.0.0.1, ::1 and `host`. */
  allowedHosts: z.array(z.string().min(1).max(255)).max(64).optional(),
  /** Open connections at most; live feeds (SSE) at most. */
  maxConnections: z.int().min(1).max(100_000).default(256),
  maxSseClients: z.int().min(1).max(10_000).default(64),
  /** 0 picks a free port (logged with `dashboard listening`). */
  port: z.int().min(0).max(65_535),
  /** One point of the utilization series this often; 720 points are kept (an hour at the default 5 s). */
  seriesEveryMs: z.int().min(100).max(3_600_000).default(5_000),
  seriesPoints: z.int().min(2).max(100_000).default(720),
});
export type HttpConfig = z.infer<typeof HttpConfigSchema>;

export const CoordinatorConfigSchema = z.strictObject({
  /** Production rules: NATS credentials and TLS required (or nats.insecure). Also NODE_ENV=production. */
  production: z.boolean().optional(),
  /** Names this coordinator in logs, intents and NATS connection names. */
  coordinatorId: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only')
    .default('coordinator'),
  nats: NatsConnectionConfigSchema.default(NatsConnectionConfigSchema.parse({})),
  /** Replicas of the streams and KV buckets it creates: 1 on one server, 3 on a three-server cluster. */
  replicas: z.int().min(1).max(5).default(1),
  liveness: LivenessConfigSchema.default(LivenessConfigSchema.parse({})),
  place: PlaceConfigSchema.default(PlaceConfigSchema.parse({})),
  reconcile: ReconcileConfigSchema.default(ReconcileConfigSchema.parse({})),
  /** The anti-entropy sweep (sweep.ts): everyMs 60 s with jitter, graceMs 60 s before an orphan is released. */
  sweep: SweepConfigSchema.strict().default(SweepConfigSchema.parse({})),
  /**
   * A read-only view of several sites (docs/architecture.md, "Sites and regions"): it reaches no agent, so it serves
   * the read verbs alone and runs no anti-entropy sweep.
   */
  readOnly: z.boolean().default(false),
  /**
   * How long a failed or released placement intent is kept (a retry within that window is answered from it); 0 keeps
   * them forever. Pending and placed intents never expire: a live placement's intent, and its quota, stay.
   */
  intentTtlMs: z
    .int()
    .min(0)
    .max(30 * 24 * 3_600_000)
    .default(7 * 24 * 3_600_000),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /**
   * Priority and preemption right of a tenant whose quota names none (a tenant without a quota included): never taken
   * from the request. Deny by default; an allowing default is refused in production.
   */
  tenantDefaults: z
    .strictObject({ priority: PrioritySchema.default(0), allowPreemption: z.boolean().default(false) })
    .default({ priority: 0, allowPreemption: false }),
  /** The dashboard and its API over HTTP; off unless set. */
  http: HttpConfigSchema.optional(),
  /**
   * GET /metrics and GET /healthz on their own listener; off unless set. Loopback unless `host` says otherwise; with
   * `tokenFile` (a file holding the token, never the token itself) /metrics needs `Authorization: Bearer <token>`,
   * /healthz stays open. In production a host other than loopback needs tokenFile.
   */
  metrics: z
    .strictObject({
      host: z.string().min(1).max(255).default('127.0.0.1'),
      port: z.int().min(0).max(65_535),
      tokenFile: z.string().min(1).max(4096).optional(),
    })
    .optional(),
  /** The built dashboard's directory (default: the one the release executable carries, else apps/dashboard/dist). */
  dashboardDir: z.string().min(1).optional(),
});
export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;
export type CoordinatorConfigInput = z.input<typeof CoordinatorConfigSchema>;

/** The coordinator's own variables; the ALLOT_NATS_* ones are shared with the agent (NATS_ENV_BINDINGS). */
export const COORDINATOR_ENV_BINDINGS: readonly EnvBinding[] = [
  { name: 'ALLOT_COORDINATOR_ID', path: ['coordinatorId'], kind: 'string' },
  { name: 'ALLOT_REPLICAS', path: ['replicas'], kind: 'number' },
  { name: 'ALLOT_LOG_LEVEL', path: ['logLevel'], kind: 'string' },
  { name: 'ALLOT_SUSPECT_AFTER_MS', path: ['liveness', 'suspectAfterMs'], kind: 'number' },
  { name: 'ALLOT_LOST_AFTER_MS', path: ['liveness', 'lostAfterMs'], kind: 'number' },
  { name: 'ALLOT_PLACE_MAX_ATTEMPTS', path: ['place', 'maxAttempts'], kind: 'number' },
  { name: 'ALLOT_AGENT_TIMEOUT_MS', path: ['place', 'agentTimeoutMs'], kind: 'number' },
  { name: 'ALLOT_HTTP_PORT', path: ['http', 'port'], kind: 'number' },
  { name: 'ALLOT_HTTP_HOST', path: ['http', 'host'], kind: 'string' },
  { name: 'ALLOT_DASHBOARD_TOKEN', path: ['http', 'token'], kind: 'string' },
  { name: 'ALLOT_METRICS_PORT', path: ['metrics', 'port'], kind: 'number' },
  { name: 'ALLOT_METRICS_HOST', path: ['metrics', 'host'], kind: 'string' },
  { name: 'ALLOT_METRICS_TOKEN_FILE', path: ['metrics', 'tokenFile'], kind: 'string' },
  { name: 'ALLOT_DASHBOARD_DIR', path: ['dashboardDir'], kind: 'string' },
];

/** Where the Debian package installs the coordinator's config, read when no file is named. */
export const COORDINATOR_DEFAULT_CONFIG = '/etc/allot/coordinator.json';

/**
 * The configuration from `--config <file>` / `--config=<file>` (or ALLOT_COORDINATOR_CONFIG; JSON, optional)
 * overridden by ALLOT_* variables, validated: the agent's loader (@allot/nats loadProcessConfig). A problem is
 * invalid_request whose message names every bad key, one per line, and where the value came from.
 */
export function loadCoordinatorConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
  defaultConfigFile?: string,
): Result<CoordinatorConfig> {
  return loadProcessConfig({
    schema: CoordinatorConfigSchema,
    argv,
    env,
    readFile,
    configFileVariable: 'ALLOT_COORDINATOR_CONFIG',
    ...(defaultConfigFile === undefined ? {} : { defaultConfigFile }),
    envBindings: COORDINATOR_ENV_BINDINGS,
    prepare: ({ raw, provenance, problems, production }) => {
      const exposed = production ? exposedWithoutToken(raw['metrics']) : undefined;
      if (exposed !== undefined) {
        problems.push({
          path: 'metrics.tokenFile',
          message: `required in production when metrics.host (${exposed}) is not loopback: scrapers must send a bearer token`,
          source: provenance.sourcesOf(['metrics', 'host']).join(', '),
        });
      }
      const defaults = raw['tenantDefaults'];
      if (
        production &&
        typeof defaults === 'object' &&
        defaults !== null &&
        (defaults as Record<string, unknown>)['allowPreemption'] === true
      ) {
        problems.push({
          path: 'tenantDefaults.allowPreemption',
          message: 'in production a tenant may preempt only when its quota says so (allowPreemption)',
          source: provenance.sourcesOf(['tenantDefaults', 'allowPreemption']).join(', '),
        });
      }
    },
  });
}
