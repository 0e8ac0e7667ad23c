/**
 * Scenario 9's verdict on hand-made ledgers (no engine): a moved VM live on both hosts, on the source after a confirmed
 * move, or nowhere each fail, so a passing run is evidence.
 */
import type { Allocation } from '@allot/core';
import { describe, expect, it } from 'vitest';
import type { LedgerReplay } from './auditor.ts';
import { MigrationRun, type MovedVm } from './migration.ts';

function ledger(nodeId: string, requestIds: string[]): LedgerReplay {
  const live = new Map<string, Allocation>(
    requestIds.map((requestId, i) => [`${nodeId}:${i}`, { id: `${nodeId}:${i}`, requestId } as Allocation]),
  );
  return { nodeId, live } as LedgerReplay;
}

/** vm0 placed on a1 and moved (confirmed) to a2 as mv0-dest. */
function run(vm: Partial<MovedVm> = {}): MigrationRun {
  const r = new MigrationRun('m');
  r.vms.push({
    placedAs: 'vm0',
    requestId: 'mv0-dest',
    allocationId: 'a2:0',
    nodeId: 'a2',
    unsure: [],
    chain: new Set(['vm0', 'mv0-dest']),
    ...vm,
  });
  return r;
}

describe('scenario 9 verdict', () => {
  it('passes a VM live once, where its last confirmed move put it', () => {
    expect(run().audit([ledger('a1', []), ledger('a2', ['mv0-dest'])]).ok).toBe(true);
  });

  it('fails a VM live on both the source and the destination', () => {
    const v = run().audit([ledger('a1', ['vm0']), ledger('a2', ['mv0-dest'])]);
    expect(v.ok).toBe(false);
    expect(v.problems[0]).toMatch(/live 2 times/);
  });

  it('fails a confirmed move whose VM is still (only) on the source, and a VM on no host', () => {
    expect(run().audit([ledger('a1', ['vm0']), ledger('a2', [])]).problems[0]).toMatch(/expected mv0-dest@a2/);
    expect(run().audit([ledger('a1', []), ledger('a2', [])]).problems[0]).toMatch(/live 0 times/);
  });

  it('accepts either end of a settlement that never got an answer, not both', () => {
    const unsure = { requestId: 'vm0', nodeId: 'a1', unsure: [{ requestId: 'mv0-dest', nodeId: 'a2' }] };
    expect(run(unsure).audit([ledger('a1', ['vm0']), ledger('a2', [])]).ok).toBe(true);
    expect(run(unsure).audit([ledger('a1', []), ledger('a2', ['mv0-dest'])]).ok).toBe(true);
    expect(run(unsure).audit([ledger('a1', ['vm0']), ledger('a2', ['mv0-dest'])]).ok).toBe(false);
  });

  it('fails when the mover placed nothing (a verdict over no VM proves nothing)', () => {
    expect(new MigrationRun('m').audit([]).ok).toBe(false);
  });
});
