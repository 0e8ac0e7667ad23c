import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The fields of a `nats` CLI context that allot uses; the others (jetstream_domain, color_scheme...) are ignored. */
export interface NatsContext {
  readonly name: string;
  readonly file: string;
  readonly servers?: string[];
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly credsFile?: string;
  readonly nkeySeedFile?: string;
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly handshakeFirst?: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

/** `$XDG_CONFIG_HOME/nats`, else `~/.config/nats`, where the nats CLI keeps its contexts. */
function natsConfigDir(env: Env): string | undefined {
  const xdg = env['XDG_CONFIG_HOME']?.trim();
  if (xdg) return join(xdg, 'nats');
  const home = env['HOME']?.trim();
  return home ? join(home, '.config', 'nats') : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * The context named by `--context`, else NATS_CONTEXT, else the one selected in context.txt (`nats context select`);
 * undefined when none is named. A named context that cannot be read or parsed is a problem in words.
 */
export function readNatsContext(
  named: string | undefined,
  env: Env,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): { ok: true; value: NatsContext | undefined } | { ok: false; problem: string } {
  const dir = natsConfigDir(env);
  if (dir === undefined) return { ok: true, value: undefined };
  let name = named ?? text(env['NATS_CONTEXT']);
  if (name === undefined) {
    try {
      name = text(readFile(join(dir, 'context.txt')));
    } catch {
      return { ok: true, value: undefined };
    }
    if (name === undefined) return { ok: true, value: undefined };
  }
  if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) return { ok: false, problem: `context "${name}": not a context name` };
  const file = join(dir, 'context', `${name}.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFile(file));
  } catch (e) {
    return { ok: false, problem: `context "${name}": cannot read ${file}: ${(e as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { ok: false, problem: `context "${name}": ${file} is not a JSON object` };
  const c = raw as Record<string, unknown>;
  const url = text(c['url']);
  return {
    ok: true,
    value: defined({
      name,
      file,
      servers: url
        ?.split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
      user: text(c['user']),
      password: text(c['password']),
      token: text(c['token']),
      credsFile: text(c['creds']),
      nkeySeedFile: text(c['nkey']),
      caFile: text(c['ca']),
      certFile: text(c['cert']),
      keyFile: text(c['key']),
      handshakeFirst: c['tls_first'] === true ? true : undefined,
    }),
  };
}
