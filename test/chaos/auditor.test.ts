/**
 * The auditor's new verdicts on hand-made ledgers (no containers): each one fails on the history it exists to catch,
 * so a chaos run that passes them means something.
 */
import type { Allocation } from '@allot/core';
import { describe, expect, it } from 'vitest';
import type { HostRecord } from '../../packages/managers/src/index.ts';
import { applyRecord, auditReservations, auditTenantLimits, emptyReplay, type LedgerReplay } from './auditor.ts';
import type { OpRecord } from './clients.ts';

function allocation(nodeId: string, counter: number, requestId: string, tenantId: string, at: number, expiresAt?: number): Allocation {
  return {
    id: `${nodeId}:${counter}`,
    requestId,
    tenantId,
    nodeId,
    request: {
      requestId,
      tenantId,
      resources: { memoryMiB: 256, vcpus: 1 },
      priority: 0,
      cpu: { exclusive: false, numa: 'any' },
      metadata: {},
    },
    granted: { memoryMiB: 256, vcpus: 1 },
    cpu: null,
    status: expiresAt === undefined ? 'active' : 'reserved',
    priority: 0,
    createdAt: at,
    updatedAt: at,
    ...(expiresAt === undefined ? {} : { expiresAt }),
    fence: 1,
  };
}

/** A HostRecord of any kind, without its seq. */
type Unnumbered = HostRecord extends infer R ? (R extends HostRecord ? Omit<R, 'seq'> : never) : never;

/** A node's replay from records given without seq (numbered here). */
function ledger(nodeId: string, records: Unnumbered[]): LedgerReplay {
  const out = emptyReplay(nodeId);
  records.forEach((r, i) => applyRecord(out, { ...r, seq: i + 1 } as HostRecord));
  return out;
}

function place(requestId: string, nodeId: string, allocationId: string, reservationTtlMs?: number): OpRecord {
  return {
    kind: 'place',
    requestId,
    tenantId: 't2',
    startedAt: 0,
    endedAt: 0,
    replies: [],
    outcome: 'acked',
    nodeId,
    allocationId,
    ...(reservationTtlMs === undefined ? {} : { reservationTtlMs }),
  };
}

describe('chaos auditor: tenant limits over the merged ledgers', () => {
  const limits = [{ tenantId: 't2', maxVms: 2 }];

  it('fails when a tenant holds more VMs than its maxVms at some instant, across nodes', () => {
    const a1 = ledger('a1', [
      { kind: 'allocated', at: 100, allocation: allocation('a1', 1, 'r1', 't2', 100), idCounter: 1 },
      { kind: 'allocated', at: 120, allocation: allocation('a1', 2, 'r3', 't2', 120), idCounter: 2 },
      { kind: 'released', at: 130, allocationId: 'a1:2', requestId: 'rel', reason: 'x' },
    ]);
    const a2 = ledger('a2', [{ kind: 'allocated', at: 110, allocation: allocation('a2', 1, 'r2', 't2', 110), idCounter: 1 }]);
    const v = auditTenantLimits([a1, a2], limits);
    expect(v.ok).toBe(false);
    expect(v.problems[0]).toContain('3 vms live at 120');
    // Each allocation live then is named with how it ended: an orphan the sweep released shows its reason.
    expect(v.problems[0]).toContain('a1:2 r3 since 120, released at 130: x');
    expect(v.problems[0]).toContain('a2:1 r2 since 110, still live at the end');
  });

  it('passes when a release on one node and a place on another land in the same millisecond', () => {
    const a1 = ledger('a1', [
      { kind: 'allocated', at: 100, allocation: allocation('a1', 1, 'r1', 't2', 100), idCounter: 1 },
      { kind: 'allocated', at: 120, allocation: allocation('a1', 2, 'r3', 't2', 120), idCounter: 2 },
    ]);
    const a2 = ledger('a2', [
      { kind: 'allocated', at: 110, allocation: allocation('a2', 1, 'r2', 't2', 110), idCounter: 1 },
      { kind: 'released', at: 120, allocationId: 'a2:1', requestId: 'rel', reason: 'x' },
    ]);
    expect(auditTenantLimits([a1, a2], limits)).toMatchObject({ ok: true, note: 't2 peak 2/2 VMs' });
  });

  it('counts an expired reservation as ended', () => {
    const a1 = ledger('a1', [
      { kind: 'reserved', at: 100, allocation: allocation('a1', 1, 'r1', 't2', 100, 200), idCounter: 1 },
      { kind: 'allocated', at: 150, allocation: allocation('a1', 2, 'r2', 't2', 150), idCounter: 2 },
      { kind: 'expired', at: 200, allocationId: 'a1:1', requestId: 'r1' },
      { kind: 'allocated', at: 210, allocation: allocation('a1', 3, 'r3', 't2', 210), idCounter: 3 },
    ]);
    expect(auditTenantLimits([a1], limits).ok).toBe(true);
  });
});

describe('chaos auditor: reservations end at their expiry', () => {
  const reserved = { kind: 'reserved' as const, at: 100, allocation: allocation('a1', 1, 'r1', 't2', 100, 3_100), idCounter: 1 };
  const ops = [place('r1', 'a1', 'a1:1', 3_000)];

  it('passes an unactivated reservation that expired at its expiresAt', () => {
    const v = auditReservations(ops, [ledger('a1', [reserved, { kind: 'expired', at: 3_100, allocationId: 'a1:1', requestId: 'r1' }])], []);
    expect(v.ok).toBe(true);
  });

  it('fails an unactivated reservation that was released instead of expiring', () => {
    const v = auditReservations(
      ops,
      [ledger('a1', [reserved, { kind: 'released', at: 2_000, allocationId: 'a1:1', requestId: 'sweep:a1:1', reason: 'orphan' }])],
      [],
    );
    expect(v.problems).toEqual([expect.stringContaining('no expired record (released instead)')]);
  });

  it('fails a reservation that expired before its expiresAt', () => {
    const v = auditReservations(ops, [ledger('a1', [reserved, { kind: 'expired', at: 3_000, allocationId: 'a1:1', requestId: 'r1' }])], []);
    expect(v.problems).toEqual([expect.stringContaining('100 ms before its expiresAt')]);
  });

  it('fails a reservation activated after its expiresAt', () => {
    const activate: OpRecord = {
      kind: 'activate',
      requestId: 'r1-act',
      placementRequestId: 'r1',
      startedAt: 0,
      endedAt: 0,
      replies: [],
      outcome: 'acked',
    };
    const v = auditReservations(
      [...ops, activate],
      [ledger('a1', [reserved, { kind: 'activated', at: 3_500, allocationId: 'a1:1', requestId: 'r1-act' }])],
      [],
    );
    expect(v.problems).toEqual([expect.stringContaining('400 ms after its expiresAt')]);
  });

  it('fails an acknowledged reservation its node never held, and one listed live past its expiry', () => {
    const v = auditReservations(
      [place('r9', 'a1', 'a1:9', 3_000)],
      [ledger('a1', [])],
      ['a1/a1:9 (r9) listed reserved 5000 ms after its expiresAt'],
    );
    expect(v.ok).toBe(false);
    expect(v.problems).toHaveLength(2);
  });
});
