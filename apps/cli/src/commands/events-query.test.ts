import { DeliverPolicy } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { matches, parseInstant, pastUntil, startOf } from './events-query.ts';

const NOW = Date.parse('2026-11-30T12:00:00Z');

describe('allot events query', () => {
  it('reads relative and ISO instants, and nothing else', () => {
    expect(parseInstant('10m', NOW)).toBe(NOW - 600_000);
    expect(parseInstant('2h', NOW)).toBe(NOW - 7_200_000);
    expect(parseInstant('30s', NOW)).toBe(NOW - 30_000);
    expect(parseInstant('7d', NOW)).toBe(NOW - 7 * 86_400_000);
    expect(parseInstant('2026-11-30T11:00:00Z', NOW)).toBe(NOW - 3_600_000);
    expect(parseInstant('2026-11-30', NOW)).toBe(Date.parse('2026-11-30'));
    for (const bad of ['1', '10', '10x', '-10m', 'yesterday', '2026-13-45', '']) expect(parseInstant(bad, NOW), bad).toBeUndefined();
  });

  it('starts the consumer after the cursor, else at the time, else at the beginning', () => {
    expect(startOf({ limit: 10, afterSeq: 41, since: NOW })).toEqual({ deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 42 });
    expect(startOf({ limit: 10, since: NOW })).toEqual({
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: '2026-11-30T12:00:00.000Z',
    });
    expect(startOf({ limit: 10 })).toEqual({ deliver_policy: DeliverPolicy.All });
  });

  it('matches tenant and request id from the payload, and stops after until', () => {
    const e = { kind: 'allocated' as const, nodeId: 'n1', at: NOW, tenantId: 'acme', requestId: 'vm-1' };
    expect(matches(e, { limit: 1, tenantId: 'acme', requestId: 'vm-1' })).toBe(true);
    expect(matches(e, { limit: 1, tenantId: 'other' })).toBe(false);
    expect(matches(e, { limit: 1, requestId: 'vm-2' })).toBe(false);
    expect(matches({ kind: 'node_lost', nodeId: 'cluster', at: NOW }, { limit: 1, tenantId: 'acme' })).toBe(false);
    expect(pastUntil(NOW + 1, { limit: 1, until: NOW })).toBe(true);
    expect(pastUntil(NOW, { limit: 1, until: NOW })).toBe(false);
    expect(pastUntil(NOW + 1, { limit: 1 })).toBe(false);
  });
});
