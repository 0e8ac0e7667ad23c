import { parseKeyValues } from './key-values.ts';

/** How an environment variable's text becomes a config value. */
export type EnvKind = 'string' | 'number' | 'boolean' | 'list' | 'numberList' | 'keyValues' | 'hostSize';

/** One environment variable and the config key it sets (it overrides the same key of the config file). */
export interface EnvBinding {
  readonly name: string;
  readonly path: readonly string[];
  readonly kind: EnvKind;
}

/**
 * The NATS connection variables, read the same by the agent and the coordinator (the CLI reads them too). Secrets
 * come from files (a .creds file, an nkey seed file) so that none needs to sit in an environment or on a command line;
 * user/password and token remain for servers configured that way.
 */
export const NATS_ENV_BINDINGS: readonly EnvBinding[] = [
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
  { name: 'ALLOT_NATS_TLS_FIRST', path: ['nats', 'tls', 'handshakeFirst'], kind: 'boolean' },
  { name: 'ALLOT_NATS_REQUEST_TIMEOUT_MS', path: ['nats', 'requestTimeoutMs'], kind: 'number' },
  { name: 'ALLOT_NATS_INSECURE', path: ['nats', 'insecure'], kind: 'boolean' },
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

function booleanOrText(text: string): boolean | string {
  const word = text.trim().toLowerCase();
  if (word === 'true' || word === '1' || word === 'yes') return true;
  if (word === 'false' || word === '0' || word === 'no') return false;
  return text.trim();
}

function convert(binding: EnvBinding, text: string): EnvValue {
  switch (binding.kind) {
    case 'string':
      return { ok: true, binding, value: text.trim() };
    case 'number':
      return { ok: true, binding, value: numberOrText(text) };
    case 'boolean':
      return { ok: true, binding, value: booleanOrText(text) };
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

/** The set variables among `bindings`, converted. An empty variable counts as unset (compose files and systemd units write those). */
export function readEnv(bindings: readonly EnvBinding[], env: Readonly<Record<string, string | undefined>>): EnvValue[] {
  return bindings.flatMap((binding) => {
    const text = env[binding.name];
    return text === undefined || text.trim() === '' ? [] : [convert(binding, text)];
  });
}
