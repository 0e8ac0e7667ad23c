import type { NodeView } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { clusterEfficiency, DEFAULT_REFERENCE, ShapeCounter } from './efficiency.ts';
import { syntheticSnapshot, type SyntheticNode } from './http/fixtures.ts';

const node = (n: SyntheticNode, liveness: NodeView['liveness'] = 'ready'): NodeView => ({
  nodeId: n.nodeId,
  liveness,
  lastSeen: 0,
  snapshot: syntheticSnapshot(n),
});

describe('clusterEfficiency', () => {
  it('counts memory free on a node without vCPUs to go with it as stranded', () => {
    // 16 cores x ratio 4 = 64 vCPUs each; 65,536 - 2,048 reserved = 63,488 MiB effective each.
    const full = node({ nodeId: 'a', cores: 16, memoryMiB: 65_536, memoryCommitted: 0, vcpusCommitted: 64, memoryUsed: 1_000 });
    const empty = node({ nodeId: 'b', cores: 16, memoryMiB: 65_536, memoryCommitted: 0, vcpusCommitted: 0 });
    const r = clusterEfficiency([full, empty], { memoryMiB: 4_096, vcpus: 2 }, 'seen');
    expect(r.nodes).toBe(2);
    // Node b takes min(63,488 / 4,096, 64 / 2) = 15 VMs; node a none (no vCPU free).
    const memory = r.metrics.find((m) => m.resourceType === 'memory');
    expect(memory?.referenceRequestsThatFit).toBe(15);
    expect(memory?.fragmentation).toBeCloseTo((2 * 63_488 - 15 * 4_096) / (2 * 63_488), 6);
    const cpu = r.metrics.find((m) => m.resourceType === 'cpu');
    expect(cpu?.fragmentation).toBeCloseTo((64 - 30) / 64, 6);
    expect(memory?.utilizationEfficiency).toBeCloseTo(1_000 / (2 * 63_488), 9);
    expect(r.reference).toEqual({ memoryMiB: 4_096, vcpus: 2, source: 'seen' });
  });

  it('leaves out nodes a place cannot use: cordoned, suspect, lost', () => {
    const nodes = [
      node({ nodeId: 'c', cordoned: true }),
      node({ nodeId: 's' }, 'suspect'),
      node({ nodeId: 'l' }, 'lost'),
      node({ nodeId: 'r', vcpusCommitted: 8 }),
    ];
    const r = clusterEfficiency(nodes, DEFAULT_REFERENCE, 'default');
    expect(r.nodes).toBe(1);
    const cpu = r.metrics.find((m) => m.resourceType === 'cpu');
    expect(cpu?.referenceRequestsThatFit).toBe(Math.min(Math.floor(63_488 / 2_048), 64 - 8));
  });

  it('answers zeros, not NaN, for an empty cluster', () => {
    const r = clusterEfficiency([], DEFAULT_REFERENCE, 'default');
    for (const m of r.metrics)
      expect([m.allocationEfficiency, m.utilizationEfficiency, m.fragmentation, m.referenceRequestsThatFit]).toEqual([0, 0, 0, 0]);
  });
});

describe('ShapeCounter', () => {
  it('names the shape asked for most often, and stops learning new shapes past its bound', () => {
    const shapes = new ShapeCounter(2);
    expect(shapes.mostCommon()).toBeUndefined();
    shapes.record(1_024, 1);
    shapes.record(4_096, 2);
    shapes.record(4_096, 2);
    shapes.record(8_192, 4); // a third shape: not counted
    shapes.record(8_192, 4);
    shapes.record(8_192, 4);
    shapes.record(0, 2); // not a VM shape
    expect(shapes.mostCommon()).toEqual({ memoryMiB: 4_096, vcpus: 2 });
  });
});
