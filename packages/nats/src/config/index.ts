/** Loading a process's configuration: a JSON file, ALLOT_* variables, a strict schema, the production rule. */
export { loadProcessConfig, formatConfigProblems, type ConfigProblem, type LoadProcessConfigInput, type PrepareContext } from './load.ts';
export { NATS_ENV_BINDINGS, readEnv, type EnvBinding, type EnvKind, type EnvValue } from './env.ts';
export { transportSecurityProblem, hasCredentials, usesTls } from './transport-security.ts';
export { parseKeyValues } from './key-values.ts';
export { Provenance } from './provenance.ts';
export {
  planConfigReload,
  describeReload,
  applyReloadLogLevel,
  type LevelledLogger,
  type IgnoredChange,
  type ReloadPlan,
  type ReloadRules,
} from './reload.ts';
