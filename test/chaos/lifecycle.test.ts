/**
 * The lost-host verdict (HostLoss.audit) on hand-made ledgers, no containers: it fails on each history it exists to
 * catch (a VM left on the lost host and not reported given up, a VM live on two hosts, a released VM still live under
 * its move's request id) and passes the ones the scenario must allow (moved, given up).
 */
import type { Allocation } from '@allot/core';
import { describe, expect, it } from 'vitest';
import type { HostRecord } from '../../packages/managers/src/index.ts';
import { applyRecord, emptyReplay, type LedgerReplay } from './auditor.ts';
import type { OpRecord } from './clients.ts';
import { HostLoss } from './lifecycle.ts';

function allocation(nodeId: string, counter: number, requestId: string): Allocation {
  return {
    id: `${nodeId}:${counter}`,
    requestId,
    tenantId: 't0',
    nodeId,
    request: {
      requestId,
      tenantId: 't0',
      resources: { memoryMiB: 256, vcpus: 1 },
      priority: 0,
      cpu: { exclusive: false, numa: 'any' },
      metadata: {},
    },
    granted: { memoryMiB: 256, vcpus: 1 },
    cpu: null,
    status: 'active',
    priority: 0,
    createdAt: 1,
    updatedAt: 1,
    fence: 1,
  };
}

/** A node's replay holding one live allocation per request id given. */
function ledger(nodeId: string, requestIds: string[]): LedgerReplay {
  const out = emptyReplay(nodeId);
  requestIds.forEach((requestId, i) =>
    applyRecord(out, {
      kind: 'allocated',
      seq: i + 1,
      at: 1,
      allocation: allocation(nodeId, i + 1, requestId),
      idCounter: i + 1,
    } as HostRecord),
  );
  return out;
}

const place = (requestId: string, nodeId: string): OpRecord => ({
  kind: 'place',
  requestId,
  tenantId: 't0',
  startedAt: 0,
  endedAt: 0,
  replies: [],
  outcome: 'acked',
  nodeId,
  allocationId: `${nodeId}:1`,
});
const release = (placementRequestId: string): OpRecord => ({
  kind: 'release',
  requestId: `rel-${placementRequestId}`,
  placementRequestId,
  startedAt: 0,
  endedAt: 0,
  replies: [],
  outcome: 'acked',
});

describe('chaos lifecycle: every acknowledged VM on exactly one live host or given up', () => {
  it('fails for a VM left on the lost host that the decommission did not report, passes once it is reported', () => {
    const loss = new HostLoss('a3');
    const ledgers = [ledger('a1', []), ledger('a3', ['vm1'])];
    const verdict = loss.audit([place('vm1', 'a3')], ledgers);
    expect(verdict.ok).toBe(false);
    expect(verdict.problems[0]).toContain('vm1: acknowledged on a3');
    loss.givenUp.add('vm1');
    expect(loss.audit([place('vm1', 'a3')], ledgers).ok).toBe(true);
  });

  it("passes for a VM moved off the lost host and live under its move's request id; fails when it is live twice", () => {
    const loss = new HostLoss('a3');
    loss.moved.set('vm1', { requestId: 'move-1', nodeId: 'a1' });
    expect(loss.audit([place('vm1', 'a3')], [ledger('a1', ['move-1']), ledger('a3', ['vm1'])]).ok).toBe(true);
    const twice = loss.audit([place('vm1', 'a3')], [ledger('a1', ['move-1']), ledger('a2', ['vm1']), ledger('a3', ['vm1'])]);
    expect(twice.ok).toBe(false);
    expect(twice.problems[0]).toContain('live on a2/a2:1, a1/a1:1');
  });

  it('fails for a VM released with an ok that still lives on under its move', () => {
    const loss = new HostLoss('a3');
    loss.moved.set('vm1', { requestId: 'move-1', nodeId: 'a1' });
    const verdict = loss.audit([place('vm1', 'a3'), release('vm1')], [ledger('a1', ['move-1']), ledger('a3', [])]);
    expect(verdict.ok).toBe(false);
    expect(verdict.problems[0]).toContain('released with an ok, still live');
  });

  it('fails with what the operator was refused (an evacuation or decommission that did not answer)', () => {
    const loss = new HostLoss('a3');
    loss.problems.push('node.decommission a3: timeout: no answer');
    expect(loss.audit([], [ledger('a1', [])]).ok).toBe(false);
  });
});
