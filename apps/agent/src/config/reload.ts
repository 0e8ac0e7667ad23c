import { isDeepStrictEqual } from 'node:util';
import type { AgentConfig } from './schema.ts';

/** What a SIGHUP may change in a running agent: none of them touches what is admitted or where anything lives. */
export const RELOADABLE_AGENT_KEYS = ['logLevel', 'labels', 'health'] as const;
export type ReloadableAgentKey = (typeof RELOADABLE_AGENT_KEYS)[number];

/** Limits change at run time through the agent's own verb (journaled), never by editing the file under a running agent. */
const LIMIT_KEYS = new Set(['memory', 'cpu', 'resources']);

export interface IgnoredChange {
  /** A dotted key, `stateDir` or `nats.servers`. */
  readonly key: string;
  readonly reason: string;
}

export interface ReloadPlan {
  /** Dotted keys that changed and are applied in place. */
  readonly applied: readonly string[];
  /** Dotted keys that changed but keep their running value until a restart. */
  readonly ignored: readonly IgnoredChange[];
  /** The configuration the agent runs with afterwards: `current` with only the reloadable keys taken from `next`. */
  readonly config: AgentConfig;
}

/**
 * Compares the running configuration with a freshly loaded (already validated) one. Reloadable keys are taken from
 * `next`; every other changed key is reported with why it waits for a restart, and keeps its running value, so it is
 * reported again at the next reload until the process restarts.
 */
export function planAgentReload(current: AgentConfig, next: AgentConfig): ReloadPlan {
  const applied: string[] = [];
  const ignored: IgnoredChange[] = [];
  const keys = [...new Set([...Object.keys(current), ...Object.keys(next)])].sort();
  for (const key of keys) {
    const changed = changedPaths((current as Record<string, unknown>)[key], (next as Record<string, unknown>)[key], key);
    if (changed.length === 0) continue;
    if ((RELOADABLE_AGENT_KEYS as readonly string[]).includes(key)) applied.push(...changed);
    else for (const path of changed) ignored.push({ key: path, reason: LIMIT_KEYS.has(key) ? 'limits change with `allot limits set` (or a restart)' : 'needs a restart' });
  }
  const config = { ...current, logLevel: next.logLevel, labels: next.labels, health: next.health };
  return { applied, ignored, config };
}

/** The one log line of a reload: each applied key, and each ignored one with its reason. */
export function describeReload(plan: ReloadPlan): string {
  const parts = [plan.applied.length === 0 ? 'nothing to apply' : `applied ${plan.applied.join(', ')}`];
  if (plan.ignored.length > 0) parts.push(`ignored ${plan.ignored.map((i) => `${i.key} (${i.reason})`).join(', ')}`);
  return `configuration reloaded: ${parts.join('; ')}`;
}

/** Dotted paths of the leaves that differ; plain objects are walked, arrays and values compare whole. */
function changedPaths(a: unknown, b: unknown, prefix: string): string[] {
  if (isDeepStrictEqual(a, b)) return [];
  if (!isPlainObject(a) || !isPlainObject(b)) return [prefix];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].sort().flatMap((key) => changedPaths(a[key], b[key], `${prefix}.${key}`));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
