import { formatIssues, NatsConnectionConfigSchema, type NatsConnectionConfig } from '@allot/core';
import { parsedOk, usageProblem, type Parsed } from './args.ts';
import { readNatsContext } from './nats-context.ts';

/**
 * How the CLI reaches NATS: the same keys as the agent's and the coordinator's `nats` config. Each setting comes from
 * its flag, else the same ALLOT_NATS_* variable the agent reads, else NATS_URL (servers), else the `nats` CLI's context
 * (--context, NATS_CONTEXT or the selected one), else the default nats://127.0.0.1:4222. Secrets are never flags
 * (a command line sits in the shell history and in `ps`): a password or token comes from the environment or a
 * context file, keys from files.
 */
export const CONNECTION_OPTIONS = {
  server: { type: 'string', short: 's', multiple: true },
  context: { type: 'string' },
  user: { type: 'string' },
  creds: { type: 'string' },
  'nkey-seed-file': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  timeout: { type: 'string' },
} as const;

export const CONNECTION_HELP = `Connection (flags win over ALLOT_NATS_*, then NATS_URL, then the nats CLI's context):
  -s, --server <url>        NATS server, repeatable; env ALLOT_NATS_SERVERS or NATS_URL (comma-separated); default nats://127.0.0.1:4222
      --context <name>      a nats CLI context (~/.config/nats/context/<name>.json); env NATS_CONTEXT; default the selected one
      --creds <file>        env ALLOT_NATS_CREDS         --nkey-seed-file <f>  env ALLOT_NATS_NKEY_SEED_FILE
      --user <u>            env ALLOT_NATS_USER, the password only from env ALLOT_NATS_PASSWORD (or the context); a token from env ALLOT_NATS_TOKEN
      --tls-ca/--tls-cert/--tls-key <file>  env ALLOT_NATS_TLS_CA / _CERT / _KEY
      --timeout <ms>        request timeout; env ALLOT_NATS_REQUEST_TIMEOUT_MS; default 5000
      --json                print the raw reply value as JSON (for scripts)
  -h, --help                this help`;

export interface ConnectionFlags {
  server?: string[] | undefined;
  context?: string | undefined;
  user?: string | undefined;
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

type Auth = {
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  credsFile?: string | undefined;
  nkeySeedFile?: string | undefined;
};

function anySet(auth: Auth): boolean {
  return Object.values(auth).some((v) => v !== undefined);
}

/** The validated connection config; a bad flag, variable or context is a usage error naming it. */
export function connectionConfig(
  flags: ConnectionFlags,
  env: Readonly<Record<string, string | undefined>>,
  readFile?: (path: string) => string,
): Parsed<NatsConnectionConfig> {
  const context = readNatsContext(nonEmpty(flags.context), env, readFile);
  if (!context.ok) return usageProblem(`connection: ${context.problem}`);
  const ctx = context.value;
  const servers =
    flags.server !== undefined && flags.server.length > 0
      ? flags.server.flatMap((s) => list(s) ?? [])
      : (list(env['ALLOT_NATS_SERVERS']) ?? list(env['NATS_URL']) ?? ctx?.servers);
  const timeoutText = flags.timeout ?? nonEmpty(env['ALLOT_NATS_REQUEST_TIMEOUT_MS']);
  let requestTimeoutMs: number | undefined;
  if (timeoutText !== undefined) {
    if (!/^\d+$/.test(timeoutText.trim())) return usageProblem(`--timeout: "${timeoutText}" is not a whole number of milliseconds`);
    requestTimeoutMs = Number(timeoutText.trim());
  }
  const tlsCa = flags['tls-ca'] ?? nonEmpty(env['ALLOT_NATS_TLS_CA']) ?? ctx?.caFile;
  const tlsCert = flags['tls-cert'] ?? nonEmpty(env['ALLOT_NATS_TLS_CERT']) ?? ctx?.certFile;
  const tlsKey = flags['tls-key'] ?? nonEmpty(env['ALLOT_NATS_TLS_KEY']) ?? ctx?.keyFile;
  // Credentials come whole from one place, flags, then the environment, then the context, so a --creds on the command
  // line does not collide with an ALLOT_NATS_USER left in the shell or a password in the context.
  const fromFlags: Auth = {
    user: flags.user,
    password: flags.user === undefined ? undefined : nonEmpty(env['ALLOT_NATS_PASSWORD']),
    credsFile: flags.creds,
    nkeySeedFile: flags['nkey-seed-file'],
  };
  const fromEnv: Auth = {
    user: nonEmpty(env['ALLOT_NATS_USER']),
    password: nonEmpty(env['ALLOT_NATS_PASSWORD']),
    token: nonEmpty(env['ALLOT_NATS_TOKEN']),
    credsFile: nonEmpty(env['ALLOT_NATS_CREDS']),
    nkeySeedFile: nonEmpty(env['ALLOT_NATS_NKEY_SEED_FILE']),
  };
  const fromContext: Auth = {
    user: ctx?.user,
    password: ctx?.password,
    token: ctx?.token,
    credsFile: ctx?.credsFile,
    nkeySeedFile: ctx?.nkeySeedFile,
  };
  const auth = anySet(fromFlags) ? fromFlags : anySet(fromEnv) ? fromEnv : fromContext;
  const raw = {
    servers,
    name: 'allot-cli',
    ...Object.fromEntries(Object.entries(auth).filter(([, v]) => v !== undefined)),
    tls:
      (tlsCa ?? tlsCert ?? tlsKey ?? ctx?.handshakeFirst) !== undefined
        ? { caFile: tlsCa, certFile: tlsCert, keyFile: tlsKey, handshakeFirst: ctx?.handshakeFirst }
        : undefined,
    requestTimeoutMs,
  };
  const parsed = NatsConnectionConfigSchema.safeParse(raw);
  if (!parsed.success)
    return usageProblem(
      `connection: ${formatIssues(parsed.error).join('; ')}${ctx === undefined ? '' : ` (context "${ctx.name}": ${ctx.file})`}`,
    );
  return parsedOk(parsed.data);
}
