import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PackedCores, withPackedCores, type Allocation, type CoreState, type NodeView, type PlacementOptions } from '@allot/core';
import { decideBatch } from './batch.ts';
import { ClusterIndex } from './cluster-index.ts';
import { decide } from './decide.ts';
import { allocation, allocationRequest, nodeView } from './fixtures.ts';
import { idleSharedCores, sharedCoreCount } from './node-capacity.ts';
import { cellsFreedBy, fitsNumaAfter, homedLoad, wholeUnitsAfter } from './numa-room.ts';
import { seededRandom } from './random.ts';

/*
 * A coordinator holds each node's per-core list packed (@allot/core packed-cores.ts): placement must decide on such a
 * view exactly as on the plain list, in the index, the filters and scorers, the batch overlay and the NUMA room of
 * preemption.
 */

const holders = ['v1', 'v2', 'v3'];

/** A node with some cores exclusive to holders, two threads per physical core, with or without the NUMA counts. */
const nodeArb = (id: string) =>
  fc
    .record({
      cores: fc.integer({ min: 2, max: 24 }).map((n) => n * 2),
      numaNodes: fc.constantFrom(1, 2),
      roles: fc.array(fc.constantFrom<'shared' | 'exclusive' | 'reserved'>('shared', 'shared', 'shared', 'exclusive', 'reserved'), {
        minLength: 48,
        maxLength: 48,
      }),
      holder: fc.array(fc.nat({ max: holders.length - 1 }), { minLength: 48, maxLength: 48 }),
      publishesNuma: fc.boolean(),
      memoryGiB: fc.integer({ min: 1, max: 64 }),
      usedShare: fc.integer({ min: 0, max: 100 }),
      vcpuShare: fc.integer({ min: 0, max: 100 }),
      cpuOvercommit: fc.constantFrom(1, 2, 4),
    })
    .map((r): NodeView => {
      const base = nodeView({
        id,
        cores: r.cores,
        numaNodes: r.numaNodes,
        memoryMiB: r.memoryGiB * 1024,
        memoryCommitted: Math.floor((r.memoryGiB * 1024 * r.usedShare) / 100),
        cpuOvercommit: r.cpuOvercommit,
      });
      const cores: CoreState[] = base.snapshot.cpu.cores.map((c, i) => {
        const role = r.roles[i] ?? 'shared';
        const core = { ...c, core: Math.floor(c.id / 2), role, utilizationPermille: (i * 37) % 1001 };
        return role === 'exclusive' ? { ...core, allocationId: holders[r.holder[i] ?? 0] as string } : core;
      });
      const count = (numa: number | undefined, role: string) =>
        cores.filter((c) => (numa === undefined || c.numa === numa) && c.role === role).length;
      const shared = count(undefined, 'shared');
      const sharedVcpusCapacity = Math.floor((shared * r.cpuOvercommit * 100) / 100);
      const numa = [...new Set(cores.map((c) => c.numa))].map((node) => ({
        node,
        sharedCores: count(node, 'shared'),
        exclusiveCores: count(node, 'exclusive'),
        reservedCores: count(node, 'reserved'),
        idleCores: count(node, 'shared'),
        wholeIdleCores: Math.floor(count(node, 'shared') / 2),
        threadsPerCore: 2,
      }));
      const cpu = {
        ...base.snapshot.cpu,
        cores,
        sharedCores: shared,
        exclusiveCores: count(undefined, 'exclusive'),
        reservedCores: count(undefined, 'reserved'),
        sharedVcpusCapacity,
        sharedVcpusCommitted: Math.floor((sharedVcpusCapacity * r.vcpuShare) / 100),
        ...(r.publishesNuma ? { numa } : {}),
      };
      return { ...base, snapshot: { ...base.snapshot, cpu } };
    });

/** The same view with its list held packed, as the coordinator's view holds it. */
function packed(view: NodeView): NodeView {
  const list = PackedCores.of(view.snapshot.cpu.cores);
  if (list === undefined) throw new Error('the fixture list should pack');
  return { ...view, snapshot: { ...view.snapshot, cpu: withPackedCores(view.snapshot.cpu, list) } };
}

const clusterArb = fc.integer({ min: 1, max: 12 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => nodeArb(`n${i}`))));
const requestArb = fc.record({
  memoryMiB: fc.integer({ min: 0, max: 16 * 1024 }),
  vcpus: fc.integer({ min: 1, max: 12 }),
  exclusive: fc.boolean(),
  numa: fc.constantFrom<'any' | 'prefer' | 'require'>('any', 'prefer', 'require'),
  threadPolicy: fc.constantFrom<'isolate' | 'require' | undefined>(undefined, 'isolate', 'require'),
  strategy: fc.constantFrom<'binpack' | 'spread' | 'round-robin'>('binpack', 'spread', 'round-robin'),
});
type RequestShape = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

const requestOf = (r: RequestShape, i = 0) =>
  allocationRequest(r.memoryMiB, r.vcpus, {
    requestId: `r${i}`,
    cpu: { exclusive: r.exclusive, numa: r.numa, ...(r.exclusive && r.threadPolicy !== undefined ? { threadPolicy: r.threadPolicy } : {}) },
  });

describe('placement on a view holding packed core lists', () => {
  it('decides every request and batch as on the plain lists', () => {
    fc.assert(
      fc.property(clusterArb, fc.array(requestArb, { minLength: 1, maxLength: 4 }), fc.integer(), (views, requests, seed) => {
        const plain = ClusterIndex.of(views, { random: seededRandom(seed) });
        const held = ClusterIndex.of(views.map(packed), { random: seededRandom(seed) });
        for (const v of views) {
          expect(sharedCoreCount(packed(v))).toBe(sharedCoreCount(v));
          expect(idleSharedCores(packed(v))).toBe(idleSharedCores(v));
        }
        const options: PlacementOptions = { strategy: requests[0]?.strategy ?? 'binpack', constraints: [], allowPreemption: false };
        for (const [i, r] of requests.entries()) {
          const ctx = () => ({ random: seededRandom(seed + i) });
          expect(decide(held, requestOf(r, i), options, ctx())).toEqual(decide(plain, requestOf(r, i), options, ctx()));
        }
        const members = requests.map((r, i) => requestOf(r, i));
        expect(decideBatch(held, members, options, { random: seededRandom(seed) })).toEqual(
          decideBatch(plain, members, options, { random: seededRandom(seed) }),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('counts the room preemption frees per NUMA node as on the plain list', () => {
    fc.assert(
      fc.property(
        nodeArb('n1'),
        requestArb,
        fc.subarray(holders),
        fc.array(fc.nat({ max: 47 }), { maxLength: 6 }),
        (view, r, victimIds, homes) => {
          const request = requestOf(r);
          // Exclusive victims on the cores their id holds; a shared one homed on `homes`.
          const victims: Allocation[] = victimIds.map((id) => {
            const base = allocation(id, 'n1', 512, 1, 10, true);
            const cpuset = view.snapshot.cpu.cores.filter((c) => c.allocationId === id).map((c) => c.id);
            return base.cpu === null ? base : { ...base, cpu: { ...base.cpu, cpuset, vcpus: Math.max(1, cpuset.length) } };
          });
          const sharedVictim = allocation('s1', 'n1', 256, homes.length, 10, false);
          const all = sharedVictim.cpu === null ? victims : [...victims, { ...sharedVictim, cpu: { ...sharedVictim.cpu, cpuset: homes } }];
          const homed = homedLoad(all);
          const freed = { memoryMiB: 512 * all.length, sharedVcpus: homes.length, exclusiveCores: victims.length };
          const p = packed(view);
          expect(cellsFreedBy(p, all, homed)).toEqual(cellsFreedBy(view, all, homed));
          const whole = wholeUnitsAfter(view, request, all, homed, freed);
          expect(wholeUnitsAfter(p, request, all, homed, freed)).toEqual(whole);
          const cells = cellsFreedBy(view, all, homed);
          expect(fitsNumaAfter(p, request, cells, freed.memoryMiB, whole)).toBe(
            fitsNumaAfter(view, request, cells, freed.memoryMiB, whole),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
