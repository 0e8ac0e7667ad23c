import { hostname as osHostname } from 'node:os';
import { err, ok, type Result } from '@allot/core';
import { readEnv } from './env.ts';
import { nodeIdFromHostname } from './node-id.ts';
import { isPlainObject, Provenance, setPath } from './provenance.ts';
import { AgentConfigSchema, type AgentConfig } from './schema.ts';

/** One thing wrong with the configuration: the key, why, and where the bad value came from. */
export interface AgentConfigProblem {
  readonly path: string;
  readonly message: string;
  /** A file path, an environment variable name, `--config`, or `default`. */
  readonly source: string;
}

export interface LoadAgentConfigInput {
  /** Command-line arguments after the script (process.argv.slice(2)); only `--config <file>` is read here. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads the config file as text; may throw (a missing file is reported as a problem). */
  readonly readFile: (path: string) => string;
  /** For the default node id; defaults to os.hostname(). */
  readonly hostname?: string;
}

/**
 * The agent's configuration: the JSON file named by `--config <file>` (or ALLOT_AGENT_CONFIG), overridden key by key
 * by the ALLOT_* environment variables, validated by AgentConfigSchema. On failure, invalid_request whose message
 * lists every problem, one line each (`config error: <key>: <reason> (from <source>)`), and details.problems.
 * Pure apart from readFile.
 */
export function loadAgentConfig(input: LoadAgentConfigInput): Result<AgentConfig> {
  const problems: AgentConfigProblem[] = [];
  const provenance = new Provenance();
  const raw: Record<string, unknown> = {};

  const file = configFilePath(input.argv, input.env);
  if (!file.ok) problems.push({ path: '--config', message: file.problem, source: 'argv' });
  else if (file.path !== undefined) {
    const parsed = readConfigFile(input.readFile, file.path);
    if (!parsed.ok) problems.push({ path: '(file)', message: parsed.problem, source: file.path });
    else {
      Object.assign(raw, parsed.value);
      provenance.recordTree(parsed.value, file.path);
    }
  }

  for (const value of readEnv(input.env)) {
    if (!value.ok) {
      problems.push({ path: value.binding.path.join('.'), message: value.problem, source: value.binding.name });
      continue;
    }
    setPath(raw, value.binding.path, value.value);
    provenance.override(value.binding.path, value.binding.name);
  }

  if (raw.nodeId === undefined) {
    raw.nodeId = nodeIdFromHostname(input.hostname ?? osHostname());
    provenance.override(['nodeId'], 'hostname');
  }
  if (raw.stateDir === undefined) {
    if (input.env.NODE_ENV === 'production') {
      problems.push({ path: 'stateDir', message: 'required in production: set stateDir in the config file or ALLOT_STATE_DIR', source: 'NODE_ENV' });
    } else if (typeof raw.nodeId === 'string') {
      raw.stateDir = `./.allot/agent-${raw.nodeId}`;
    }
  }

  const parsed = AgentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // An unknown key is reported at the key itself, so the problem names it and only its own source.
      const found = issue.code === 'unrecognized_keys' ? issue.keys.map((key) => ({ path: [...issue.path.map(String), key], message: 'unknown key' })) : [{ path: issue.path.map(String), message: issue.message }];
      for (const { path, message } of found) {
        const key = path.length ? path.join('.') : '(root)';
        // A key already reported before parsing (stateDir in production) is not reported twice.
        if (problems.some((p) => p.path === key)) continue;
        problems.push({ path: key, message, source: provenance.sourcesOf(path).join(', ') });
      }
    }
  }
  if (problems.length > 0 || !parsed.success) {
    return err('invalid_request', formatConfigProblems(problems), { problems });
  }
  return ok(parsed.data);
}

/** One line per problem, as the agent prints them before it exits. */
export function formatConfigProblems(problems: readonly AgentConfigProblem[]): string {
  return problems.map((p) => `config error: ${p.path}: ${p.message} (from ${p.source})`).join('\n');
}

/** `--config <file>` or `--config=<file>` wins over ALLOT_AGENT_CONFIG; neither means no file (env and defaults only). */
function configFilePath(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): { ok: true; path: string | undefined } | { ok: false; problem: string } {
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
  const fromEnv = env.ALLOT_AGENT_CONFIG?.trim();
  return { ok: true, path: fromEnv === '' ? undefined : fromEnv };
}

function readConfigFile(readFile: (path: string) => string, path: string): { ok: true; value: Record<string, unknown> } | { ok: false; problem: string } {
  let text: string;
  try {
    text = readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, problem: `cannot read the config file${code ? ` (${code})` : ''}: ${(e as Error).message}` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: `not valid JSON: ${(e as Error).message}` };
  }
  return isPlainObject(value) ? { ok: true, value } : { ok: false, problem: 'must be a JSON object' };
}
