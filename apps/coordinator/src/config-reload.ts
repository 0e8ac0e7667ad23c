import { planConfigReload, type ReloadPlan } from '@allot/nats';
import type { CoordinatorConfig } from './config.ts';

/**
 * What a SIGHUP may change in a running coordinator: the log level. The liveness, place, reconcile and sweep settings
 * are captured by the view and the loops at start, and every coordinator of a cluster must judge nodes alike, so a
 * change to them waits for a (rolling) restart, as do its identity, NATS connection and listeners.
 */
export const RELOADABLE_COORDINATOR_KEYS = ['logLevel'] as const;

export function planCoordinatorReload(current: CoordinatorConfig, next: CoordinatorConfig): ReloadPlan<CoordinatorConfig> {
  return planConfigReload(current, next, { reloadable: RELOADABLE_COORDINATOR_KEYS, reasonFor: () => 'needs a restart' });
}
