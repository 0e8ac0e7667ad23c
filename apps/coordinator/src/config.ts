import { readFileSync } from 'node:fs';
import { err, formatIssues, NatsConnectionConfigSchema, PlacementStrategySchema, type Result } from '@allot/core';
import { z } from 'zod';
import { SweepConfigSchema } from './sweep.ts';

/** Liveness thresholds. suspectAfterMs defaults, per node, to 3 x the heartbeat its snapshots announce. */
export const LivenessConfigSchema = z.object({
  suspectAfterMs: z.int().min(10).max(3_600_000).optional(),
  lostAfterMs: z.int().min(10).max(24 * 3_600_000).default(30_000),
  /** How often the liveness sweep runs. */
  checkEveryMs: z.int().min(5).max(60_000).default(500),
});
export type LivenessConfig = z.infer<typeof LivenessConfigSchema>;

/** How a place request is driven to an agent. */
export const PlaceConfigSchema = z.object({
  /** Nodes asked at most per place (a refusal moves to the next candidate). */
  maxAttempts: z.int().min(1).max(32).default(3),
  /** Wait for one agent's allocate reply; a timeout is not a refusal (the agent may still commit). */
  agentTimeoutMs: z.int().min(10).max(600_000).default(2_000),
  /** Times the same node is asked again after a timeout before the place answers `timeout`. */
  timeoutRetries: z.int().min(0).max(10).default(1),
  /** Candidates asked of @allot/placement per decision. */
  maxCandidates: z.int().min(1).max(64).default(5),
  defaultStrategy: PlacementStrategySchema.default('binpack'),
  /** Nodes whose allocation lists are fetched when planning a preemption. */
  preemptionNodes: z.int().min(1).max(256).default(16),
});
export type PlaceConfig = z.infer<typeof PlaceConfigSchema>;

/** The reconciler of placement intents left pending by a client that never retried (see README.md). */
export const ReconcileConfigSchema = z.object({
  /** How often the intents bucket is scanned. */
  everyMs: z.int().min(100).max(24 * 3_600_000).default(30_000),
  /**
   * Only intents pending at the same revision for at least this long (on this coordinator's monotonic clock, from when
   * it first saw that revision) are settled: younger ones may still be driven.
   */
  pendingOlderThanMs: z.int().min(1_000).max(30 * 24 * 3_600_000).default(60_000),
});
export type ReconcileConfig = z.infer<typeof ReconcileConfigSchema>;

/** The dashboard's HTTP server (static page, JSON API, server-sent events). Absent: no HTTP server at all. */
export const HttpConfigSchema = z.object({
  /** Loopback by default: the dashboard has no authentication of its own; put a proxy in front to expose it. */
  host: z.string().min(1).max(255).default('127.0.0.1'),
  /** 0 picks a free port (logged with `dashboard listening`). */
  port: z.int().min(0).max(65_535),
  /** One point of the utilization series this often; 720 points are kept (an hour at the default 5 s). */
  seriesEveryMs: z.int().min(100).max(3_600_000).default(5_000),
  seriesPoints: z.int().min(2).max(100_000).default(720),
});
export type HttpConfig = z.infer<typeof HttpConfigSchema>;

export const CoordinatorConfigSchema = z.object({
  /** Names this coordinator in logs, intents and NATS connection names. */
  coordinatorId: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only').default('coordinator'),
  nats: NatsConnectionConfigSchema.default(NatsConnectionConfigSchema.parse({})),
  /** Replicas of the streams and KV buckets it creates: 1 on one server, 3 on a three-server cluster. */
  replicas: z.int().min(1).max(5).default(1),
  liveness: LivenessConfigSchema.default(LivenessConfigSchema.parse({})),
  place: PlaceConfigSchema.default(PlaceConfigSchema.parse({})),
  reconcile: ReconcileConfigSchema.default(ReconcileConfigSchema.parse({})),
  /** The anti-entropy sweep (sweep.ts): everyMs 60 s with jitter, graceMs 60 s before an orphan is released. */
  sweep: SweepConfigSchema.default(SweepConfigSchema.parse({})),
  /**
   * How long a failed or released placement intent is kept (a retry within that window is answered from it); 0 keeps
   * them forever. Pending and placed intents never expire: a live placement's intent, and its quota, stay.
   */
  intentTtlMs: z.int().min(0).max(30 * 24 * 3_600_000).default(7 * 24 * 3_600_000),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** The dashboard and its API over HTTP; off unless set. */
  http: HttpConfigSchema.optional(),
  /** The built dashboard (default apps/dashboard/dist next to this app). */
  dashboardDir: z.string().min(1).optional(),
});
export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;
export type CoordinatorConfigInput = z.input<typeof CoordinatorConfigSchema>;

/** Environment variables and the key each sets (they override the file). */
const ENV: readonly { name: string; path: string[]; kind: 'string' | 'number' | 'list' }[] = [
  { name: 'ALLOT_COORDINATOR_ID', path: ['coordinatorId'], kind: 'string' },
  { name: 'ALLOT_NATS_SERVERS', path: ['nats', 'servers'], kind: 'list' },
  { name: 'ALLOT_NATS_USER', path: ['nats', 'user'], kind: 'string' },
  { name: 'ALLOT_NATS_PASSWORD', path: ['nats', 'password'], kind: 'string' },
  { name: 'ALLOT_NATS_TOKEN', path: ['nats', 'token'], kind: 'string' },
  { name: 'ALLOT_NATS_CREDS', path: ['nats', 'credsFile'], kind: 'string' },
  { name: 'ALLOT_NATS_REQUEST_TIMEOUT_MS', path: ['nats', 'requestTimeoutMs'], kind: 'number' },
  { name: 'ALLOT_REPLICAS', path: ['replicas'], kind: 'number' },
  { name: 'ALLOT_LOG_LEVEL', path: ['logLevel'], kind: 'string' },
  { name: 'ALLOT_SUSPECT_AFTER_MS', path: ['liveness', 'suspectAfterMs'], kind: 'number' },
  { name: 'ALLOT_LOST_AFTER_MS', path: ['liveness', 'lostAfterMs'], kind: 'number' },
  { name: 'ALLOT_PLACE_MAX_ATTEMPTS', path: ['place', 'maxAttempts'], kind: 'number' },
  { name: 'ALLOT_AGENT_TIMEOUT_MS', path: ['place', 'agentTimeoutMs'], kind: 'number' },
  { name: 'ALLOT_HTTP_PORT', path: ['http', 'port'], kind: 'number' },
  { name: 'ALLOT_HTTP_HOST', path: ['http', 'host'], kind: 'string' },
  { name: 'ALLOT_DASHBOARD_DIR', path: ['dashboardDir'], kind: 'string' },
];

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let at = target;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) at[key] = {};
    at = at[key] as Record<string, unknown>;
  }
  at[path[path.length - 1] as string] = value;
}

/**
 * The configuration from `--config <file>` (JSON, optional) overridden by ALLOT_* variables, validated. A problem is
 * invalid_request whose message names every bad key, one per line, and where the value came from.
 */
export function loadCoordinatorConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): Result<CoordinatorConfig> {
  const raw: Record<string, unknown> = {};
  const i = argv.indexOf('--config');
  if (i !== -1) {
    const file = argv[i + 1];
    if (file === undefined || file.startsWith('--')) return err('invalid_request', '--config: needs a file path', { field: '--config' });
    let text: string;
    try {
      text = readFile(file);
    } catch (e) {
      return err('invalid_request', `--config: cannot read ${file}: ${(e as Error).message}`, { field: '--config' });
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return err('invalid_request', `${file}: the config must be a JSON object`, { field: '(file)' });
      Object.assign(raw, parsed);
    } catch (e) {
      return err('invalid_request', `${file}: not valid JSON: ${(e as Error).message}`, { field: '(file)' });
    }
  }
  for (const binding of ENV) {
    const text = env[binding.name];
    if (text === undefined || text === '') continue;
    if (binding.kind === 'number') {
      const n = Number(text);
      if (!Number.isFinite(n)) return err('invalid_request', `${binding.path.join('.')}: "${text}" is not a number (from ${binding.name})`, { field: binding.path.join('.'), source: binding.name });
      setPath(raw, binding.path, n);
    } else if (binding.kind === 'list') setPath(raw, binding.path, text.split(',').map((s) => s.trim()).filter((s) => s !== ''));
    else setPath(raw, binding.path, text);
  }
  const parsed = CoordinatorConfigSchema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  const lines = formatIssues(parsed.error);
  return err('invalid_request', `config error: ${lines.join('; ')}`, { field: lines[0]?.split(':')[0] ?? '(root)', problems: lines });
}
