import { describe, expect, it } from 'vitest';
import { unwrap, type PlacementOptions } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import { allocationRequest, nodeView, type NodeShape } from './fixtures.ts';
import { decide } from './decide.ts';
import { seededRandom } from './random.ts';
import type { PlacementContext } from './types.ts';

const opts = (more: Partial<PlacementOptions> = {}): PlacementOptions => ({ constraints: [], allowPreemption: false, ...more });
const ctx = (more: Partial<PlacementContext> = {}): PlacementContext => ({ random: seededRandom(7), ...more });
const cluster = (shapes: NodeShape[]) => ClusterIndex.of(shapes.map(nodeView), { random: seededRandom(1) });

describe('decide', () => {
  const fourNodes = cluster([
    { id: 'empty', memoryMiB: 16384, memoryCommitted: 0 },
    { id: 'half', memoryMiB: 16384, memoryCommitted: 8192 },
    { id: 'full', memoryMiB: 16384, memoryCommitted: 15360 }, // 1 GiB free: too small for 2 GiB
    { id: 'most', memoryMiB: 16384, memoryCommitted: 12288 },
  ]);

  it('binpack fills the fullest node that fits', () => {
    const d = unwrap(decide(fourNodes, allocationRequest(2048, 2), opts({ strategy: 'binpack' }), ctx()));
    expect(d.candidates).toEqual(['most', 'half', 'empty']);
  });

  it('spread goes to the emptiest node', () => {
    const d = unwrap(decide(fourNodes, allocationRequest(2048, 2), opts({ strategy: 'spread' }), ctx()));
    expect(d.candidates).toEqual(['empty', 'half', 'most']);
  });

  it('takes the strategy from the context when the options name none, binpack by default', () => {
    expect(unwrap(decide(fourNodes, allocationRequest(2048, 2), opts(), ctx({ strategy: 'spread' }))).candidates[0]).toBe('empty');
    expect(unwrap(decide(fourNodes, allocationRequest(2048, 2), opts(), ctx())).candidates[0]).toBe('most');
  });

  it('weights decide which dimension binpack fills: cpu weight picks the node busiest in cpu', () => {
    const c = cluster([
      { id: 'mem-busy', memoryMiB: 16384, memoryCommitted: 12288, cores: 16, sharedVcpusCommitted: 0 },
      { id: 'cpu-busy', memoryMiB: 16384, memoryCommitted: 0, cores: 16, sharedVcpusCommitted: 12 },
    ]);
    const req = allocationRequest(1024, 1);
    expect(unwrap(decide(c, req, opts({ strategy: 'binpack', weights: { cpu: 100, memory: 0 } }), ctx())).candidates[0]).toBe('cpu-busy');
    expect(unwrap(decide(c, req, opts({ strategy: 'binpack', weights: { cpu: 0, memory: 100 } }), ctx())).candidates[0]).toBe('mem-busy');
  });

  it('round-robin rotates through the nodes in id order from the cursor', () => {
    const c = cluster([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const chosen: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 4; i += 1) {
      const d = unwrap(
        decide(
          c,
          allocationRequest(1024, 1),
          opts({ strategy: 'round-robin' }),
          ctx(cursor === undefined ? {} : { roundRobinCursor: cursor }),
        ),
      );
      cursor = d.candidates[0];
      chosen.push(cursor as string);
    }
    expect(chosen).toEqual(['a', 'b', 'c', 'a']);
  });

  it('round-robin skips a node that does not fit and continues after a cursor that left the cluster', () => {
    const c = cluster([{ id: 'a' }, { id: 'b', memoryMiB: 512 }, { id: 'd' }]);
    const d = unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'round-robin' }), ctx({ roundRobinCursor: 'a' })));
    expect(d.candidates).toEqual(['d', 'a']);
    const gone = unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'round-robin' }), ctx({ roundRobinCursor: 'c' })));
    expect(gone.candidates[0]).toBe('d');
  });

  it('manual goes to the named node', () => {
    const d = unwrap(decide(fourNodes, allocationRequest(2048, 2), opts({ strategy: 'manual', nodeId: 'half' }), ctx()));
    expect(d.candidates).toEqual(['half']);
  });

  it('manual refuses with the reason when the named node does not fit', () => {
    const d = unwrap(decide(fourNodes, allocationRequest(2048, 2), opts({ strategy: 'manual', nodeId: 'full' }), ctx()));
    expect(d.candidates).toEqual([]);
    expect(d.rejected).toEqual({ 'Insufficient memory': 1, 'not the named node': 3 });
    expect(d.message).toBe('0/4 nodes are available: 3 not the named node, 1 Insufficient memory. Node full: Insufficient memory.');
  });

  it('manual refuses a node that is not in the view, and asks for the node id when it is missing', () => {
    const d = unwrap(decide(fourNodes, allocationRequest(2048, 2), opts({ strategy: 'manual', nodeId: 'ghost' }), ctx()));
    expect(d.candidates).toEqual([]);
    expect(d.message).toContain('Node ghost is not in the cluster view.');
    const bad = decide(fourNodes, allocationRequest(2048, 2), opts({ strategy: 'manual' }), ctx());
    expect(bad.ok ? null : bad.error).toMatchObject({ code: 'invalid_request', details: { field: 'placement.nodeId' } });
  });

  it('refuses weights that are both zero, naming the field', () => {
    const bad = decide(fourNodes, allocationRequest(2048, 2), opts({ weights: { cpu: 0, memory: 0 } }), ctx());
    expect(bad.ok ? null : bad.error).toMatchObject({ code: 'invalid_request', details: { field: 'placement.weights' } });
  });

  it('spread-domain alternates zones as the group grows', () => {
    const shapes: NodeShape[] = [
      { id: 'a1', labels: { zone: 'a' } },
      { id: 'a2', labels: { zone: 'a' } },
      { id: 'b1', labels: { zone: 'b' } },
      { id: 'b2', labels: { zone: 'b' } },
    ];
    const index = cluster(shapes);
    const zones: string[] = [];
    const groupCounts = new Map<string, number>();
    for (let i = 0; i < 4; i += 1) {
      const d = unwrap(
        decide(index, allocationRequest(1024, 1), opts({ strategy: 'spread-domain', group: { name: 'web', maxPerNode: 10 } }), ctx()),
      );
      const chosen = d.candidates[0] as string;
      zones.push(chosen[0] as string);
      // The agent commits and publishes a new snapshot: the group now has one more allocation there.
      groupCounts.set(chosen, (groupCounts.get(chosen) ?? 0) + 1);
      const shape = shapes.find((s) => s.id === chosen) as NodeShape;
      index.upsert(
        nodeView({
          ...shape,
          groups: { web: groupCounts.get(chosen) as number },
          memoryCommitted: 1024 * (groupCounts.get(chosen) as number),
          seq: i + 2,
        }),
      );
    }
    expect(zones[0]).not.toBe(zones[1]);
    expect(zones[2]).not.toBe(zones[3]);
    expect(zones.filter((z) => z === 'a')).toHaveLength(2);
  });

  it('spread-domain spreads over another label when asked and prefers the domain without the tenant', () => {
    const index = cluster([
      { id: 'r1', labels: { rack: 'r1' }, tenants: { t1: { vms: 3, memoryMiB: 3, vcpus: 3 } } },
      { id: 'r2', labels: { rack: 'r2' } },
    ]);
    const d = unwrap(decide(index, allocationRequest(1024, 1), opts({ strategy: 'spread-domain', domainLabel: 'rack' }), ctx()));
    expect(d.candidates).toEqual(['r2', 'r1']);
  });

  it('spread-domain ranks every node of a less loaded domain before any node of a more loaded one, however full', () => {
    // The domain decides, spread only within a domain: its weights reproduce that order (see SPREAD_DOMAIN_WEIGHT).
    const index = cluster([
      { id: 'a-full', labels: { zone: 'a' }, memoryMiB: 65536, memoryCommitted: 64512 },
      { id: 'a-half', labels: { zone: 'a' }, memoryMiB: 65536, memoryCommitted: 32768 },
      { id: 'b-empty', labels: { zone: 'b' }, groups: { web: 1 } },
      { id: 'c-empty', labels: { zone: 'c' }, groups: { web: 2 } },
    ]);
    const d = unwrap(
      decide(index, allocationRequest(1024, 1), opts({ strategy: 'spread-domain', group: { name: 'web', maxPerNode: 10 } }), ctx()),
    );
    expect(d.candidates).toEqual(['a-half', 'a-full', 'b-empty', 'c-empty']);
  });

  it('keeps label constraints and anti-affinity on every candidate', () => {
    const c = cluster([
      { id: 'z1-web', labels: { zone: 'z1' }, groups: { web: 1 } },
      { id: 'z1-free', labels: { zone: 'z1' } },
      { id: 'z2-free', labels: { zone: 'z2' } },
    ]);
    const d = unwrap(
      decide(
        c,
        allocationRequest(1024, 1),
        opts({ constraints: [{ key: 'zone', op: 'In', values: ['z1'] }], group: { name: 'web', maxPerNode: 1 } }),
        ctx(),
      ),
    );
    expect(d.candidates).toEqual(['z1-free']);
  });

  it('counts every node under one reason and writes the message like kube-scheduler', () => {
    const c = cluster([
      { id: 'small1', memoryMiB: 1024 },
      { id: 'small2', memoryMiB: 1024 },
      { id: 'small3', memoryMiB: 1024 },
      { id: 'cordoned1', cordoned: true },
      { id: 'cordoned2', cordoned: true },
    ]);
    const d = unwrap(decide(c, allocationRequest(2048, 1), opts(), ctx()));
    expect(d.candidates).toEqual([]);
    expect(d.rejected).toEqual({ 'Insufficient memory': 3, 'node cordoned': 2 });
    expect(d.message).toBe('0/5 nodes are available: 3 Insufficient memory, 2 node cordoned.');
    expect(d.exhaustive).toBe(true);
  });

  it('counts cpu, label, quota and state reasons without losing a node', () => {
    const c = cluster([
      { id: 'few-cores', cores: 2 },
      { id: 'other-zone', labels: { zone: 'z2' } },
      { id: 'quota-full', labels: { zone: 'z1' }, tenants: { t1: { vms: 1, memoryMiB: 1, vcpus: 1 } } },
      { id: 'lost', liveness: 'lost' },
      { id: 'sick', health: { status: 'unhealthy', reasons: ['disk'] } },
    ]);
    const d = unwrap(
      decide(c, allocationRequest(1024, 4), opts({ constraints: [{ key: 'zone', op: 'In', values: ['z1'] }] }), ctx({ maxVmsPerNode: 1 })),
    );
    expect(d.rejected).toEqual({
      'Insufficient cpu': 1,
      'label constraint zone In [z1]': 1,
      'tenant quota: max VMs per node': 1,
      'node not ready': 1,
      'node unhealthy': 1,
    });
    expect(d.message).toBe(
      '0/5 nodes are available: 1 Insufficient cpu, 1 label constraint zone In [z1], 1 node not ready, 1 node unhealthy, 1 tenant quota: max VMs per node.',
    );
  });

  it('never returns a node already tried, and counts it as such', () => {
    const first = unwrap(decide(fourNodes, allocationRequest(2048, 2), opts(), ctx()));
    const again = unwrap(decide(fourNodes, allocationRequest(2048, 2), opts(), ctx({ exclude: new Set(['most']) })));
    expect(first.candidates[0]).toBe('most');
    expect(again.candidates).not.toContain('most');
    expect(again.candidates[0]).toBe('half');
    const none = unwrap(decide(fourNodes, allocationRequest(2048, 2), opts(), ctx({ exclude: new Set(['most', 'half', 'empty']) })));
    expect(none.rejected).toEqual({ 'already tried': 3, 'Insufficient memory': 1 });
  });

  it('returns at most maxCandidates, best first', () => {
    const c = cluster(Array.from({ length: 20 }, (_, i) => ({ id: `n${i}`, memoryCommitted: i * 1024 })));
    const d = unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'binpack' }), ctx({ maxCandidates: 3 })));
    expect(d.candidates).toEqual(['n19', 'n18', 'n17']);
  });

  it('examines only about log2(n) nodes when many fit', () => {
    const c = cluster(Array.from({ length: 1024 }, (_, i) => ({ id: `n${i}`, memoryCommitted: (i % 50) * 512 })));
    const d = unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'spread' }), ctx()));
    expect(d.candidates).toHaveLength(5);
    expect(d.examined).toBe(10);
  });

  it('looks further than the sample when the first nodes fail a label constraint', () => {
    const shapes: NodeShape[] = Array.from({ length: 200 }, (_, i) => ({ id: `n${i}`, labels: { zone: i === 137 ? 'rare' : 'common' } }));
    const d = unwrap(
      decide(cluster(shapes), allocationRequest(1024, 1), opts({ constraints: [{ key: 'zone', op: 'In', values: ['rare'] }] }), ctx()),
    );
    expect(d.candidates).toEqual(['n137']);
  });

  it('stops at maxVisits and says how many nodes it did not examine', () => {
    const shapes: NodeShape[] = Array.from({ length: 50 }, (_, i) => ({ id: `n${i}`, labels: { zone: 'common' } }));
    const d = unwrap(
      decide(
        cluster(shapes),
        allocationRequest(1024, 1),
        opts({ constraints: [{ key: 'zone', op: 'In', values: ['rare'] }] }),
        ctx({ maxVisits: 10 }),
      ),
    );
    expect(d.candidates).toEqual([]);
    expect(d.exhaustive).toBe(false);
    expect(d.rejected).toEqual({ 'label constraint zone In [rare]': 10, 'not examined': 40 });
  });
});
