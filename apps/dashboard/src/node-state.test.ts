import { describe, expect, it } from 'vitest';
import { stateOf } from './table.ts';

const healthy = { status: 'healthy' as const, reasons: [] };

describe('the state a node row shows', () => {
  it('puts the operator first, then liveness, then health, then draining', () => {
    expect(stateOf({ liveness: 'lost', lastSeen: 0, health: healthy, state: 'decommissioned' }, 60_000).label).toBe('decommissioned');
    expect(stateOf({ liveness: 'lost', lastSeen: 0, health: healthy, state: 'lost' }, 60_000)).toMatchObject({ label: 'lost', cls: 'bad' });
    expect(stateOf({ liveness: 'ready', lastSeen: 0, health: { status: 'degraded', reasons: ['disk'] }, state: 'draining' }, 0).label).toBe(
      'degraded',
    );
    expect(stateOf({ liveness: 'ready', lastSeen: 0, health: healthy, state: 'draining' }, 0)).toMatchObject({
      label: 'draining',
      cls: 'warn',
    });
    expect(stateOf({ liveness: 'ready', lastSeen: 0, health: healthy }, 0).label).toBe('healthy');
  });
});
