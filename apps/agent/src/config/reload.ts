import { planConfigReload, type ReloadPlan } from '@allot/nats';
import type { AgentConfig } from './schema.ts';

/** What a SIGHUP may change in a running agent: none of them touches what is admitted or where anything lives. */
export const RELOADABLE_AGENT_KEYS = ['logLevel', 'labels', 'health'] as const;

/** Limits change at run time through the agent's own verb (journaled), never by editing the file under a running agent. */
const LIMIT_KEYS = new Set(['memory', 'cpu', 'resources']);

/**
 * The agent's reload (main.ts, on SIGHUP): the log level, labels and health thresholds are applied in place; every
 * other changed key (nodeId, stateDir, nats, http, the limits, ...) is reported as ignored with why.
 */
export function planAgentReload(current: AgentConfig, next: AgentConfig): ReloadPlan<AgentConfig> {
  return planConfigReload(current, next, {
    reloadable: RELOADABLE_AGENT_KEYS,
    reasonFor: (key) => (LIMIT_KEYS.has(key) ? 'limits change with `allot limits set` (or a restart)' : 'needs a restart'),
  });
}

export { describeReload, type IgnoredChange, type ReloadPlan } from '@allot/nats';
