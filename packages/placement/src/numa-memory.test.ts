import { describe, expect, it } from 'vitest';
import { type NumaMemoryUsage, type PlacementOptions } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import { decide } from './decide.ts';
import { allocationRequest, nodeView, type NodeShape } from './fixtures.ts';
import { seededRandom } from './random.ts';

const opts: PlacementOptions = { constraints: [], allowPreemption: false };

/** A node whose agent published per-node figures (or, with `numa` undefined, an agent older than them). */
function numaNode(shape: NodeShape, numa: NumaMemoryUsage[] | undefined) {
  const view = nodeView(shape);
  return { ...view, snapshot: { ...view.snapshot, memory: { ...view.snapshot.memory, ...(numa === undefined ? {} : { numa }) } } };
}

function node(id: number, freeMiB: number, pages2Mi: number) {
  return {
    node: id,
    capacityMiB: 8192,
    pinnedMiB: 8192 - freeMiB,
    freeMiB,
    hugepages: [{ pageSizeMiB: 2, total: 64, used: 64 - pages2Mi, free: pages2Mi }],
  };
}

function place(
  nodes: ReturnType<typeof numaNode>[],
  memory: NonNullable<ReturnType<typeof allocationRequest>['memory']>,
  memoryMiB = 1024,
) {
  const snapshot = ClusterIndex.of(nodes, { random: seededRandom(1) });
  const decided = decide(snapshot, allocationRequest(memoryMiB, 1, { memory }), opts, { random: seededRandom(7) });
  if (!decided.ok) throw new Error(decided.error.message);
  return decided.value;
}

describe('placement with NUMA-local memory and hugepages', () => {
  const cluster = [
    numaNode({ id: 'a' }, [node(0, 8192, 64), node(1, 512, 0)]),
    numaNode({ id: 'b' }, [node(0, 512, 10), node(1, 4096, 64)]),
    numaNode({ id: 'old' }, undefined),
  ];

  it('sends a request naming a NUMA node only where that node has the memory free', () => {
    const d = place(cluster, { numaNode: 1 });
    expect(d.candidates).toEqual(['b']);
    expect(d.rejected).toEqual({ 'Insufficient memory on NUMA node 1': 2 });
  });

  it('counts hosts short of hugepages the way kube-scheduler does', () => {
    const d = place(cluster, { numaNode: 1, hugepages: { pageSizeMiB: 2, count: 8 } }, 0);
    expect(d.candidates).toEqual(['b']);
    const none = place(cluster, { hugepages: { pageSizeMiB: 2, count: 65 } }, 0);
    expect(none.candidates).toEqual([]);
    expect(none.message).toBe('0/3 nodes are available: 3 Insufficient hugepages-2Mi.');
    const gib = place(cluster, { hugepages: { pageSizeMiB: 1024, count: 1 } }, 0);
    expect(gib.message).toBe('0/3 nodes are available: 3 Insufficient hugepages-1Gi.');
  });

  it('takes unpinned hugepages from any node that has them, and leaves requests without memory options alone', () => {
    expect(place(cluster, { hugepages: { pageSizeMiB: 2, count: 20 } }, 0).candidates.sort()).toEqual(['a', 'b']);
    expect(place(cluster, {}).candidates.sort()).toEqual(['a', 'b', 'old']);
  });
});

describe('placement of a request bound to one NUMA node (cpu.numa require, no memory node)', () => {
  /** Two NUMA nodes of 4 shared cores each (cores 0-3 on node 0, 4-7 on node 1). */
  const shape = (id: string): NodeShape => ({ id, cores: 8, numaNodes: 2 });
  const bound = (memoryMiB: number, vcpus: number, memory: ReturnType<typeof allocationRequest>['memory'] = undefined) =>
    allocationRequest(memoryMiB, vcpus, { cpu: { exclusive: false, numa: 'require' }, ...(memory === undefined ? {} : { memory }) });
  const decideFor = (nodes: ReturnType<typeof numaNode>[], request: ReturnType<typeof allocationRequest>) => {
    const decided = decide(ClusterIndex.of(nodes, { random: seededRandom(1) }), request, opts, { random: seededRandom(7) });
    if (!decided.ok) throw new Error(decided.error.message);
    return decided.value;
  };
  /** `exclusiveOn`: the NUMA node whose cores are all held exclusively (no longer shared). */
  function host(id: string, numa: NumaMemoryUsage[], exclusiveOn?: number) {
    const view = numaNode(shape(id), numa);
    const cores = view.snapshot.cpu.cores.map((c) =>
      c.numa === exclusiveOn ? { ...c, role: 'exclusive' as const, allocationId: `${id}:1` } : c,
    );
    return { ...view, snapshot: { ...view.snapshot, cpu: { ...view.snapshot.cpu, cores } } };
  }

  it('accepts a host only where one node has both the cores and the memory', () => {
    const cluster = [
      // Node 0 has the cores but not the memory; node 1 the memory but not the cores.
      host('split', [node(0, 512, 64), node(1, 8192, 64)], 1),
      // Node 1 has both.
      host('whole', [node(0, 512, 64), node(1, 8192, 64)]),
    ];
    const d = decideFor(cluster, bound(4096, 4));
    expect(d.candidates).toEqual(['whole']);
    expect(d.rejected).toEqual({ 'no NUMA node fits its cores and memory together': 1 });
  });

  it('counts the hugepages too, and passes a host whose agent publishes no per-node memory (its memory floats there)', () => {
    const cluster = [
      host('pages-elsewhere', [node(0, 8192, 0), node(1, 8192, 64)], 1),
      host('both', [node(0, 8192, 64), node(1, 8192, 0)], 1),
      numaNode(shape('old'), undefined),
    ];
    const d = decideFor(cluster, bound(1024, 2, { hugepages: { pageSizeMiB: 2, count: 8 } }));
    expect(d.candidates).toEqual(['both']);
    expect(d.rejected).toEqual({ 'no NUMA node fits its cores, memory and hugepages together': 1, 'Insufficient hugepages-2Mi': 1 });
    expect(decideFor(cluster, bound(1024, 2)).candidates.sort()).toEqual(['both', 'old', 'pages-elsewhere']);
  });
});
