import type { Allocation } from '@allot/core';
import type { Move } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { NOW, sampleAllocation } from '../testing/samples.ts';
import { formatCpuset, renderAllocationTable, renderAudit, renderEvacuation, renderMoveTable } from './allocations.ts';
import { renderRemaining } from './nodes.ts';

const pinned: Allocation = {
  ...sampleAllocation('vm-big', 'local'),
  granted: { memoryMiB: 16_384, vcpus: 4 },
  cpu: { mode: 'exclusive', vcpus: 4, cpuset: [8, 9, 10, 11], numaNodes: [1], numaFallback: false, policy: 'first-fit' },
  status: 'reserved',
  createdAt: NOW - 3 * 3600_000,
  expiresAt: NOW + 60_000,
};

describe('lists of allocations, kubectl-style', () => {
  it('prints one aligned row per allocation, with the pinned cores only when one is exclusive', () => {
    const lines = renderAllocationTable([sampleAllocation('vm-1'), pinned], { now: NOW + 45_000 }).split('\n');
    expect(lines).toEqual([
      'ID              TENANT  REQUEST  NODE       MEMORY  VCPUS  CPUS  STATUS    AGE',
      'sim-large:vm-1  demo    vm-1     sim-large   2 GiB      2  -     active    45s',
      'local:vm-big    demo    vm-big   local      16 GiB      4  8-11  reserved   3h',
    ]);
    // Shared only: no CPUS column at all.
    expect(renderAllocationTable([sampleAllocation('vm-1')], { now: NOW }).split('\n')[0]).toBe(
      'ID              TENANT  REQUEST  NODE       MEMORY  VCPUS  STATUS  AGE',
    );
  });

  it('-o wide adds priority, NUMA nodes and the expiry', () => {
    const lines = renderAllocationTable([pinned], { now: NOW, wide: true }).split('\n');
    expect(lines[0]).toMatch(/STATUS\s+AGE\s+PRIORITY\s+NUMA\s+EXPIRES$/);
    expect(lines[1]).toMatch(/reserved\s+3h\s+0\s+1\s+2025-06-15T15:07:40\.000Z$/);
  });

  it('says how many the reply left out', () => {
    const text = renderAllocationTable([sampleAllocation('vm-1'), sampleAllocation('vm-2')], { now: NOW, total: 1200 });
    expect(text.split('\n')).toHaveLength(4);
    expect(text.split('\n').at(-1)).toBe('... and 1198 more allocations not shown (2 of 1200 listed)');
  });

  it('drain and decommission list what remains as the same table, nothing when nothing remains', () => {
    expect(renderRemaining([], 0, NOW)).toEqual([]);
    const [table] = renderRemaining([sampleAllocation('vm-1'), sampleAllocation('vm-2')], 2, NOW);
    expect(table?.split('\n').map((l) => l.split(/\s+/)[0])).toEqual(['ID', 'sim-large:vm-1', 'sim-large:vm-2']);
  });

  it('writes cores as ranges', () => {
    expect(formatCpuset([3, 0, 1, 2, 8, 10, 11])).toBe('0-3,8,10-11');
    expect(formatCpuset([])).toBe('-');
  });
});

function move(id: string, state: Move['state'], sourceReleased?: boolean): Move {
  const allocation = { ...sampleAllocation(`${id}-dst`, 'local'), status: state === 'held' ? ('reserved' as const) : ('active' as const) };
  return {
    moveRequestId: id,
    tenantId: 'demo',
    state,
    source: { allocationId: `sim-large:${id}`, requestId: id, nodeId: 'sim-large' },
    destination: { requestId: `${id}-dst`, nodeId: 'local', allocation },
    ...(sourceReleased === undefined ? {} : { sourceReleased }),
  };
}

describe('plans of moves and the audit, as tables', () => {
  it('prints one row per move and one per VM not placed', () => {
    const text = renderEvacuation({
      nodeId: 'sim-large',
      requestId: 'ev-1',
      moves: [move('mv-1', 'held'), move('mv-22', 'confirmed')],
      movesCount: 3,
      unplaced: [
        {
          requestId: 'vm-9',
          tenantId: 'acme',
          allocationId: 'sim-large:9',
          error: { code: 'insufficient_capacity', message: '0/2 nodes are available: 2 Insufficient memory.' },
        },
      ],
      unplacedCount: 1,
    });
    expect(text.split('\n')).toEqual([
      'evacuate sim-large (request ev-1): 3 moves, 1 not placed',
      '',
      'STATE      ALLOCATION       TENANT  FROM       TO     HELD AS                    MOVE',
      'held       sim-large:mv-1   demo    sim-large  local  local:mv-1-dst (reserved)  mv-1',
      'confirmed  sim-large:mv-22  demo    sim-large  local  local:mv-22-dst (active)   mv-22',
      '... and 1 more moves not shown (2 of 3 listed)',
      '',
      'NOT PLACED   TENANT  WHY',
      'sim-large:9  acme    0/2 nodes are available: 2 Insufficient memory.',
      '',
      'Confirm each once the VM runs on its destination: allot move confirm <allocationId> --tenant <t> --request-id <move>',
    ]);
  });

  it('says under the table when a confirmed move left its source to the sweep', () => {
    expect(
      renderMoveTable([move('mv-1', 'confirmed', false)])
        .split('\n')
        .at(-1),
    ).toBe('sim-large:mv-1: the source node did not answer its release: the sweep releases it');
  });

  it('prints one row per discrepancy', () => {
    const text = renderAudit({
      discrepancies: [
        {
          kind: 'orphan',
          nodeId: 'b',
          allocationId: 'b:7',
          requestId: 'vm-1',
          tenantId: 'acme',
          reason: 'intent_on_other_node',
          fence: 2,
          intentNodeId: 'a',
        },
        { kind: 'placement_missing', nodeId: 'a', requestId: 'vm-2', tenantId: 'acme' },
      ],
      total: 5,
      nodesSwept: 3,
      nodesFailed: [{ nodeId: 'c', error: 'timed out' }],
    });
    expect(text.split('\n')).toEqual([
      '3 node(s) listed; 5 discrepancies',
      '',
      'KIND               NODE  ALLOCATION  REQUEST  TENANT  REASON                              FENCE',
      'orphan             b     b:7         vm-1     acme    intent on other node (intent on a)      2',
      'placement_missing  a     -           vm-2     acme    -                                       -',
      '... and 3 more discrepancies not shown (2 of 5 listed)',
      'not listed: c: timed out',
    ]);
  });
});
