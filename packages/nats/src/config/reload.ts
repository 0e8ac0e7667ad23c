import { isDeepStrictEqual } from 'node:util';

export interface IgnoredChange {
  /** A dotted key, `stateDir` or `nats.servers`. */
  readonly key: string;
  readonly reason: string;
}

export interface ReloadPlan<C> {
  /** Dotted keys that changed and are applied in place. */
  readonly applied: readonly string[];
  /** Dotted keys that changed but keep their running value until a restart. */
  readonly ignored: readonly IgnoredChange[];
  /** The configuration the process runs with afterwards: `current` with only the reloadable keys taken from `next`. */
  readonly config: C;
}

export interface ReloadRules<C> {
  /** Top-level keys a running process can take in place. */
  readonly reloadable: readonly (keyof C & string)[];
  /** Why a changed top-level key waits for a restart. */
  readonly reasonFor: (key: string) => string;
}

/**
 * Compares the running configuration with a freshly loaded (already validated) one, for a reload on SIGHUP. Reloadable
 * keys are taken from `next`; every other changed key is reported with its reason and keeps its running value, so it
 * is reported again at the next reload until the process restarts. Keys are sorted, leaves of plain objects named.
 */
export function planConfigReload<C extends object>(current: C, next: C, rules: ReloadRules<C>): ReloadPlan<C> {
  const applied: string[] = [];
  const ignored: IgnoredChange[] = [];
  const reloadable = new Set<string>(rules.reloadable);
  const config: Record<string, unknown> = { ...(current as Record<string, unknown>) };
  const cur = current as Record<string, unknown>;
  const nxt = next as Record<string, unknown>;
  for (const key of [...new Set([...Object.keys(cur), ...Object.keys(nxt)])].sort()) {
    const changed = changedPaths(cur[key], nxt[key], key);
    if (changed.length === 0) continue;
    if (reloadable.has(key)) {
      applied.push(...changed);
      config[key] = nxt[key];
    } else {
      ignored.push(...changed.map((path) => ({ key: path, reason: rules.reasonFor(key) })));
    }
  }
  return { applied, ignored, config: config as C };
}

/** The one log line of a reload: each applied key, and each ignored one with its reason. */
export function describeReload(plan: ReloadPlan<unknown>): string {
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

/** The part of a pino logger a reload needs (the root logger: its children follow its level). */
export interface LevelledLogger {
  level: string;
  readonly levels: { readonly values: Readonly<Record<string, number>> };
  info(obj: object, msg: string): void;
}

/**
 * Sets the reloaded log level and writes the reload's one line under the more verbose of the two levels, so that a
 * change either way (info to error, or error to info) is confirmed in the log.
 */
export function applyReloadLogLevel(log: LevelledLogger, level: string, plan: ReloadPlan<unknown>): void {
  const report = () => log.info({ applied: plan.applied, ignored: plan.ignored }, describeReload(plan));
  const rank = (l: string) => log.levels.values[l] ?? Number.POSITIVE_INFINITY; // 'silent' has no value
  const quieter = rank(level) > rank(log.level);
  if (quieter) report();
  log.level = level;
  if (!quieter) report();
}
