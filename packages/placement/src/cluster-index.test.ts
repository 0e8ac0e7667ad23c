import { describe, expect, it } from 'vitest';
import type { CapacityEntry, CandidateSource } from './snapshot.ts';
import { ClusterIndex, MAX_DOMAIN_LABELS } from './cluster-index.ts';
import { nodeView } from './fixtures.ts';
import { seededRandom } from './random.ts';

function drain(source: CandidateSource): string[] {
  const out: string[] = [];
  for (let e: CapacityEntry | undefined = source.next(); e !== undefined; e = source.next()) out.push(e.nodeId);
  return out;
}

const need = (memoryMiB: number, vcpus: number, exclusive = false) => ({ memoryMiB, vcpus, exclusive });

describe('ClusterIndex', () => {
  const views = [
    nodeView({ id: 'a', memoryMiB: 8192, cores: 4 }),
    nodeView({ id: 'b', memoryMiB: 4096, cores: 16 }),
    nodeView({ id: 'c', memoryMiB: 16384, cores: 2 }),
    nodeView({ id: 'd', memoryMiB: 2048, cores: 8 }),
    nodeView({ id: 'x', memoryMiB: 65536, cores: 64, cordoned: true }),
  ];

  it('yields only nodes that fit memory and cpu, tightest memory first or emptiest first', () => {
    const index = ClusterIndex.of(views, { random: seededRandom(3) });
    expect(drain(index.byFreeMemory(need(3000, 4), 'ascending'))).toEqual(['b', 'a']);
    expect(drain(index.byFreeMemory(need(3000, 4), 'descending'))).toEqual(['a', 'b']);
    expect(drain(index.byFreeMemory(need(1, 1), 'descending'))).toEqual(['c', 'a', 'b', 'd']);
  });

  it('keeps unschedulable nodes out of the candidates and counts them by reason', () => {
    const index = ClusterIndex.of(views);
    expect(index.size).toBe(5);
    expect(index.schedulableCount).toBe(4);
    expect(index.stateCounts()).toEqual({ 'node not ready': 0, 'node cordoned': 1, 'node unhealthy': 0 });
  });

  it('moves a node when a new snapshot changes its free capacity, and forgets removed nodes', () => {
    const index = ClusterIndex.of(views);
    index.upsert(nodeView({ id: 'c', memoryMiB: 16384, memoryCommitted: 15000, cores: 2, seq: 2 }));
    expect(drain(index.byFreeMemory(need(1, 1), 'descending'))).toEqual(['a', 'b', 'd', 'c']);
    expect(index.countShortOfMemory(3000)).toBe(2);
    expect(index.remove('a')).toBe(true);
    expect(index.remove('a')).toBe(false);
    expect(drain(index.byFreeMemory(need(1, 1), 'descending'))).toEqual(['b', 'd', 'c']);
    index.upsert(nodeView({ id: 'x', memoryMiB: 65536, cores: 64, seq: 2 }));
    expect(index.stateCounts()['node cordoned']).toBe(0);
    expect(drain(index.byFreeMemory(need(1, 1), 'descending'))[0]).toBe('x');
  });

  it('ignores a snapshot older than the one it holds from the same boot', () => {
    const index = ClusterIndex.of([nodeView({ id: 'a', memoryCommitted: 1000, seq: 5 })]);
    expect(index.upsert(nodeView({ id: 'a', memoryCommitted: 0, seq: 4 }))).toBe(false);
    expect(index.get('a')?.snapshot.memory.committed).toBe(1000);
  });

  it('visits exclusive requests by idle cores, not by shared vCPUs', () => {
    const index = ClusterIndex.of([
      nodeView({ id: 'busy', cores: 8, cpuOvercommit: 4, sharedVcpusCommitted: 28 }), // needs 7 of 8 cores: 1 idle
      nodeView({ id: 'idle', cores: 8, cpuOvercommit: 4, sharedVcpusCommitted: 4 }), // needs 1 core: 7 idle
    ]);
    expect(drain(index.byFreeMemory(need(1, 4), 'ascending')).sort()).toEqual(['busy', 'idle']);
    expect(drain(index.byFreeMemory(need(1, 4, true), 'ascending'))).toEqual(['idle']);
  });

  it('walks in node-id order after a cursor, wrapping around', () => {
    const index = ClusterIndex.of(views);
    expect(drain(index.inStableOrder(need(1, 1), 'b'))).toEqual(['c', 'd', 'a', 'b']);
    expect(drain(index.inStableOrder(need(1, 1), 'bb'))).toEqual(['c', 'd', 'a', 'b']);
    expect(drain(index.inStableOrder(need(1, 8), 'b'))).toEqual(['d', 'b']);
    expect(index.stableRank('c')).toBe(2);
    expect(index.stableRank('c', true)).toBe(3);
  });

  it('visits every fitting node exactly once from a random start, and the start varies', () => {
    const many = Array.from({ length: 50 }, (_, i) => nodeView({ id: `n${String(i).padStart(2, '0')}`, memoryMiB: 1024 * (i + 1) }));
    const index = ClusterIndex.of(many, { random: seededRandom(11) });
    const random = seededRandom(5);
    const firsts = new Set<string>();
    for (let i = 0; i < 20; i += 1) {
      const seen = drain(index.byFreeMemory(need(10 * 1024, 1), 'random', random));
      expect(seen.slice().sort()).toEqual(
        many
          .slice(9)
          .map((v) => v.nodeId)
          .sort(),
      );
      firsts.add(seen[0] as string);
    }
    expect(firsts.size).toBeGreaterThan(5);
  });

  it('tallies groups and tenants per failure domain as snapshots change', () => {
    const index = ClusterIndex.of([
      nodeView({ id: 'a1', labels: { zone: 'a' }, groups: { web: 2 } }),
      nodeView({ id: 'a2', labels: { zone: 'a' }, groups: { web: 1 }, tenants: { t1: { vms: 3, memoryMiB: 1, vcpus: 1 } } }),
      nodeView({ id: 'b1', labels: { zone: 'b' } }),
      nodeView({ id: 'none' }),
    ]);
    expect(index.domains('zone').get('a')?.groups.get('t1/web')).toBe(3);
    expect(index.domains('zone').get('a')?.tenants.get('t1')).toBe(3);
    index.upsert(nodeView({ id: 'a1', labels: { zone: 'a' }, groups: {}, seq: 2 }));
    expect(index.domains('zone').get('a')?.groups.get('t1/web')).toBe(1);
    expect(index.domains('zone').has(null)).toBe(true);
    // A label first asked about later is built from the nodes already known.
    expect(index.domains('rack').get(null)?.groups.get('t1/web')).toBe(1);
    expect(drain(index.byFreeMemoryInDomain('zone', 'a', need(1, 1), 'descending')).sort()).toEqual(['a1', 'a2']);
  });
});

describe('ClusterIndex: domain labels chosen by callers', () => {
  it('tracks at most MAX_DOMAIN_LABELS labels (the configured ones kept), however many distinct labels requests name', () => {
    const index = ClusterIndex.of([nodeView({ id: 'a', memoryMiB: 8192, cores: 4, labels: { zone: 'z1', rack: 'r1' } })], {
      random: seededRandom(1),
      domainLabels: ['zone'],
    });
    for (let i = 0; i < 1_000; i++) index.domains(`label-${i}`);
    expect(index.trackedDomainLabels).toBeLessThanOrEqual(MAX_DOMAIN_LABELS);
    // The configured label stays tracked, and a label evicted then asked again is rebuilt correctly.
    expect([...index.domains('zone').keys()]).toEqual(['z1']);
    expect([...index.domains('rack').keys()]).toEqual(['r1']);
    expect(index.trackedDomainLabels).toBeLessThanOrEqual(MAX_DOMAIN_LABELS);
  });
});
