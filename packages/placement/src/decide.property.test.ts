import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PLACEMENT_STRATEGIES, unwrap, type PlacementOptions } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import {
  ALREADY_TRIED,
  antiAffinity,
  fitsCpu,
  fitsMemory,
  fitsNuma,
  labelConstraint,
  nodeSchedulable,
  tenantQuotaPerNode,
} from './filters.ts';
import { allocationRequest, nodeView, type NodeShape } from './fixtures.ts';
import { decide, demandOf } from './decide.ts';
import { seededRandom } from './random.ts';
import type { Filter, StepContext } from './types.ts';

const zone = fc.constantFrom('z1', 'z2', 'z3', undefined);

const nodeShape = (id: string): fc.Arbitrary<NodeShape> =>
  fc
    .record({
      memoryMiB: fc.integer({ min: 0, max: 64 }).map((g) => g * 1024),
      usedShare: fc.integer({ min: 0, max: 100 }),
      cores: fc.integer({ min: 2, max: 32 }),
      reservedCores: fc.integer({ min: 0, max: 1 }),
      exclusiveCores: fc.integer({ min: 0, max: 2 }),
      numaNodes: fc.constantFrom(1, 2),
      cpuOvercommit: fc.constantFrom(1, 1.5, 2, 4),
      vcpuShare: fc.integer({ min: 0, max: 100 }),
      zone,
      cordoned: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
      liveness: fc.constantFrom('ready', 'ready', 'ready', 'ready', 'suspect', 'lost'),
      unhealthy: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      web: fc.integer({ min: 0, max: 2 }),
      tenantVms: fc.integer({ min: 0, max: 3 }),
    })
    .map((r): NodeShape => {
      const shared = r.cores - r.reservedCores - r.exclusiveCores;
      const capacity = Math.floor((shared * Math.round(r.cpuOvercommit * 100)) / 100);
      return {
        id,
        memoryMiB: r.memoryMiB,
        memoryCommitted: Math.floor((r.memoryMiB * r.usedShare) / 100),
        cores: r.cores,
        reservedCores: r.reservedCores,
        exclusiveCores: r.exclusiveCores,
        numaNodes: r.numaNodes,
        cpuOvercommit: r.cpuOvercommit,
        sharedVcpusCommitted: Math.floor((capacity * r.vcpuShare) / 100),
        labels: r.zone === undefined ? {} : ({ zone: r.zone } as Record<string, string>),
        cordoned: r.cordoned,
        liveness: r.liveness as 'ready' | 'suspect' | 'lost',
        health: r.unhealthy ? { status: 'unhealthy' as const, reasons: ['disk'] } : { status: 'healthy' as const },
        groups: r.web > 0 ? { web: r.web } : {},
        tenants: r.tenantVms > 0 ? { t1: { vms: r.tenantVms, memoryMiB: 1, vcpus: 1 } } : {},
      };
    });

const clusterArb = fc.integer({ min: 1, max: 40 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => nodeShape(`n${i}`))));

const scenario = clusterArb.chain((shapes) =>
  fc.record({
    shapes: fc.constant(shapes),
    memoryMiB: fc.integer({ min: 0, max: 48 * 1024 }),
    vcpus: fc.integer({ min: 1, max: 24 }),
    exclusive: fc.boolean(),
    numa: fc.constantFrom('any', 'prefer', 'require'),
    strategy: fc.constantFrom(...PLACEMENT_STRATEGIES),
    manualIndex: fc.nat({ max: shapes.length }),
    constraint: fc.option(
      fc.record({
        key: fc.constant('zone'),
        op: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist'),
        values: fc.subarray(['z1', 'z2', 'z3']),
      }),
    ),
    group: fc.option(fc.record({ name: fc.constant('web'), maxPerNode: fc.integer({ min: 1, max: 3 }) })),
    maxVmsPerNode: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
    exclude: fc.subarray(
      shapes.map((s) => s.id),
      { maxLength: Math.min(4, shapes.length) },
    ),
    cursor: fc.option(fc.constantFrom(...shapes.map((s) => s.id)), { nil: undefined }),
    seed: fc.integer(),
  }),
);

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function run(s: Scenario) {
  const index = ClusterIndex.of(s.shapes.map(nodeView), { random: seededRandom(s.seed) });
  const request = allocationRequest(s.memoryMiB, s.vcpus, { cpu: { exclusive: s.exclusive, numa: s.numa as 'any' } });
  const options: PlacementOptions = {
    strategy: s.strategy,
    constraints: s.constraint === null ? [] : [s.constraint],
    allowPreemption: false,
    ...(s.strategy === 'manual' ? { nodeId: s.shapes[s.manualIndex]?.id ?? 'ghost' } : {}),
    ...(s.group === null ? {} : { group: s.group }),
  };
  const exclude = new Set(s.exclude);
  const decision = unwrap(
    decide(index, request, options, {
      random: seededRandom(s.seed),
      exclude,
      ...(s.maxVmsPerNode === undefined ? {} : { maxVmsPerNode: s.maxVmsPerNode }),
      ...(s.cursor === undefined ? {} : { roundRobinCursor: s.cursor }),
    }),
  );
  const step: StepContext = {
    request,
    options,
    demand: demandOf(request),
    weights: { cpu: 1, memory: 1 },
    ...(s.maxVmsPerNode === undefined ? {} : { maxVmsPerNode: s.maxVmsPerNode }),
  };
  // Brute force: every node, every filter, in the precedence order (state, memory, cpu, already tried, NUMA, labels,
  // anti-affinity, tenant quota), written out here rather than taken from the plugin registry.
  const tried: Filter = (_ctx, node) => (exclude.has(node.nodeId) ? { reason: ALREADY_TRIED } : null);
  const filters: Filter[] = [
    nodeSchedulable,
    fitsMemory,
    fitsCpu,
    tried,
    fitsNuma,
    ...options.constraints.map(labelConstraint),
    antiAffinity,
    tenantQuotaPerNode,
  ];
  const brute = new Map<string, string | null>();
  for (const view of index.nodes()) {
    let reason: string | null = null;
    for (const f of filters) {
      reason = f(step, view)?.reason ?? null;
      if (reason !== null) break;
    }
    brute.set(view.nodeId, options.strategy === 'manual' && view.nodeId !== options.nodeId ? 'not the named node' : reason);
  }
  return { decision, brute };
}

describe('decide, for random clusters and requests', () => {
  it('returns only candidates that pass every filter and were not tried, each once', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { decision, brute } = run(s);
        expect(new Set(decision.candidates).size).toBe(decision.candidates.length);
        for (const id of decision.candidates) expect(brute.get(id)).toBeNull();
      }),
      { numRuns: 400 },
    );
  });

  it('finds nothing only when a brute-force scan over all nodes finds nothing, with the same counts', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { decision, brute } = run(s);
        const feasible = [...brute.values()].filter((r) => r === null).length;
        expect(decision.candidates.length === 0).toBe(feasible === 0);
        if (decision.candidates.length === 0) {
          const counts: Record<string, number> = {};
          for (const r of brute.values()) if (r !== null) counts[r] = (counts[r] ?? 0) + 1;
          expect(decision.exhaustive).toBe(true);
          expect(decision.rejected).toEqual(counts);
        }
      }),
      { numRuns: 400 },
    );
  });
});
