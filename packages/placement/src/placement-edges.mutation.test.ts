import { unwrap, type LabelConstraint, type NodeView, type PlacementOptions } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { ClusterIndex } from './cluster-index.ts';
import { decide } from './decide.ts';
import { labelsSatisfy, notTried } from './filters.ts';
import { allocation, allocationRequest, nodeHolding, nodeView, type NodeShape } from './fixtures.ts';
import { largestNumaSharedCores, sharedCoreCount } from './node-capacity.ts';
import { planPreemptionAmong, preemptionTargets } from './post-filter.ts';
import { seededRandom } from './random.ts';
import { sortedReasons, unavailableMessage } from './rejections.ts';
import type { CapacityEntry, CandidateSource } from './snapshot.ts';

/*
 * Placement at its edges: the preemption post-filter's bounds and its choice among nodes, label operators, the default
 * weights, ties between equal nodes, the spread-domain walk's domain order, the reasons' order, and shared cores read
 * from the core list. Written against the survivors of a mutation run (docs/benchmarks.md, Mutation testing).
 */

const opts = (more: Partial<PlacementOptions> = {}): PlacementOptions => ({ constraints: [], allowPreemption: true, ...more });
const cluster = (shapes: NodeShape[]) => ClusterIndex.of(shapes.map(nodeView), { random: seededRandom(1) });
const ctx = (more: object = {}) => ({ random: seededRandom(3), ...more });
const high = (memoryMiB = 4096, vcpus = 1) => allocationRequest(memoryMiB, vcpus, { priority: 50 });

function drain(source: CandidateSource): string[] {
  const out: string[] = [];
  for (let e: CapacityEntry | undefined = source.next(); e !== undefined; e = source.next()) out.push(e.nodeId);
  return out;
}

describe('preemption targets', () => {
  const holding = (shape: NodeShape, ...held: [number, number][]) =>
    nodeHolding(
      shape,
      held.map(([memoryMiB, priority], i) => allocation(`${shape.id}:${i + 1}`, shape.id, memoryMiB, 1, priority)),
    );

  it('refuses options decide would refuse', () => {
    const c = cluster([{ id: 'a' }]);
    expect(preemptionTargets(c, high(), opts({ strategy: 'manual' }), ctx(), 5)).toMatchObject({
      ok: false,
      error: { code: 'invalid_request' },
    });
  });

  it('visits at most maxVisits nodes', () => {
    const views = [
      holding({ id: 'a-roomy', memoryMiB: 65536, labels: { zone: 'other' } }, [65536, 0]),
      holding({ id: 'b-roomy', memoryMiB: 32768, labels: { zone: 'other' } }, [32768, 0]),
      holding({ id: 'c-full', memoryMiB: 8192, labels: { zone: 'z1' } }, [8192, 0]),
    ];
    const tight = ClusterIndex.of(views, { random: seededRandom(1) });
    const inZ1 = opts({ constraints: [{ key: 'zone', op: 'In', values: ['z1'] }] });
    expect(unwrap(preemptionTargets(tight, high(4096), inZ1, ctx({ maxVisits: 2 }), 5)).nodes).toEqual([]);
    expect(unwrap(preemptionTargets(tight, high(4096), inZ1, ctx({ maxVisits: 3 }), 5)).nodes).toEqual(['c-full']);
  });

  it('names a node whose shared CPU is full: eviction frees vCPUs too', () => {
    const full = nodeHolding({ id: 'cpu-full', memoryMiB: 16384, cores: 4 }, [allocation('cpu-full:1', 'cpu-full', 1024, 4, 0)]);
    const c = ClusterIndex.of([full], { random: seededRandom(1) });
    expect(unwrap(preemptionTargets(c, high(1024, 2), opts(), ctx(), 5)).nodes).toEqual(['cpu-full']);
  });

  it('ranks the sample by the estimated sum of victim priorities, then their count', () => {
    const c = ClusterIndex.of(
      [
        holding({ id: 'many', memoryMiB: 8192 }, [2048, 0], [2048, 0], [2048, 0], [2048, 0]),
        holding({ id: 'one', memoryMiB: 8192 }, [8192, 0]),
        holding({ id: 'costly', memoryMiB: 8192 }, [2048, 0], [6144, 5]),
      ],
      { random: seededRandom(1) },
    );
    expect(unwrap(preemptionTargets(c, high(4096), opts(), ctx(), 5))).toMatchObject({ level: 0, nodes: ['one', 'many'] });
    expect(unwrap(preemptionTargets(c, high(4096), opts(), ctx(), 1)).nodes).toEqual(['one']);
  });
});

describe('the plan among the fetched nodes', () => {
  const node = (id: string): NodeShape => ({ id, memoryMiB: 8192, memoryCommitted: 8192 });

  it('takes the lowest highest priority, then the lowest sum, then the fewest victims, the first named among equals, and skips unknown nodes', () => {
    const c = cluster([node('two'), node('one-high'), node('one-low'), node('one-low-too')]);
    const allocs = new Map([
      ['ghost', [allocation('g', 'ghost', 8192, 1, 0)]],
      ['two', [allocation('t1', 'two', 4096, 1, 0), allocation('t2', 'two', 4096, 1, 0)]],
      ['one-high', [allocation('h', 'one-high', 8192, 1, 30)]],
      ['one-low', [allocation('l', 'one-low', 8192, 1, 10)]],
      ['one-low-too', [allocation('l2', 'one-low-too', 8192, 1, 10)]],
    ]);
    const plan = planPreemptionAmong(c, high(6144), allocs);
    expect(plan?.nodeId).toBe('two');
    expect(plan?.victims.map((v) => v.id)).toEqual(['t1', 't2']);
    allocs.delete('two');
    expect(planPreemptionAmong(c, high(6144), allocs)?.nodeId).toBe('one-low');
    allocs.delete('one-low');
    allocs.set('one-high', [allocation('h1', 'one-high', 4096, 1, 10), allocation('h2', 'one-high', 4096, 1, 5)]);
    allocs.set('one-low-too', [allocation('l3', 'one-low-too', 4096, 1, 10), allocation('l4', 'one-low-too', 4096, 1, 0)]);
    expect(planPreemptionAmong(c, high(6144), allocs)?.nodeId).toBe('one-low-too'); // the same highest, a lower sum
  });

  it('ranks plans of the same size by their highest priority, not their lowest', () => {
    const c = cluster([node('wide'), node('narrow')]);
    const allocs = new Map([
      ['wide', [allocation('w0', 'wide', 4096, 1, 0), allocation('w5', 'wide', 4096, 1, 5)]],
      ['narrow', [allocation('n3', 'narrow', 4096, 1, 3), allocation('n3b', 'narrow', 4096, 1, 3)]],
    ]);
    expect(planPreemptionAmong(c, high(8192), allocs)?.nodeId).toBe('narrow');
  });

  it('a node where the request already fits is no eviction plan', () => {
    const c = cluster([{ id: 'roomy', memoryMiB: 8192 }, node('full')]);
    const allocs = new Map([
      ['roomy', [allocation('r', 'roomy', 1024, 1, 0)]],
      ['full', [allocation('f1', 'full', 4096, 1, 0), allocation('f2', 'full', 4096, 1, 0)]],
    ]);
    expect(planPreemptionAmong(c, high(6144), allocs)?.nodeId).toBe('full');
  });
});

describe('label operators', () => {
  it('NotIn lets a node with another value or without the label through; DoesNotExist only one without it', () => {
    const notIn: LabelConstraint = { key: 'zone', op: 'NotIn', values: ['z1'] };
    expect(labelsSatisfy({ zone: 'z2' }, notIn)).toBe(true);
    expect(labelsSatisfy({}, notIn)).toBe(true);
    expect(labelsSatisfy({ zone: 'z1' }, notIn)).toBe(false);
    const absent: LabelConstraint = { key: 'gpu', op: 'DoesNotExist', values: [] };
    expect(labelsSatisfy({}, absent)).toBe(true);
    expect(labelsSatisfy({ gpu: 'a100' }, absent)).toBe(false);
  });

  it('a request with no tried nodes passes the not-tried filter', () => {
    const request = allocationRequest(1, 1);
    const step = {
      request,
      options: opts(),
      demand: { memoryMiB: 1, vcpus: 1, exclusive: false, numa: 'any' as const },
      weights: { cpu: 1, memory: 1 },
    };
    expect(notTried(step, nodeView({ id: 'a' }))).toBeNull();
    expect(notTried({ ...step, exclude: new Set(['a']) }, nodeView({ id: 'a' }))).toEqual({ reason: expect.any(String) });
  });
});

describe('decide', () => {
  it('refuses a manual placement without a node and weights that are all zero, saying which field', () => {
    const c = cluster([{ id: 'a' }]);
    expect(decide(c, high(), opts({ strategy: 'manual' }), ctx())).toMatchObject({
      ok: false,
      error: { message: 'placement.nodeId: strategy manual needs the node to use' },
    });
    expect(decide(c, high(), opts({ weights: { cpu: 0, memory: 0 } }), ctx())).toMatchObject({
      ok: false,
      error: { message: 'placement.weights: at least one weight must be above 0' },
    });
  });

  it('says a named node fits, having looked at every node', () => {
    const d = unwrap(decide(cluster([{ id: 'a' }, { id: 'b' }]), high(), opts({ strategy: 'manual', nodeId: 'b' }), ctx()));
    expect(d).toMatchObject({ candidates: ['b'], message: 'Node b (named) fits.', exhaustive: true, examined: 1 });
  });

  it('weighs memory and CPU equally by default', () => {
    // Visited tightest memory first: memory-busy (75% memory, no CPU), then cpu-busy (50% memory, 15 of 16 vCPUs).
    const c = cluster([
      { id: 'memory-busy', memoryMiB: 16384, memoryCommitted: 12288, cores: 16 },
      { id: 'cpu-busy', memoryMiB: 16384, memoryCommitted: 8192, cores: 16, sharedVcpusCommitted: 15 },
    ]);
    expect(unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'binpack' }), ctx())).candidates).toEqual([
      'cpu-busy',
      'memory-busy',
    ]);
  });

  it('keeps equal nodes in the order the walk visited them', () => {
    const c = cluster(['a', 'b', 'c', 'd'].map((id) => ({ id })));
    const visited = drain(c.byFreeMemory({ memoryMiB: 1024, vcpus: 1, exclusive: false }, 'ascending'));
    expect(unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'binpack' }), ctx({ maxCandidates: 4 }))).candidates).toEqual(
      visited,
    );
  });

  it('spread-domain walks the least loaded domain first, then domains by name, unlabelled nodes last', () => {
    // 12 identical nodes, 4 per domain: the sample (about log2 12 = 4 nodes) is the first domain walked.
    const shapes: NodeShape[] = [];
    for (const [zone, load] of [
      ['z', 0],
      ['m', 0],
      [undefined, 0],
      ['a', 1],
    ] as const) {
      for (let i = 0; i < 3; i += 1)
        shapes.push({
          id: `${zone ?? 'none'}-${i}`,
          ...(zone === undefined ? {} : { labels: { zone } }),
          groups: { web: i === 0 ? load : 0 },
        });
    }
    const first = unwrap(
      decide(
        cluster(shapes),
        allocationRequest(1024, 1),
        opts({ strategy: 'spread-domain', group: { name: 'web', maxPerNode: 10 } }),
        ctx({ maxCandidates: 1 }),
      ),
    );
    expect(first.candidates[0]?.startsWith('m-')).toBe(true);
    const withoutM = shapes.filter((s) => !s.id.startsWith('m-'));
    const second = unwrap(
      decide(
        cluster(withoutM),
        allocationRequest(1024, 1),
        opts({ strategy: 'spread-domain', group: { name: 'web', maxPerNode: 10 } }),
        ctx({ maxCandidates: 1 }),
      ),
    );
    expect(second.candidates[0]?.startsWith('z-')).toBe(true);
    const onlyNoneAndA = shapes.filter((s) => s.id.startsWith('none-') || s.id.startsWith('a-'));
    const third = unwrap(
      decide(
        cluster(onlyNoneAndA),
        allocationRequest(1024, 1),
        opts({ strategy: 'spread-domain', group: { name: 'web', maxPerNode: 10 } }),
        ctx({ maxCandidates: 1 }),
      ),
    );
    expect(third.candidates[0]?.startsWith('none-')).toBe(true);
  });
});

describe('reasons', () => {
  it('sorts reasons by count, then by name', () => {
    expect(sortedReasons({ b: 2, a: 2, c: 5, z: 0 })).toEqual([
      ['c', 5],
      ['a', 2],
      ['b', 2],
    ]);
    expect(unavailableMessage(9, { 'node cordoned': 2, 'Insufficient memory': 2 })).toBe(
      '0/9 nodes are available: 2 Insufficient memory, 2 node cordoned.',
    );
  });
});

describe('shared cores from the core list', () => {
  function withCores(view: NodeView, cores: NodeView['snapshot']['cpu']['cores'], sharedCores: number): NodeView {
    return { ...view, snapshot: { ...view.snapshot, cpu: { ...view.snapshot.cpu, cores, sharedCores } } };
  }

  it('counts shared cores in the list, and uses the figure only when there is no list', () => {
    const base = nodeView({ id: 'n', cores: 8, exclusiveCores: 3 });
    expect(sharedCoreCount(withCores(base, base.snapshot.cpu.cores, 99))).toBe(5);
    expect(sharedCoreCount(withCores(base, [], 6))).toBe(6);
  });

  it('the largest NUMA node counts its shared cores only, whichever node comes last', () => {
    const base = nodeView({ id: 'n', cores: 8, numaNodes: 2 });
    const core = (id: number, numa: number, role: 'shared' | 'exclusive') => ({
      id,
      core: id,
      numa,
      socket: 0,
      role,
      utilizationPermille: 0,
    });
    const cores = [
      core(0, 0, 'shared'),
      core(1, 0, 'shared'),
      core(2, 0, 'shared'),
      core(3, 0, 'exclusive'),
      core(4, 1, 'exclusive'),
      core(5, 1, 'exclusive'),
      core(6, 1, 'exclusive'),
      core(7, 1, 'shared'),
    ];
    expect(largestNumaSharedCores(withCores(base, cores, 4))).toBe(3);
    const exclusiveLow = nodeView({ id: 'n', cores: 8, numaNodes: 2, exclusiveCores: 5 });
    expect(largestNumaSharedCores(exclusiveLow)).toBe(3);
  });
});

describe('seeded chance', () => {
  it('is mulberry32: a seed gives the published sequence, so a seeded run replays exactly', () => {
    const r = seededRandom(42);
    expect([r(), r(), r()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  });
});

describe('strategies in the decision', () => {
  it('each decision names its strategy, in its fields and its message', () => {
    const c = cluster([
      { id: 'a', labels: { zone: 'z1' } },
      { id: 'b', labels: { zone: 'z2' } },
    ]);
    for (const strategy of ['binpack', 'spread', 'spread-domain', 'round-robin'] as const) {
      const d = unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy }), ctx()));
      expect(d.strategy).toBe(strategy);
      expect(d.message.endsWith(`(${strategy}).`)).toBe(true);
    }
    expect(unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'manual', nodeId: 'a' }), ctx())).strategy).toBe('manual');
  });

  it('spread ranks by what is left after placement, CPU included, not only by the free memory it walks in', () => {
    // Walked most free memory first: roomy-but-busy (CPU nearly full), then tighter-idle.
    const c = cluster([
      { id: 'roomy-but-busy', memoryMiB: 16384, memoryCommitted: 0, cores: 16, sharedVcpusCommitted: 15 },
      { id: 'tighter-idle', memoryMiB: 16384, memoryCommitted: 4096, cores: 16 },
    ]);
    expect(unwrap(decide(c, allocationRequest(1024, 1), opts({ strategy: 'spread' }), ctx())).candidates).toEqual([
      'tighter-idle',
      'roomy-but-busy',
    ]);
  });
});

describe('preemption for a named node', () => {
  it('names only that node, found directly rather than by a walk, and nothing for a node not in the view', () => {
    const c = ClusterIndex.of(
      [
        nodeHolding({ id: 'roomy', memoryMiB: 65536 }, [allocation('roomy:1', 'roomy', 65536, 1, 0)]),
        nodeHolding({ id: 'named', memoryMiB: 8192 }, [
          allocation('named:1', 'named', 4096, 1, 0),
          allocation('named:2', 'named', 4096, 1, 20),
        ]),
      ],
      { random: seededRandom(1) },
    );
    const manual = (nodeId: string) => opts({ strategy: 'manual', nodeId });
    // The walk would visit roomy first and stop there.
    expect(unwrap(preemptionTargets(c, high(4096), manual('named'), ctx({ maxVisits: 1 }), 5))).toMatchObject({
      level: 0,
      nodes: ['named'],
    });
    expect(unwrap(preemptionTargets(c, high(8192), manual('named'), ctx(), 5))).toMatchObject({ level: 20, nodes: ['named'] });
    expect(unwrap(preemptionTargets(c, high(4096), manual('ghost'), ctx(), 5)).nodes).toEqual([]);
  });
});
