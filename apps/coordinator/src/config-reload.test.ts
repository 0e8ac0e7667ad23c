import { describeReload } from '@allot/nats';
import { describe, expect, it } from 'vitest';
import { CoordinatorConfigSchema } from './config.ts';
import { planCoordinatorReload } from './config-reload.ts';

describe('planning a coordinator configuration reload', () => {
  it('applies the log level and names every other changed key as needing a restart, keeping its running value', () => {
    const current = CoordinatorConfigSchema.parse({ coordinatorId: 'c1' });
    const next = CoordinatorConfigSchema.parse({ coordinatorId: 'c2', logLevel: 'debug', liveness: { lostAfterMs: 30_000 } });
    const plan = planCoordinatorReload(current, next);
    expect(plan.applied).toEqual(['logLevel']);
    expect(plan.ignored).toEqual([
      { key: 'coordinatorId', reason: 'needs a restart' },
      { key: 'liveness.lostAfterMs', reason: 'needs a restart' },
    ]);
    expect(plan.config).toEqual({ ...current, logLevel: 'debug' });
    expect(describeReload(plan)).toBe(
      'configuration reloaded: applied logLevel; ignored coordinatorId (needs a restart), liveness.lostAfterMs (needs a restart)',
    );
  });
});
