import { err, ok, type NatsConnectionConfig, type Result } from '@allot/core';
import type { z } from 'zod';
import { NATS_ENV_BINDINGS, readEnv, type EnvBinding } from './env.ts';
import { isPlainObject, Provenance, setPath } from './provenance.ts';
import { transportSecurityProblem } from './transport-security.ts';

/** One thing wrong with a configuration: the key, why, and where the bad value came from. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
  /** A file path, an environment variable name, `--config`, `NODE_ENV` or `default`. */
  readonly source: string;
}

/** What `prepare` may look at and add to before the configuration is validated. */
export interface PrepareContext {
  /** The file and the variables merged, before defaults; prepare may fill derived defaults in. */
  readonly raw: Record<string, unknown>;
  readonly provenance: Provenance;
  readonly problems: ConfigProblem[];
  /** `production: true` in the file, or NODE_ENV=production. */
  readonly production: boolean;
}

export interface LoadProcessConfigInput<S extends z.ZodType<{ nats: NatsConnectionConfig }>> {
  /** A strict schema: unknown keys are refused at every level. */
  readonly schema: S;
  /** Command-line arguments after the script; only `--config <file>` / `--config=<file>` is read here. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads the config file as text; may throw (a missing file is reported as a problem). */
  readonly readFile: (path: string) => string;
  /** The variable naming the config file when there is no --config (ALLOT_AGENT_CONFIG). */
  readonly configFileVariable: string;
  /**
   * The file read when neither --config nor the variable names one, if it exists (/etc/allot/agent.json, as packages
   * install it): a packaged host runs `allot-agent` with no argument, as Nomad and the kubelet read their /etc file.
   */
  readonly defaultConfigFile?: string;
  /** The ALLOT_* variables this process reads besides NATS_ENV_BINDINGS' (which every process reads). */
  readonly envBindings: readonly EnvBinding[];
  /** Derived defaults that need the merged input (the agent's node id and state dir). */
  readonly prepare?: (context: PrepareContext) => void;
}

/**
 * A process's configuration: the JSON file named by `--config` (or the config-file variable), overridden key by key by
 * the ALLOT_* variables, validated by a strict schema, then held to the production rule (credentials and TLS, or
 * `nats.insecure: true`). On failure, invalid_request whose message lists every problem, one line each
 * (`config error: <key>: <reason> (from <source>)`), and details.problems. Pure apart from readFile.
 */
export function loadProcessConfig<S extends z.ZodType<{ nats: NatsConnectionConfig }>>(
  input: LoadProcessConfigInput<S>,
): Result<z.output<S>> {
  const problems: ConfigProblem[] = [];
  const provenance = new Provenance();
  const raw: Record<string, unknown> = {};

  const file = configFilePath(input.argv, input.env, input.configFileVariable);
  if (!file.ok) problems.push({ path: '--config', message: file.problem, source: 'argv' });
  else if (file.path === undefined && input.defaultConfigFile !== undefined) {
    const parsed = readConfigFile(input.readFile, input.defaultConfigFile);
    // Absent is fine (no file, defaults and variables only); present but unreadable or invalid is a problem.
    if (parsed.ok) {
      Object.assign(raw, parsed.value);
      provenance.recordTree(parsed.value, input.defaultConfigFile);
    } else if (!parsed.missing) problems.push({ path: '(file)', message: parsed.problem, source: input.defaultConfigFile });
  } else if (file.path !== undefined) {
    const parsed = readConfigFile(input.readFile, file.path);
    if (!parsed.ok) problems.push({ path: '(file)', message: parsed.problem, source: file.path });
    else {
      Object.assign(raw, parsed.value);
      provenance.recordTree(parsed.value, file.path);
    }
  }

  for (const value of readEnv([...NATS_ENV_BINDINGS, ...input.envBindings], input.env)) {
    if (!value.ok) {
      problems.push({ path: value.binding.path.join('.'), message: value.problem, source: value.binding.name });
      continue;
    }
    setPath(raw, value.binding.path, value.value);
    provenance.override(value.binding.path, value.binding.name);
  }

  const productionFromEnv = input.env.NODE_ENV === 'production';
  const production = raw.production === true || productionFromEnv;
  input.prepare?.({ raw, provenance, problems, production });

  const parsed = input.schema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // An unknown key is reported at the key itself, so the problem names it and only its own source.
      const found =
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((key) => ({ path: [...issue.path.map(String), key], message: 'unknown key' }))
          : [{ path: issue.path.map(String), message: issue.message }];
      for (const { path, message } of found) {
        const key = path.length ? path.join('.') : '(root)';
        // A key already reported before parsing (stateDir in production) is not reported twice.
        if (problems.some((p) => p.path === key)) continue;
        problems.push({ path: key, message, source: provenance.sourcesOf(path).join(', ') });
      }
    }
  } else {
    const insecure = transportSecurityProblem(parsed.data.nats, production);
    if (insecure !== undefined)
      problems.push({
        path: 'nats',
        message: insecure,
        source: raw.production === true ? provenance.sourcesOf(['production']).join(', ') : 'NODE_ENV',
      });
  }
  if (problems.length > 0 || !parsed.success) return err('invalid_request', formatConfigProblems(problems), { problems });
  return ok(parsed.data);
}

/** One line per problem, as a process prints them before it exits 2. */
export function formatConfigProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `config error: ${p.path}: ${p.message} (from ${p.source})`).join('\n');
}

/** `--config <file>` or `--config=<file>` wins over the variable; neither means no file (env and defaults only). */
function configFilePath(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  variable: string,
): { ok: true; path: string | undefined } | { ok: false; problem: string } {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg.startsWith('--config=')) {
      const path = arg.slice('--config='.length);
      return path === '' ? { ok: false, problem: 'needs a file path' } : { ok: true, path };
    }
    if (arg === '--config') {
      const path = argv[i + 1];
      return path === undefined || path === '' || path.startsWith('--') ? { ok: false, problem: 'needs a file path' } : { ok: true, path };
    }
  }
  const fromEnv = env[variable]?.trim();
  return { ok: true, path: fromEnv === '' ? undefined : fromEnv };
}

function readConfigFile(
  readFile: (path: string) => string,
  path: string,
): { ok: true; value: Record<string, unknown> } | { ok: false; problem: string; missing?: boolean } {
  let text: string;
  try {
    text = readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      ok: false,
      problem: `cannot read the config file${code ? ` (${code})` : ''}: ${(e as Error).message}`,
      missing: code === 'ENOENT',
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: `not valid JSON: ${(e as Error).message}` };
  }
  return isPlainObject(value) ? { ok: true, value } : { ok: false, problem: 'must be a JSON object' };
}
