import { hostname as osHostname } from 'node:os';
import { loadProcessConfig, type ConfigProblem } from '@allot/nats';
import { exposedWithoutToken } from '@allot/telemetry';
import type { Result } from '@allot/core';
import { AGENT_ENV_BINDINGS } from './env.ts';
import { nodeIdFromHostname } from './node-id.ts';
import { AgentConfigSchema, type AgentConfig } from './schema.ts';

/** One thing wrong with the configuration: the key, why, and where the bad value came from. */
export type AgentConfigProblem = ConfigProblem;
export { formatConfigProblems } from '@allot/nats';

export interface LoadAgentConfigInput {
  /** Command-line arguments after the script (process.argv.slice(2)); only `--config <file>` is read here. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads the config file as text; may throw (a missing file is reported as a problem). */
  readonly readFile: (path: string) => string;
  /** For the default node id; defaults to os.hostname(). */
  readonly hostname?: string;
  /** Read when no --config or ALLOT_AGENT_CONFIG names a file, if it exists (the process passes AGENT_DEFAULT_CONFIG). */
  readonly defaultConfigFile?: string;
}

/** Where the Debian package installs the agent's config, read when no file is named. */
export const AGENT_DEFAULT_CONFIG = '/etc/allot/agent.json';

/**
 * The agent's configuration: the JSON file named by `--config <file>` (or ALLOT_AGENT_CONFIG), overridden key by key
 * by the ALLOT_* environment variables, validated by AgentConfigSchema (see @allot/nats loadProcessConfig, shared with
 * the coordinator). The node id defaults to the hostname; the state dir is required in production.
 */
export function loadAgentConfig(input: LoadAgentConfigInput): Result<AgentConfig> {
  return loadProcessConfig({
    schema: AgentConfigSchema,
    argv: input.argv,
    env: input.env,
    readFile: input.readFile,
    configFileVariable: 'ALLOT_AGENT_CONFIG',
    ...(input.defaultConfigFile === undefined ? {} : { defaultConfigFile: input.defaultConfigFile }),
    envBindings: AGENT_ENV_BINDINGS,
    prepare: ({ raw, provenance, problems, production }) => {
      if (raw.nodeId === undefined) {
        raw.nodeId = nodeIdFromHostname(input.hostname ?? osHostname());
        provenance.override(['nodeId'], 'hostname');
      }
      if (raw.stateDir === undefined) {
        if (production) {
          problems.push({
            path: 'stateDir',
            message: 'required in production: set stateDir in the config file or ALLOT_STATE_DIR',
            source: raw.production === true ? provenance.sourcesOf(['production']).join(', ') : 'NODE_ENV',
          });
        } else if (typeof raw.nodeId === 'string') {
          raw.stateDir = `./.allot/agent-${raw.nodeId}`;
        }
      }
      const exposed = production ? exposedWithoutToken(raw.http) : undefined;
      if (exposed !== undefined) {
        problems.push({
          path: 'http.tokenFile',
          message: `required in production when http.host (${exposed}) is not loopback: scrapers must send a bearer token`,
          source: provenance.sourcesOf(['http', 'host']).join(', '),
        });
      }
    },
  });
}
