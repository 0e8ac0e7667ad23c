import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PREEMPTION_PRIORITY_GAP, unwrap, type Allocation, type PlacementOptions } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import { allocation, allocationRequest, nodeHolding, type NodeShape } from './fixtures.ts';
import { fitsAfter, planPreemption } from './preemption.ts';
import { planPreemptionAmong, preemptionTargets, rankPreemptionPlans } from './post-filter.ts';
import { seededRandom } from './random.ts';

const opts = (more: Partial<PlacementOptions> = {}): PlacementOptions => ({ constraints: [], allowPreemption: true, ...more });
const ctx = { random: seededRandom(3) };
const high = allocationRequest(4096, 1, { priority: 50 });

/** Nodes of 8 GiB holding the given allocations (id `<node>:<i>`, memory, priority); the snapshot is what the agent publishes. */
function fleet(nodes: Record<string, [number, number][]>, more: Record<string, Partial<NodeShape>> = {}) {
  const lists = new Map<string, Allocation[]>();
  const views = Object.entries(nodes).map(([id, held]) => {
    const list = held.map(([memoryMiB, priority], i) => allocation(`${id}:${i + 1}`, id, memoryMiB, 1, priority));
    lists.set(id, list);
    return nodeHolding({ id, memoryMiB: 8192, ...more[id] }, list);
  });
  return { index: ClusterIndex.of(views, { random: seededRandom(1) }), lists };
}

/** Steps 1-3 as the coordinator runs them: targets, the named nodes' lists, the ranked plans. */
function plan(f: ReturnType<typeof fleet>, request = high, options = opts(), maxNodes = 4) {
  const targets = unwrap(preemptionTargets(f.index, request, options, ctx, maxNodes));
  const fetched = new Map(targets.nodes.map((n) => [n, f.lists.get(n) ?? []]));
  return { targets, plans: rankPreemptionPlans(f.index, request, fetched, targets.level ?? undefined) };
}

describe('preemption post-filter', () => {
  it('finds the node with the cheapest victims anywhere in the cluster, not among the roomiest 16', () => {
    // 40 roomy nodes whose only victims have priority 30; one node, the fullest, holds priority-0 victims.
    const nodes: Record<string, [number, number][]> = {};
    for (let i = 0; i < 40; i += 1) nodes[`roomy-${String(i).padStart(2, '0')}`] = [[6144, 30]];
    nodes['cheap'] = [
      [4096, 0],
      [4096, 0],
    ];
    const { targets, plans } = plan(fleet(nodes));
    expect(targets.level).toBe(0);
    expect(targets.nodes).toEqual(['cheap']);
    expect(plans[0]?.nodeId).toBe('cheap');
    expect(plans[0]?.victims.map((v) => v.id)).toEqual(['cheap:1']);
  });

  it('orders plans as kube-scheduler does: lowest highest victim priority, then lowest sum, then fewest victims', () => {
    const f = fleet({
      'one-at-20': [[8192, 20]],
      'two-at-0-and-20': [
        [4096, 0],
        [4096, 20],
      ],
      'three-at-5': [
        [2048, 5],
        [2048, 5],
        [4096, 5],
      ],
    });
    const { targets, plans } = plan(f, allocationRequest(8192, 1, { priority: 50 }));
    expect(targets.level).toBe(5);
    expect(plans.map((p) => p.nodeId)).toEqual(['three-at-5']);
    // At level 20: the sum 20 beats the sum 20+0 only by count, and both beat none.
    const at20 = rankPreemptionPlans(
      f.index,
      allocationRequest(8192, 1, { priority: 50 }),
      new Map([...f.lists].filter(([n]) => n !== 'three-at-5')),
    );
    expect(at20.map((p) => [p.nodeId, p.victims.length])).toEqual([
      ['one-at-20', 1],
      ['two-at-0-and-20', 2],
    ]);
  });

  it('keeps every filter but capacity: state, labels, anti-affinity, tenant quota, tried nodes, the named node', () => {
    const full: [number, number][] = [[8192, 0]];
    const f = fleet(
      { cordoned: full, 'other-zone': full, 'group-full': full, 'quota-full': full, tried: full, ok: full },
      {
        cordoned: { cordoned: true },
        'other-zone': { labels: { zone: 'z2' } },
        'group-full': { labels: { zone: 'z1' }, groups: { web: 1 } },
        'quota-full': { labels: { zone: 'z1' }, tenants: { t1: { vms: 2, memoryMiB: 1, vcpus: 1 } } },
        tried: { labels: { zone: 'z1' } },
        ok: { labels: { zone: 'z1' } },
      },
    );
    const options = opts({ constraints: [{ key: 'zone', op: 'In', values: ['z1'] }], group: { name: 'web', maxPerNode: 1 } });
    const context = { ...ctx, maxVmsPerNode: 2, exclude: new Set(['tried']) };
    expect(unwrap(preemptionTargets(f.index, high, options, context, 10)).nodes).toEqual(['ok']);
    expect(unwrap(preemptionTargets(f.index, high, opts({ strategy: 'manual', nodeId: 'other-zone' }), ctx, 10))).toMatchObject({
      level: 0,
      nodes: ['other-zone'],
    });
  });

  it('names no node when nothing low enough would make room, and never a node too small even emptied', () => {
    const f = fleet({ close: [[8192, 45]], small: [[2048, 0]] }, { small: { memoryMiB: 2048 } });
    expect(unwrap(preemptionTargets(f.index, high, opts(), ctx, 10))).toEqual({ level: null, nodes: [], examined: expect.any(Number) });
    expect(planPreemptionAmong(f.index, high, f.lists)).toBeNull();
  });

  it('reads a node from an agent that publishes no per-priority figures as having nothing to evict', () => {
    const index = ClusterIndex.of([nodeHolding({ id: 'old', memoryMiB: 8192, memoryCommitted: 8192 }, [])], { random: seededRandom(1) });
    expect(unwrap(preemptionTargets(index, high, opts(), ctx, 10)).nodes).toEqual([]);
  });

  it('follows the index: a node whose victims leave is no longer named, one that gains some is', () => {
    const f = fleet({ a: [[8192, 0]], b: [[8192, 40]] });
    expect(unwrap(preemptionTargets(f.index, high, opts(), ctx, 10)).nodes).toEqual(['a']);
    f.index.upsert(nodeHolding({ id: 'a', memoryMiB: 8192, seq: 2 }, [allocation('a:9', 'a', 8192, 1, 45)]));
    f.index.upsert(nodeHolding({ id: 'b', memoryMiB: 8192, seq: 2 }, [allocation('b:9', 'b', 8192, 1, 10)]));
    expect(unwrap(preemptionTargets(f.index, high, opts(), ctx, 10))).toMatchObject({ level: 10, nodes: ['b'] });
  });
});

describe('preemption post-filter, properties', () => {
  const arbAllocation = fc.record({
    memoryMiB: fc.integer({ min: 256, max: 4096 }),
    vcpus: fc.integer({ min: 1, max: 4 }),
    priority: fc.constantFrom(0, 5, 10, 20, 30, 45, 60),
  });
  const arbNode = fc.record({
    memoryMiB: fc.constantFrom(4096, 8192, 16384),
    cores: fc.constantFrom(4, 8),
    allocations: fc.array(arbAllocation, { maxLength: 6 }),
  });
  const arbCluster = fc.array(arbNode, { minLength: 1, maxLength: 30 });
  const arbRequest = fc.record({
    memoryMiB: fc.integer({ min: 512, max: 8192 }),
    vcpus: fc.integer({ min: 1, max: 4 }),
    priority: fc.constantFrom(10, 25, 40, 55, 70),
  });

  /** Fits the generated allocations into their node (those that do not fit are dropped), as an agent would hold them. */
  function build(
    nodes: readonly { memoryMiB: number; cores: number; allocations: { memoryMiB: number; vcpus: number; priority: number }[] }[],
  ) {
    const lists = new Map<string, Allocation[]>();
    const views = nodes.map((n, i) => {
      const id = `n${String(i).padStart(2, '0')}`;
      const held: Allocation[] = [];
      let mem = 0;
      let cpu = 0;
      for (const [j, a] of n.allocations.entries()) {
        if (mem + a.memoryMiB > n.memoryMiB || cpu + a.vcpus > n.cores) continue;
        mem += a.memoryMiB;
        cpu += a.vcpus;
        held.push(allocation(`${id}:${j + 1}`, id, a.memoryMiB, a.vcpus, a.priority));
      }
      lists.set(id, held);
      return nodeHolding({ id, memoryMiB: n.memoryMiB, cores: n.cores }, held);
    });
    return { index: ClusterIndex.of(views, { random: seededRandom(5) }), lists, views };
  }

  it('a plan frees enough room, evicts only allocations 10 points below the preemptor, at the lowest level any node needs', () => {
    fc.assert(
      fc.property(arbCluster, arbRequest, (nodes, r) => {
        const f = build(nodes);
        const request = allocationRequest(r.memoryMiB, r.vcpus, { priority: r.priority });
        const { targets, plans } = plan(f, request, opts(), 4);
        // Brute force over every node and every allocation list: the lowest highest-victim priority of any plan.
        let lowest: number | null = null;
        for (const view of f.views) {
          if (fitsAfter(view, request, { memoryMiB: 0, sharedVcpus: 0, exclusiveCores: 0 })) continue;
          const p = planPreemption(view, f.lists.get(view.nodeId) ?? [], request);
          if (p === null || p.victims.length === 0) continue;
          // The least highest priority on this node: try each bound from the lowest.
          for (const bound of [...new Set((f.lists.get(view.nodeId) ?? []).map((a) => a.priority))].sort((a, b) => a - b)) {
            if (planPreemption(view, f.lists.get(view.nodeId) ?? [], request, PREEMPTION_PRIORITY_GAP, bound) !== null) {
              lowest = lowest === null ? bound : Math.min(lowest, bound);
              break;
            }
          }
        }
        expect(targets.level).toBe(lowest);
        expect(plans.length > 0).toBe(lowest !== null);
        for (const p of plans) {
          const node = f.index.get(p.nodeId);
          if (node === undefined) throw new Error('plan on an unknown node');
          expect(fitsAfter(node, request, p.freed)).toBe(true);
          for (const v of p.victims) {
            expect(v.priority).toBeLessThanOrEqual(request.priority - PREEMPTION_PRIORITY_GAP);
            expect(v.nodeId).toBe(p.nodeId);
          }
          expect(Math.max(...p.victims.map((v) => v.priority))).toBe(lowest);
        }
      }),
      { numRuns: 300 },
    );
  });
});
