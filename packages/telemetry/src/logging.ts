/**
 * The options every allot process gives pino, so that the agent and the coordinator log alike: JSON lines (what log
 * shippers and the test harness read) unless a person watches a terminal, and credentials redacted wherever they sit.
 * Returned as plain options (each app owns its pino dependency): `pino(loggerOptions(...))`.
 */

/** Keys whose values are secrets: NATS passwords, tokens, nkey seeds, JWTs, anything called a credential. */
export const REDACTED_KEYS = [
  'password',
  'pass',
  'token',
  'authToken',
  'nkeySeed',
  'seed',
  'jwt',
  'secret',
  'credentials',
  'authorization',
  'privateKey',
] as const;

/** How deep a secret is looked for: `nats.password` in a config, `err.details.nats.password` in an error. */
const REDACT_DEPTH = 5;

/** pino's redact paths for REDACTED_KEYS at the top level and under up to REDACT_DEPTH - 1 objects (any key). */
export const REDACT_PATHS: readonly string[] = REDACTED_KEYS.flatMap((key) =>
  Array.from({ length: REDACT_DEPTH }, (_, depth) => [...Array<string>(depth).fill('*'), key].join('.')),
);

export type LogFormat = 'json' | 'pretty';

export interface LoggerOptionsInput {
  readonly level: string;
  /** Bindings on every line (node, coordinator, pid): never concatenated into messages. */
  readonly base: Record<string, unknown>;
  readonly name?: string;
  /** Default: ALLOT_LOG_FORMAT (json or pretty), else pretty when stdout is a terminal. */
  readonly format?: LogFormat;
}

export interface PinoOptions {
  level: string;
  name?: string;
  base: Record<string, unknown>;
  redact: { paths: string[]; censor: string };
  transport?: { target: string; options: Record<string, unknown> };
}

/** The log format: ALLOT_LOG_FORMAT when it says json or pretty, else pretty on a terminal and JSON otherwise. */
export function logFormat(
  env: Readonly<Record<string, string | undefined>> = process.env,
  isTTY: boolean = process.stdout.isTTY === true,
): LogFormat {
  const asked = env['ALLOT_LOG_FORMAT'];
  if (asked === 'json' || asked === 'pretty') return asked;
  return isTTY ? 'pretty' : 'json';
}

export function loggerOptions(input: LoggerOptionsInput): PinoOptions {
  const options: PinoOptions = { level: input.level, base: input.base, redact: { paths: [...REDACT_PATHS], censor: '[redacted]' } };
  if (input.name !== undefined) options.name = input.name;
  if ((input.format ?? logFormat()) === 'pretty') {
    options.transport = { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } };
  }
  return options;
}
