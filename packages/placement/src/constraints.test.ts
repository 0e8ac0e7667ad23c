import { describe, expect, it } from 'vitest';
import { PlacementOptionsSchema, unwrap, type PlacementOptionsInput } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import { allocation, allocationRequest, nodeHolding, nodeView, type NodeShape } from './fixtures.ts';
import { decide } from './decide.ts';
import { preemptionTargets } from './post-filter.ts';
import { seededRandom } from './random.ts';

const options = (o: PlacementOptionsInput) => PlacementOptionsSchema.parse(o);
const place = (shapes: NodeShape[], o: PlacementOptionsInput, request = allocationRequest(1024, 1)) =>
  unwrap(decide(ClusterIndex.of(shapes.map(nodeView), { random: seededRandom(7) }), request, options(o), { random: seededRandom(1) }));

const zoneLabel = (zone: string | undefined): Record<string, string> => (zone === undefined ? {} : { zone });

describe('taints and tolerations', () => {
  const tainted: NodeShape = {
    id: 'gpu-1',
    taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule', reason: 'reserved for tenant ml' }],
  };

  it('refuses a request that does not tolerate the taint, naming the taint and its reason', () => {
    const d = place([tainted], {});
    expect(d.candidates).toEqual([]);
    expect(d.message).toBe('0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu} (reserved for tenant ml).');
  });

  it('places a tolerating request on the tainted node', () => {
    expect(place([tainted], { tolerations: [{ key: 'dedicated', value: 'gpu' }] }).candidates).toEqual(['gpu-1']);
    expect(place([tainted], { tolerations: [{ key: 'dedicated', operator: 'Exists' }] }).candidates).toEqual(['gpu-1']);
  });

  it('a toleration of another value or key does not tolerate it', () => {
    expect(place([tainted], { tolerations: [{ key: 'dedicated', value: 'db' }] }).candidates).toEqual([]);
    expect(place([tainted], { tolerations: [{ key: 'maintenance', operator: 'Exists' }] }).candidates).toEqual([]);
  });

  it('untainted nodes still take an untolerating request; every taint of a node must be tolerated', () => {
    expect(place([tainted, { id: 'plain' }], {}).candidates).toEqual(['plain']);
    const two: NodeShape = {
      id: 'two',
      taints: [
        { key: 'a', value: '', effect: 'NoSchedule' },
        { key: 'b', value: 'x', effect: 'NoSchedule' },
      ],
    };
    const d = place([two], { tolerations: [{ key: 'a' }] });
    expect(d.rejected).toEqual({ 'node(s) had untolerated taint {b: x}': 1 });
  });

  it('preemption never names a tainted node the request does not tolerate', () => {
    const full = { id: 'full', memoryMiB: 2048, taints: tainted.taints };
    const index = ClusterIndex.of([nodeHolding(full, [allocation('full:1', 'full', 2048, 1, 0)])]);
    const request = allocationRequest(1024, 1, { priority: 100 });
    expect(unwrap(preemptionTargets(index, request, options({ allowPreemption: true }), { random: seededRandom(1) }, 4)).nodes).toEqual([]);
    expect(
      unwrap(
        preemptionTargets(
          index,
          request,
          options({ allowPreemption: true, tolerations: [{ key: 'dedicated', value: 'gpu' }] }),
          { random: seededRandom(1) },
          4,
        ),
      ).nodes,
    ).toEqual(['full']);
  });
});

describe('topology spread (hard maxSkew)', () => {
  const zoned = (id: string, zone: string | undefined, web = 0): NodeShape => ({
    id,
    labels: zoneLabel(zone),
    groups: web > 0 ? { web } : {},
  });
  const group = { name: 'web', maxPerNode: 100 };

  it('refuses the domain that would exceed maxSkew over the least loaded one', () => {
    const d = place([zoned('a', 'z1', 2), zoned('b', 'z2', 1)], { group, topologySpread: { topologyKey: 'zone', maxSkew: 1 } });
    expect(d.candidates).toEqual(['b']);
    expect(d.rejected).toEqual({ 'topology spread zone maxSkew 1': 1 });
  });

  it('allows skew up to maxSkew', () => {
    const d = place([zoned('a', 'z1', 2), zoned('b', 'z2', 1)], { group, topologySpread: { topologyKey: 'zone', maxSkew: 2 } });
    expect([...d.candidates].sort()).toEqual(['a', 'b']);
  });

  it('a node without the label is refused, and a domain with no schedulable node does not hold the minimum', () => {
    const d = place([zoned('a', 'z1', 1), zoned('nolabel', undefined), { ...zoned('down', 'z3'), cordoned: true }], {
      group,
      topologySpread: { topologyKey: 'zone', maxSkew: 1 },
    });
    expect(d.candidates).toEqual(['a']);
    expect(d.rejected['topology spread: node has no zone label']).toBe(1);
  });

  it('counts the tenant VMs when the request has no group', () => {
    const t = (id: string, zone: string, vms: number): NodeShape => ({
      id,
      labels: { zone },
      tenants: { t1: { vms, memoryMiB: 1, vcpus: 1 } },
    });
    expect(place([t('a', 'z1', 3), t('b', 'z2', 2)], { topologySpread: { topologyKey: 'zone', maxSkew: 1 } }).candidates).toEqual(['b']);
  });
});

describe('affinity', () => {
  it('required per node: only nodes holding the group', () => {
    const d = place([{ id: 'a', groups: { db: 1 } }, { id: 'b' }], { affinity: [{ group: 'db' }] });
    expect(d.candidates).toEqual(['a']);
    expect(d.rejected).toEqual({ 'affinity group db per node': 1 });
  });

  it('required per domain: any node of a domain holding the group', () => {
    const d = place(
      [
        { id: 'a', labels: { rack: 'r1' }, groups: { db: 1 } },
        { id: 'b', labels: { rack: 'r1' } },
        { id: 'c', labels: { rack: 'r2' } },
      ],
      { affinity: [{ group: 'db', topologyKey: 'rack' }] },
    );
    expect([...d.candidates].sort()).toEqual(['a', 'b']);
    expect(d.rejected).toEqual({ 'affinity group db per rack': 1 });
  });

  it('required to its own group: the first member lands anywhere, the next ones follow it', () => {
    const own = { group: { name: 'db', maxPerNode: 10 }, affinity: [{ group: 'db', topologyKey: 'rack' }] };
    expect(
      place(
        [
          { id: 'a', labels: { rack: 'r1' } },
          { id: 'c', labels: { rack: 'r2' } },
        ],
        own,
      ).candidates,
    ).toHaveLength(2);
    expect(
      place(
        [
          { id: 'a', labels: { rack: 'r1' } },
          { id: 'c', labels: { rack: 'r2' }, groups: { db: 1 } },
        ],
        own,
      ).candidates,
    ).toEqual(['c']);
    // Another group's term gets no such exception.
    expect(place([{ id: 'a' }], { affinity: [{ group: 'db' }] }).candidates).toEqual([]);
  });

  it('preferred: a node with the group ranks first whatever the strategy prefers, others stay candidates', () => {
    // binpack prefers the fuller node b; the preference for db's node a outranks it.
    const shapes: NodeShape[] = [
      { id: 'a', groups: { db: 1 } },
      { id: 'b', memoryCommitted: 60_000 },
    ];
    expect(place(shapes, {}).candidates[0]).toBe('b');
    expect(place(shapes, { affinity: [{ group: 'db', mode: 'preferred' }] }).candidates).toEqual(['a', 'b']);
  });

  it('preferred terms rank by their weights', () => {
    const shapes: NodeShape[] = [
      { id: 'a', groups: { db: 1 } },
      { id: 'b', groups: { cache: 1 } },
    ];
    const d = place(shapes, {
      affinity: [
        { group: 'db', mode: 'preferred', weight: 10 },
        { group: 'cache', mode: 'preferred', weight: 90 },
      ],
    });
    expect(d.candidates).toEqual(['b', 'a']);
  });
});

describe('groups are per tenant', () => {
  // The fixtures' nodes hold tenant t1's groups; t2 asks with the same names.
  const t2 = allocationRequest(1024, 1, { tenantId: 't2' });

  it("another tenant's members of the group neither fill a node's maxPerNode nor spread it; the tenant's own do", () => {
    const shapes: NodeShape[] = [{ id: 'a', groups: { db: 1 } }, { id: 'b' }];
    const group = { group: { name: 'db', maxPerNode: 1 } };
    expect([...place(shapes, group, t2).candidates].sort()).toEqual(['a', 'b']);
    expect(place(shapes, group).candidates).toEqual(['b']);
    const zones: NodeShape[] = [
      { id: 'a', labels: { zone: 'z1' }, groups: { db: 3 } },
      { id: 'b', labels: { zone: 'z2' }, memoryCommitted: 60_000 },
    ];
    const spread = { group: { name: 'db', maxPerNode: 10 }, topologySpread: { topologyKey: 'zone', maxSkew: 1 } };
    expect([...place(zones, spread, t2).candidates].sort()).toEqual(['a', 'b']);
    expect(place(zones, spread).candidates).toEqual(['b']);
  });

  it("another tenant's members of the group do not attract an affinity, per node or per domain", () => {
    const shapes: NodeShape[] = [
      { id: 'a', labels: { rack: 'r1' }, groups: { db: 1 } },
      { id: 'b', labels: { rack: 'r2' } },
    ];
    expect(place(shapes, { affinity: [{ group: 'db' }] }, t2).candidates).toEqual([]);
    expect(place(shapes, { affinity: [{ group: 'db', topologyKey: 'rack' }] }, t2).candidates).toEqual([]);
    expect(place(shapes, { affinity: [{ group: 'db', topologyKey: 'rack' }] }).candidates).toEqual(['a']);
  });
});
