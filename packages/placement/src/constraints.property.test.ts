import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PlacementOptionsSchema, unwrap, type Taint, type Toleration } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import { allocationRequest, nodeView, type NodeShape } from './fixtures.ts';
import { decide } from './decide.ts';
import { seededRandom } from './random.ts';
import { tolerates } from './taints.ts';

const zones = ['z1', 'z2', 'z3', 'z4'];

const spreadCluster = fc.array(
  fc.record({
    zone: fc.constantFrom(...zones, undefined),
    cordoned: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
    memGiB: fc.integer({ min: 1, max: 8 }),
  }),
  { minLength: 1, maxLength: 24 },
);

/** The group's allocations per labelled domain that has a schedulable node. */
function skewOf(shapes: NodeShape[]): number {
  const live = new Set(shapes.filter((s) => !s.cordoned && s.labels?.zone !== undefined).map((s) => s.labels?.zone as string));
  const counts = new Map<string, number>([...live].map((z) => [z, 0]));
  for (const s of shapes) {
    const z = s.labels?.zone;
    if (z !== undefined && live.has(z)) counts.set(z, (counts.get(z) ?? 0) + (s.groups?.web ?? 0));
  }
  return counts.size === 0 ? 0 : Math.max(...counts.values()) - Math.min(...counts.values());
}

const zoneLabel = (zone: string | undefined): Record<string, string> => (zone === undefined ? {} : { zone });

describe('topology spread, property', () => {
  it('placing one after another from an even start, the skew never exceeds maxSkew, under every strategy', () => {
    fc.assert(
      fc.property(
        spreadCluster,
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom('binpack', 'spread', 'round-robin', 'spread-domain'),
        fc.integer({ min: 1, max: 40 }),
        (cluster, maxSkew, strategy, placements) => {
          const shapes: NodeShape[] = cluster.map((c, i) => ({
            id: `n${i}`,
            memoryMiB: c.memGiB * 1024,
            cordoned: c.cordoned,
            labels: zoneLabel(c.zone),
            groups: {},
          }));
          const options = PlacementOptionsSchema.parse({
            strategy,
            group: { name: 'web', maxPerNode: 1000 },
            topologySpread: { topologyKey: 'zone', maxSkew },
          });
          for (let k = 0; k < placements; k += 1) {
            const index = ClusterIndex.of(shapes.map(nodeView), { random: seededRandom(k) });
            const d = unwrap(decide(index, allocationRequest(256, 1, { requestId: `r${k}` }), options, { random: seededRandom(k) }));
            if (d.candidates.length === 0) break;
            for (const id of d.candidates) expect(shapes.find((s) => s.id === id)?.labels?.zone).toBeDefined();
            const chosen = shapes.find((s) => s.id === d.candidates[0]) as NodeShape;
            chosen.groups = { web: (chosen.groups?.web ?? 0) + 1 };
            chosen.memoryCommitted = (chosen.memoryCommitted ?? 0) + 256;
            expect(skewOf(shapes)).toBeLessThanOrEqual(maxSkew);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('every candidate, from any start, leaves its domain at most maxSkew above the least loaded', () => {
    fc.assert(
      fc.property(
        spreadCluster,
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 24, maxLength: 24 }),
        fc.integer({ min: 1, max: 4 }),
        (cluster, webs, maxSkew) => {
          const shapes: NodeShape[] = cluster.map((c, i) => ({
            id: `n${i}`,
            cordoned: c.cordoned,
            labels: zoneLabel(c.zone),
            groups: { web: webs[i] as number },
          }));
          const options = PlacementOptionsSchema.parse({
            group: { name: 'web', maxPerNode: 1000 },
            topologySpread: { topologyKey: 'zone', maxSkew },
          });
          const d = unwrap(
            decide(ClusterIndex.of(shapes.map(nodeView)), allocationRequest(256, 1), options, {
              random: seededRandom(1),
              maxCandidates: 50,
            }),
          );
          for (const id of d.candidates) {
            const after = shapes.map((s) => (s.id === id ? { ...s, groups: { web: (s.groups?.web ?? 0) + 1 } } : s));
            const live = [...new Set(shapes.filter((s) => !s.cordoned && s.labels?.zone !== undefined).map((s) => s.labels?.zone))];
            const tally = (z: string | undefined, list: NodeShape[]) =>
              list.filter((s) => s.labels?.zone === z).reduce((n, s) => n + (s.groups?.web ?? 0), 0);
            const min = Math.min(...live.map((z) => tally(z, shapes)));
            const zone = shapes.find((s) => s.id === id)?.labels?.zone;
            expect(tally(zone, after) - min).toBeLessThanOrEqual(maxSkew);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

const key = fc.constantFrom('dedicated', 'maintenance', 'gpu');
const value = fc.constantFrom('', 'a', 'b');
const taintArb: fc.Arbitrary<Taint> = fc.record({ key, value, effect: fc.constant('NoSchedule' as const) });
const tolerationArb: fc.Arbitrary<Toleration> = fc.record({ key, operator: fc.constantFrom('Equal' as const, 'Exists' as const), value });

describe('taints, property', () => {
  it('a candidate has only taints the request tolerates, and a node left out with room was refused for a taint', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(taintArb, { maxLength: 3 }), { minLength: 1, maxLength: 20 }),
        fc.array(tolerationArb, { maxLength: 3 }),
        (taintsPerNode, tolerations) => {
          const shapes: NodeShape[] = taintsPerNode.map((taints, i) => ({ id: `n${i}`, taints }));
          const d = unwrap(
            decide(ClusterIndex.of(shapes.map(nodeView)), allocationRequest(256, 1), PlacementOptionsSchema.parse({ tolerations }), {
              random: seededRandom(1),
              maxCandidates: 50,
            }),
          );
          const ok = shapes.filter((s) => (s.taints ?? []).every((t) => tolerations.some((tol) => tolerates(tol, t))));
          expect([...d.candidates].sort()).toEqual(ok.map((s) => s.id).sort());
          const refusedForTaint = Object.entries(d.rejected)
            .filter(([r]) => r.startsWith('node(s) had untolerated taint'))
            .reduce((n, [, c]) => n + c, 0);
          expect(refusedForTaint).toBe(shapes.length - ok.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('affinity, property', () => {
  it('with a required per-zone term, every candidate is in a zone holding the group', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ zone: fc.constantFrom(...zones, undefined), db: fc.integer({ min: 0, max: 2 }) }), {
          minLength: 1,
          maxLength: 20,
        }),
        (nodes) => {
          const shapes: NodeShape[] = nodes.map((n, i) => ({
            id: `n${i}`,
            labels: zoneLabel(n.zone),
            groups: n.db > 0 ? { db: n.db } : ({} as Record<string, number>),
          }));
          const d = unwrap(
            decide(
              ClusterIndex.of(shapes.map(nodeView)),
              allocationRequest(256, 1),
              PlacementOptionsSchema.parse({ affinity: [{ group: 'db', topologyKey: 'zone' }] }),
              { random: seededRandom(1), maxCandidates: 50 },
            ),
          );
          const withDb = new Set(shapes.filter((s) => (s.groups?.db ?? 0) > 0 && s.labels?.zone !== undefined).map((s) => s.labels?.zone));
          const expected = shapes.filter((s) => withDb.has(s.labels?.zone)).map((s) => s.id);
          expect([...d.candidates].sort()).toEqual(expected.sort());
        },
      ),
      { numRuns: 200 },
    );
  });
});
