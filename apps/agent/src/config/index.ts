/** The agent's configuration: a JSON file plus ALLOT_* environment variables, validated at start-up. */
export { loadAgentConfig, formatConfigProblems, AGENT_DEFAULT_CONFIG, type AgentConfigProblem, type LoadAgentConfigInput } from './load.ts';
export {
  AgentConfigSchema,
  AgentCpuConfigSchema,
  AgentMemoryConfigSchema,
  AgentResourceConfigSchema,
  SimulatedHostSchema,
  LOG_LEVELS,
  type AgentConfig,
  type AgentConfigInput,
  type SimulatedHost,
} from './schema.ts';
export { ENV_BINDINGS, AGENT_ENV_BINDINGS } from './env.ts';
export type { EnvBinding } from '@allot/nats';
export { nodeIdFromHostname } from './node-id.ts';
export { resolveHostLimits, type ProbedHost } from './host-limits.ts';
export { planAgentReload, describeReload, RELOADABLE_AGENT_KEYS, type ReloadPlan, type IgnoredChange } from './reload.ts';
