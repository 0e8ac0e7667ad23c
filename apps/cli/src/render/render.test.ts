import { describe, expect, it } from 'vitest';
import { formatAge, formatMemoryTriple, formatMiB } from '../format/units.ts';
import { NOW, SAMPLE_CLUSTER_USAGE, sampleAllocation, sampleNode } from '../testing/samples.ts';
import { renderEvent } from './events.ts';
import { renderDecommission, renderNodes } from './nodes.ts';
import { renderCheck, renderPlacement } from './placement.ts';
import { renderClusterUsage, renderCores, renderNodeUsage } from './usage.ts';

describe('figures for people', () => {
  it('shows MiB below a GiB and GiB above, with one decimal only when needed', () => {
    expect(formatMiB(512)).toBe('512 MiB');
    expect(formatMiB(4096)).toBe('4 GiB');
    expect(formatMiB(1536)).toBe('1.5 GiB');
    expect(formatMiB(2 * 1024 * 1024)).toBe('2 TiB');
    expect(formatMemoryTriple(6144, 126_976, 40_960)).toBe('6/124/40 GiB');
    expect(formatMemoryTriple(100, 900, 0)).toBe('100/900/0 MiB');
    expect(formatAge(3500)).toBe('3s ago');
    expect(formatAge(125_000)).toBe('2m ago');
  });
});

describe('the nodes table', () => {
  it('aligns one row per node with state, health, cordon, usage, labels and last seen', () => {
    const text = renderNodes(
      [
        sampleNode(
          'sim-small',
          { liveness: 'suspect' },
          { cordoned: true, labels: { zone: 'z2' }, health: { status: 'degraded', reasons: ['memory committed 96%'] } },
        ),
        sampleNode('local'),
        sampleNode('old', { state: 'decommissioned' }, { cordoned: true }),
        sampleNode('maint', {}, { cordoned: true }),
      ],
      NOW,
    );
    expect(text.split('\n')).toEqual([
      'NODE       STATE           HEALTH    CORDON    MEMORY c/e/u  VCPU c/e/u  LABELS           LAST SEEN',
      'local      ready           healthy   -         6/124/40 GiB      4/28/1  rack=r1,zone=z1  3s ago',
      'maint      draining        healthy   cordoned  6/124/40 GiB      4/28/1  rack=r1,zone=z1  3s ago',
      'old        decommissioned  healthy   cordoned  6/124/40 GiB      4/28/1  rack=r1,zone=z1  3s ago',
      'sim-small  suspect         degraded  cordoned  6/124/40 GiB      4/28/1  zone=z2          3s ago',
      '',
      'health:',
      '  sim-small: memory committed 96%',
    ]);
  });

  it('lists the taints below the table, with their reasons', () => {
    const tainted = {
      ...sampleNode('gpu-1'),
      taints: [{ key: 'dedicated', value: 'ml', effect: 'NoSchedule' as const, reason: 'reserved for ml' }],
    };
    expect(
      renderNodes([tainted, sampleNode('local')], NOW)
        .split('\n')
        .slice(-2),
    ).toEqual(['taints:', '  gpu-1: dedicated=ml:NoSchedule  (reserved for ml)']);
  });

  it('says so when no node has reported', () => {
    expect(renderNodes([], NOW)).toBe('No nodes have reported yet.');
  });

  it('says what a decommission settled and what remains', () => {
    const gone = renderDecommission({
      nodeId: 'n1',
      decommissionedAt: 1,
      answered: false,
      liveness: 'lost',
      failed: ['p1'],
      placed: [],
      gone: ['p0', 'p2'],
      unsettled: [],
      remaining: [],
      remainingCount: 0,
      removed: true,
    });
    expect(gone.split('\n')).toEqual([
      'n1 decommissioned (its agent did not answer; lost)',
      'pending placements failed, quota given back (1): p1',
      'placements given up with the lost node, quota given back (2): p0, p2',
      'nothing of it remains: it is out of the view and every count',
    ]);
    const live = renderDecommission({
      nodeId: 'n2',
      decommissionedAt: 1,
      answered: true,
      liveness: 'ready',
      failed: [],
      placed: [],
      gone: [],
      unsettled: [],
      remaining: [],
      remainingCount: 3,
      removed: false,
    });
    expect(live).toBe(
      'n2 decommissioned (its agent answered and is cordoned)\n3 allocations still on it: move or release them; it leaves the view once nothing remains',
    );
  });
});

describe('usage views', () => {
  it('summarises the cluster', () => {
    expect(renderClusterUsage(SAMPLE_CLUSTER_USAGE)).toBe(
      [
        'nodes:       3 (2 ready, 1 suspect, 0 lost, 1 cordoned)',
        'memory:      8 GiB committed of 176 GiB effective (4.5%), 64 GiB used of 192 GiB',
        'cpu:         6 vCPUs committed of 120 effective (5%), 3 used of 42 cores',
        'allocations: 3',
      ].join('\n'),
    );
  });

  it('shows one node with its reserves, overcommit and tenants', () => {
    const text = renderNodeUsage(sampleNode('sim-large'), NOW);
    expect(text).toContain('node:           sim-large');
    expect(text).toContain('memory reserve: 4 GiB, overcommit x1');
    expect(text).toContain('cores:          5 shared (2/20 vCPUs), 2 exclusive, 1 reserved; overcommit x4');
    expect(text).toContain('tenants:        demo 2 VMs 6 GiB 4 vCPUs');
  });

  it('lists every core with its topology, role, holder and utilization', () => {
    const lines = renderCores(sampleNode('sim-large').snapshot.cpu.cores).split('\n');
    expect(lines[0]).toBe('CORE  PHYSICAL  NUMA  SOCKET  ROLE       ALLOCATION   UTIL');
    expect(lines[1]).toBe('   0         0     0       0  reserved   -              0%');
    expect(lines[3]).toBe('   2         1     0       0  exclusive  alloc-db-1   7.4%');
    expect(lines).toHaveLength(9);
  });
});

describe('placement replies', () => {
  it('says where a VM went and what it got', () => {
    const text = renderPlacement({ nodeId: 'sim-large', allocation: sampleAllocation('vm-1'), cpuset: [1, 4], preempted: [], attempts: 2 });
    expect(text).toContain('placed on sim-large after 2 attempts');
    expect(text).toContain('memory:     2 GiB');
    expect(text).toContain('vcpus:      2 shared');
    expect(text).toContain('cpuset:     1,4,5,6,7');
  });

  it("names the preemptor's own victims and counts other tenants'", () => {
    const own = [{ allocationId: 'sim-large:3', requestId: 'mine', priority: 0 }];
    const text = renderPlacement({
      nodeId: 'sim-large',
      allocation: sampleAllocation('vm-1'),
      cpuset: [],
      preempted: own,
      othersPreempted: 2,
      attempts: 1,
    });
    expect(text).toContain('preempted sim-large:3 (request mine, priority 0)');
    expect(text).toContain("preempted 2 of other tenants' allocations");
  });

  it('explains a check that does not fit', () => {
    expect(
      renderCheck({ fits: false, candidates: [], rejected: { 'Insufficient memory': 2, cordoned: 1 }, message: '0/3 nodes are available' }),
    ).toBe('fits: no\n0/3 nodes are available\nrejected: 2 Insufficient memory, 1 cordoned');
  });

  it('names the node and the victims of a check that fits only by preemption', () => {
    const preemption = { nodeId: 'n2', victims: [{ allocationId: 'n2:7', requestId: 'batch-1', priority: 0 }] };
    expect(
      renderCheck({ fits: false, candidates: [], rejected: { 'Insufficient memory': 2 }, message: '0/2 nodes are available', preemption }),
    ).toBe(
      'fits: no\n0/2 nodes are available\nrejected: 2 Insufficient memory\nwith preemption: node n2, preempting n2:7 (request batch-1, priority 0)',
    );
  });

  it("says a preemption's victims are other tenants' when none of its own is named", () => {
    const preemption = { nodeId: 'n2', victims: [] };
    expect(
      renderCheck({ fits: false, candidates: [], rejected: {}, message: 'It would fit on n2 by preempting 1 allocation', preemption }),
    ).toContain("with preemption: node n2, preempting other tenants' allocations only");
  });
});

describe('the legacy import report', () => {
  it('lists each document with its outcome, the warnings and the totals', async () => {
    const { renderImportReport } = await import('./quota.ts');
    const text = renderImportReport({
      entries: [
        { index: 0, tenantId: 'tenant-1', outcome: 'migrated', warnings: [] },
        {
          index: 1,
          tenantId: 'broken-1',
          outcome: 'skipped',
          reason: { code: 'invalid_document', field: 'max_vcpus', message: 'must be >= 0' },
          warnings: [],
        },
        {
          index: 2,
          tenantId: 'acme',
          outcome: 'updated',
          changedFields: ['maxVms'],
          warnings: [{ field: 'max_disk_gb', message: 'disk quotas are not enforced' }],
        },
      ],
      totals: { documents: 3, migrated: 1, updated: 1, unchanged: 0, skipped: 1, warnings: 1 },
      completionPercent: 100,
    });
    expect(text.split('\n')).toEqual([
      '#  TENANT    OUTCOME   DETAIL',
      '0  tenant-1  migrated',
      '1  broken-1  skipped   invalid_document: max_vcpus: must be >= 0',
      '2  acme      updated   changed maxVms',
      '',
      'warnings:',
      '  acme: max_disk_gb: disk quotas are not enforced',
      '',
      'totals: 3 documents, 1 migrated, 1 updated, 0 unchanged, 1 skipped, 1 warnings',
      'complete: 100%',
    ]);
  });
});

describe('events in a terminal', () => {
  it('shows control characters and bidi overrides from an event as escapes, never raw', () => {
    const line = renderEvent({
      kind: 'refused',
      nodeId: 'n1',
      at: NOW,
      seq: 1,
      requestId: 'r1',
      error: { code: 'invalid_request', message: 'x\u001b]0;owned\u0007y\r\nz\u202ew\u009b' },
    } as Parameters<typeof renderEvent>[0]);
    // eslint-disable-next-line no-control-regex -- the assertion is about control characters
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(line).toContain('x\\x1b]0;owned\\x07y\\r\\nz\\u202ew\\x9b');
  });
});
