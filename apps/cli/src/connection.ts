import { formatIssues, NatsConnectionConfigSchema, type NatsConnectionConfig } from '@allot/core';
import { parsedOk, usageProblem, type Parsed } from './args.ts';

/**
 * How the CLI reaches NATS: the same keys as the agent's and the coordinator's `nats` config, from flags first, then
 * the same ALLOT_NATS_* environment variables the agent reads, then the default nats://127.0.0.1:4222.
 */
export const CONNECTION_OPTIONS = {
  server: { type: 'string', short: 's', multiple: true },
  user: { type: 'string' },
  password: { type: 'string' },
  token: { type: 'string' },
  creds: { type: 'string' },
  'nkey-seed-file': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  timeout: { type: 'string' },
} as const;

export const CONNECTION_HELP = `Connection (flags win over the environment):
  -s, --server <url>        NATS server, repeatable; env ALLOT_NATS_SERVERS (comma-separated); default nats://127.0.0.1:4222
      --user <u>            env ALLOT_NATS_USER          --password <p>  env ALLOT_NATS_PASSWORD
      --token <t>           env ALLOT_NATS_TOKEN         --creds <file>  env ALLOT_NATS_CREDS
      --nkey-seed-file <f>  env ALLOT_NATS_NKEY_SEED_FILE
      --tls-ca/--tls-cert/--tls-key <file>  env ALLOT_NATS_TLS_CA / _CERT / _KEY
      --timeout <ms>        request timeout; env ALLOT_NATS_REQUEST_TIMEOUT_MS; default 5000
      --json                print the raw reply value as JSON (for scripts)
  -h, --help                this help`;

export interface ConnectionFlags {
  server?: string[] | undefined;
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  creds?: string | undefined;
  'nkey-seed-file'?: string | undefined;
  'tls-ca'?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  timeout?: string | undefined;
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text.trim() === '' ? undefined : text.trim();
}

function list(text: string | undefined): string[] | undefined {
  const items = (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return items.length > 0 ? items : undefined;
}

/** The validated connection config; a bad flag or variable is a usage error naming it. */
export function connectionConfig(flags: ConnectionFlags, env: Readonly<Record<string, string | undefined>>): Parsed<NatsConnectionConfig> {
  const servers = flags.server !== undefined && flags.server.length > 0 ? flags.server.flatMap((s) => list(s) ?? []) : list(env['ALLOT_NATS_SERVERS']);
  const timeoutText = flags.timeout ?? nonEmpty(env['ALLOT_NATS_REQUEST_TIMEOUT_MS']);
  let requestTimeoutMs: number | undefined;
  if (timeoutText !== undefined) {
    if (!/^\d+$/.test(timeoutText.trim())) return usageProblem(`--timeout: "${timeoutText}" is not a whole number of milliseconds`);
    requestTimeoutMs = Number(timeoutText.trim());
  }
  const tlsCa = flags['tls-ca'] ?? nonEmpty(env['ALLOT_NATS_TLS_CA']);
  const tlsCert = flags['tls-cert'] ?? nonEmpty(env['ALLOT_NATS_TLS_CERT']);
  const tlsKey = flags['tls-key'] ?? nonEmpty(env['ALLOT_NATS_TLS_KEY']);
  // Credentials from flags replace those from the environment as a whole, so a --token on the command line does not
  // collide with an ALLOT_NATS_USER left in the shell.
  const flagAuth = flags.user ?? flags.password ?? flags.token ?? flags.creds ?? flags['nkey-seed-file'];
  const auth =
    flagAuth !== undefined
      ? { user: flags.user, password: flags.password, token: flags.token, credsFile: flags.creds, nkeySeedFile: flags['nkey-seed-file'] }
      : {
          user: nonEmpty(env['ALLOT_NATS_USER']),
          password: nonEmpty(env['ALLOT_NATS_PASSWORD']),
          token: nonEmpty(env['ALLOT_NATS_TOKEN']),
          credsFile: nonEmpty(env['ALLOT_NATS_CREDS']),
          nkeySeedFile: nonEmpty(env['ALLOT_NATS_NKEY_SEED_FILE']),
        };
  const raw = {
    servers,
    name: 'allot-cli',
    ...Object.fromEntries(Object.entries(auth).filter(([, v]) => v !== undefined)),
    tls: tlsCa ?? tlsCert ?? tlsKey ? { caFile: tlsCa, certFile: tlsCert, keyFile: tlsKey } : undefined,
    requestTimeoutMs,
  };
  const parsed = NatsConnectionConfigSchema.safeParse(raw);
  if (!parsed.success) return usageProblem(`connection: ${formatIssues(parsed.error).join('; ')}`);
  return parsedOk(parsed.data);
}
