import { describe, expect, it } from 'vitest';
import { unwrap, type NumaMemoryUsage } from '@allot/core';
import { decideBatch } from './batch.ts';
import { ClusterIndex } from './cluster-index.ts';
import { allocationRequest, nodeView, type NodeShape } from './fixtures.ts';
import { seededRandom } from './random.ts';

/** A host with one NUMA node of 64 GiB free holding `pages` free 1 GiB hugepages. */
function hugepageHost(shape: NodeShape, pages: number) {
  const view = nodeView(shape);
  const numa: NumaMemoryUsage[] = [
    { node: 0, capacityMiB: 65536, pinnedMiB: 0, freeMiB: 65536, hugepages: [{ pageSizeMiB: 1024, total: pages, used: 0, free: pages }] },
  ];
  return { ...view, snapshot: { ...view.snapshot, memory: { ...view.snapshot.memory, numa } } };
}

describe('decideBatch with hugepages', () => {
  it("a member's hugepages are taken from its node for the members after it: two members of one page each go to two hosts of one page", () => {
    const c = ClusterIndex.of([hugepageHost({ id: 'a', memoryMiB: 65536 }, 1), hugepageHost({ id: 'b', memoryMiB: 65536 }, 1)], {
      random: seededRandom(1),
    });
    const members = [0, 1].map((i) =>
      allocationRequest(0, 1, { requestId: `hp-${i}`, memory: { hugepages: { pageSizeMiB: 1024, count: 1 } } }),
    );
    for (const strategy of ['binpack', 'spread'] as const) {
      const d = unwrap(decideBatch(c, members, { constraints: [], allowPreemption: false, strategy }, { random: seededRandom(7) }));
      // Both on one host: its agent refuses the second, the batch rolls back, and every retry decides the same.
      expect(d.fits && [...d.nodes].sort()).toEqual(['a', 'b']);
    }
  });

  it('memory pinned to a named NUMA node is taken from that node for the members after it', () => {
    // Hosts of 256 GiB whose NUMA node 0 has 64 GiB free: two members of 40 GiB on node 0 need two hosts.
    const c = ClusterIndex.of([hugepageHost({ id: 'a', memoryMiB: 262144 }, 0), hugepageHost({ id: 'b', memoryMiB: 262144 }, 0)], {
      random: seededRandom(1),
    });
    const members = [0, 1].map((i) => allocationRequest(40960, 1, { requestId: `pin-${i}`, memory: { numaNode: 0 } }));
    const d = unwrap(
      decideBatch(c, members, { constraints: [], allowPreemption: false, strategy: 'binpack' }, { random: seededRandom(7) }),
    );
    expect(d.fits && [...d.nodes].sort()).toEqual(['a', 'b']);
  });
  it('exclusive cores bound to one NUMA node are taken from a node for the members after it (a host of 3 nodes of 4 holds 3 of 3 vCPUs)', () => {
    const host = (id: string) => {
      const view = nodeView({ id, cores: 12, numaNodes: 3, memoryMiB: 65536 });
      const cpuNuma = [0, 1, 2].map((node) => ({ node, sharedCores: 4, exclusiveCores: 0, reservedCores: 0, idleCores: 4 }));
      const memNuma = [0, 1, 2].map((node) => ({ node, capacityMiB: 16384, pinnedMiB: 0, freeMiB: 16384, hugepages: [] }));
      return {
        ...view,
        snapshot: { ...view.snapshot, cpu: { ...view.snapshot.cpu, numa: cpuNuma }, memory: { ...view.snapshot.memory, numa: memNuma } },
      };
    };
    const c = ClusterIndex.of([host('a'), host('b')], { random: seededRandom(1) });
    const members = [0, 1, 2, 3].map((i) => allocationRequest(1024, 3, { requestId: `x-${i}`, cpu: { exclusive: true, numa: 'require' } }));
    for (const cores of ['with the per-core list', 'without it'] as const) {
      const idx =
        cores === 'with the per-core list'
          ? c
          : ClusterIndex.of(
              [host('a'), host('b')].map((v) => ({ ...v, snapshot: { ...v.snapshot, cpu: { ...v.snapshot.cpu, cores: [] } } })),
              { random: seededRandom(1) },
            );
      const d = unwrap(
        decideBatch(idx, members, { constraints: [], allowPreemption: false, strategy: 'binpack' }, { random: seededRandom(7) }),
      );
      expect(d.fits && [...d.nodes].sort(), cores).toEqual(['a', 'a', 'a', 'b']);
    }
  });
});
