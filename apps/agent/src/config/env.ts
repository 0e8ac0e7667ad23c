import { parseKeyValues } from './key-values.ts';

/** How an environment variable's text becomes a config value. */
type EnvKind = 'string' | 'number' | 'list' | 'numberList' | 'keyValues' | 'hostSize';

/** One environment variable and the config key it sets. */
export interface EnvBinding {
  readonly name: string;
  readonly path: readonly string[];
  readonly kind: EnvKind;
}

/** Every environment variable the agent reads. Each overrides the same key of the config file. */
export const ENV_BINDINGS: readonly EnvBinding[] = [
  { name: 'ALLOT_NODE_ID', path: ['nodeId'], kind: 'string' },
  { name: 'ALLOT_NATS_SERVERS', path: ['nats', 'servers'], kind: 'list' },
  { name: 'ALLOT_NATS_NAME', path: ['nats', 'name'], kind: 'string' },
  { name: 'ALLOT_NATS_USER', path: ['nats', 'user'], kind: 'string' },
  { name: 'ALLOT_NATS_PASSWORD', path: ['nats', 'password'], kind: 'string' },
  { name: 'ALLOT_NATS_TOKEN', path: ['nats', 'token'], kind: 'string' },
  { name: 'ALLOT_NATS_NKEY_SEED_FILE', path: ['nats', 'nkeySeedFile'], kind: 'string' },
  { name: 'ALLOT_NATS_CREDS', path: ['nats', 'credsFile'], kind: 'string' },
  { name: 'ALLOT_NATS_TLS_CA', path: ['nats', 'tls', 'caFile'], kind: 'string' },
  { name: 'ALLOT_NATS_TLS_CERT', path: ['nats', 'tls', 'certFile'], kind: 'string' },
  { name: 'ALLOT_NATS_TLS_KEY', path: ['nats', 'tls', 'keyFile'], kind: 'string' },
  { name: 'ALLOT_NATS_REQUEST_TIMEOUT_MS', path: ['nats', 'requestTimeoutMs'], kind: 'number' },
  { name: 'ALLOT_STATE_DIR', path: ['stateDir'], kind: 'string' },
  { name: 'ALLOT_LOG_LEVEL', path: ['logLevel'], kind: 'string' },
  { name: 'ALLOT_JETSTREAM_REPLICAS', path: ['jetstreamReplicas'], kind: 'number' },
  { name: 'ALLOT_LABELS', path: ['labels'], kind: 'keyValues' },
  { name: 'ALLOT_MEMORY_CAPACITY_MIB', path: ['memory', 'capacityMiB'], kind: 'number' },
  { name: 'ALLOT_MEMORY_SYSTEM_RESERVE_MIB', path: ['memory', 'systemReserveMiB'], kind: 'number' },
  { name: 'ALLOT_MEMORY_OVERCOMMIT', path: ['memory', 'overcommitRatio'], kind: 'number' },
  { name: 'ALLOT_MEMORY_SOFT_LIMIT_MIB', path: ['memory', 'softLimitMiB'], kind: 'number' },
  { name: 'ALLOT_MEMORY_HARD_LIMIT_MIB', path: ['memory', 'hardLimitMiB'], kind: 'number' },
  { name: 'ALLOT_CPU_CORES', path: ['cpu', 'cores'], kind: 'number' },
  { name: 'ALLOT_CPU_RESERVED_CORES', path: ['cpu', 'reservedCores'], kind: 'numberList' },
  { name: 'ALLOT_CPU_SYSTEM_RESERVE_CORES', path: ['cpu', 'systemReserveCores'], kind: 'number' },
  { name: 'ALLOT_CPU_OVERCOMMIT', path: ['cpu', 'overcommitRatio'], kind: 'number' },
  { name: 'ALLOT_CPU_POLICY', path: ['cpu', 'policy'], kind: 'string' },
  { name: 'ALLOT_CPU_HARD_LIMIT_VCPUS', path: ['cpu', 'hardLimitVcpus'], kind: 'number' },
  { name: 'ALLOT_SAMPLING_INTERVAL_MS', path: ['samplingIntervalMs'], kind: 'number' },
  { name: 'ALLOT_HEARTBEAT_MS', path: ['heartbeatMs'], kind: 'number' },
  { name: 'ALLOT_USAGE_PUBLISH_MIN_INTERVAL_MS', path: ['usagePublishMinIntervalMs'], kind: 'number' },
  { name: 'ALLOT_SHUTDOWN_GRACE_MS', path: ['shutdownGraceMs'], kind: 'number' },
  { name: 'ALLOT_SIMULATED_HOST', path: ['simulatedHost'], kind: 'hostSize' },
  { name: 'ALLOT_HTTP_HOST', path: ['http', 'host'], kind: 'string' },
  { name: 'ALLOT_HTTP_PORT', path: ['http', 'port'], kind: 'number' },
];

/** A value taken from one environment variable, or why it could not be taken. */
export type EnvValue =
  | { readonly ok: true; readonly binding: EnvBinding; readonly value: unknown }
  | { readonly ok: false; readonly binding: EnvBinding; readonly problem: string };

/**
 * Numbers are converted when they look like numbers; anything else is passed on as text so that the schema
 * reports it with its usual message ("expected number, received string") and the variable's name.
 */
function numberOrText(text: string): number | string {
  const trimmed = text.trim();
  return /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
}

function convert(binding: EnvBinding, text: string): EnvValue {
  switch (binding.kind) {
    case 'string':
      return { ok: true, binding, value: text.trim() };
    case 'number':
      return { ok: true, binding, value: numberOrText(text) };
    case 'list':
      return { ok: true, binding, value: splitList(text) };
    case 'numberList':
      return { ok: true, binding, value: splitList(text).map(numberOrText) };
    case 'keyValues':
    case 'hostSize': {
      const parsed = parseKeyValues(text);
      if (!parsed.ok) return { ok: false, binding, problem: parsed.problem };
      if (binding.kind === 'keyValues') return { ok: true, binding, value: parsed.value };
      return { ok: true, binding, value: Object.fromEntries(Object.entries(parsed.value).map(([k, v]) => [k, numberOrText(v)])) };
    }
  }
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The set variables, converted. An empty variable counts as unset (compose files and systemd units write those). */
export function readEnv(env: Readonly<Record<string, string | undefined>>): EnvValue[] {
  return ENV_BINDINGS.flatMap((binding) => {
    const text = env[binding.name];
    return text === undefined || text.trim() === '' ? [] : [convert(binding, text)];
  });
}
