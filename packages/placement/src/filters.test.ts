import { describe, expect, it } from 'vitest';
import type { LabelConstraint, PlacementOptions } from '@allot/core';
import { allocationRequest, nodeView, type NodeShape } from './fixtures.ts';
import {
  antiAffinity,
  filtersFor,
  firstFailure,
  fitsCpu,
  fitsMemory,
  fitsNuma,
  labelConstraint,
  namedNode,
  nodeSchedulable,
  tenantQuotaPerNode,
} from './filters.ts';
import { demandOf } from './decide.ts';
import type { StepContext } from './types.ts';

function step(
  memoryMiB: number,
  vcpus: number,
  more: { exclusive?: boolean; numa?: 'any' | 'prefer' | 'require'; options?: Partial<PlacementOptions>; maxVmsPerNode?: number } = {},
): StepContext {
  const request = allocationRequest(memoryMiB, vcpus, { cpu: { exclusive: more.exclusive ?? false, numa: more.numa ?? 'any' } });
  const options: PlacementOptions = { constraints: [], allowPreemption: false, ...more.options };
  return {
    request,
    options,
    demand: demandOf(request),
    weights: { cpu: 1, memory: 1 },
    ...(more.maxVmsPerNode === undefined ? {} : { maxVmsPerNode: more.maxVmsPerNode }),
  };
}

describe('filters, one at a time', () => {
  const states: { what: string; shape: Omit<NodeShape, 'id'>; reason: string | null }[] = [
    { what: 'a ready healthy node', shape: {}, reason: null },
    { what: 'a degraded node (still takes work)', shape: { health: { status: 'degraded', reasons: ['hot'] } }, reason: null },
    { what: 'a suspect node', shape: { liveness: 'suspect' }, reason: 'node not ready' },
    { what: 'a lost node', shape: { liveness: 'lost' }, reason: 'node not ready' },
    { what: 'a cordoned node', shape: { cordoned: true }, reason: 'node cordoned' },
    { what: 'an unhealthy node', shape: { health: { status: 'unhealthy', reasons: ['probe'] } }, reason: 'node unhealthy' },
    { what: 'a stopped node', shape: { health: { status: 'stopped' } }, reason: 'node unhealthy' },
  ];
  it.each(states)('node state: $what -> $reason', ({ shape, reason }) => {
    expect(nodeSchedulable(step(1, 1), nodeView({ id: 'n', ...shape }))?.reason ?? null).toBe(reason);
  });

  it.each([
    { free: 1024, ask: 1024, reason: null },
    { free: 1023, ask: 1024, reason: 'Insufficient memory' },
    { free: 0, ask: 1, reason: 'Insufficient memory' },
  ])('memory: $free MiB free, $ask asked -> $reason', ({ free, ask, reason }) => {
    const node = nodeView({ id: 'n', memoryMiB: 4096, memoryCommitted: 4096 - free });
    expect(fitsMemory(step(ask, 0), node)?.reason ?? null).toBe(reason);
  });

  it.each([
    { what: 'free shared vCPUs suffice', cores: 8, ratio: 2, committed: 12, ask: 4, reason: null },
    { what: 'free shared vCPUs short', cores: 8, ratio: 2, committed: 13, ask: 4, reason: 'Insufficient cpu' },
    {
      what: 'more vCPUs than shared cores, though overcommit leaves room',
      cores: 4,
      ratio: 4,
      committed: 0,
      ask: 5,
      reason: 'Insufficient cpu',
    },
  ])('shared cpu: $what', ({ cores, ratio, committed, ask, reason }) => {
    const node = nodeView({ id: 'n', cores, cpuOvercommit: ratio, sharedVcpusCommitted: committed });
    expect(fitsCpu(step(1, ask), node)?.reason ?? null).toBe(reason);
  });

  it.each([
    // 8 shared cores at ratio 2, 6 vCPUs committed need ceil(6/2) = 3 cores: 5 idle.
    { ask: 5, reason: null },
    { ask: 6, reason: 'Insufficient idle cores' },
  ])('exclusive cpu counts idle shared cores: $ask asked of 5 idle -> $reason', ({ ask, reason }) => {
    const node = nodeView({ id: 'n', cores: 10, reservedCores: 1, exclusiveCores: 1, cpuOvercommit: 2, sharedVcpusCommitted: 6 });
    expect(fitsCpu(step(1, ask, { exclusive: true }), node)?.reason ?? null).toBe(reason);
  });

  it('numa require needs one NUMA node with enough shared cores; prefer does not', () => {
    const node = nodeView({ id: 'n', cores: 16, numaNodes: 2 });
    expect(fitsNuma(step(1, 8, { numa: 'require' }), node)).toBeNull();
    expect(fitsNuma(step(1, 9, { numa: 'require' }), node)?.reason).toBe('NUMA node too small');
    expect(fitsNuma(step(1, 9, { numa: 'prefer' }), node)).toBeNull();
  });

  const constraints: { c: LabelConstraint; labels: Record<string, string>; reason: string | null }[] = [
    { c: { key: 'zone', op: 'In', values: ['z1'] }, labels: { zone: 'z1' }, reason: null },
    { c: { key: 'zone', op: 'In', values: ['z1'] }, labels: { zone: 'z2' }, reason: 'label constraint zone In [z1]' },
    { c: { key: 'zone', op: 'In', values: ['z1', 'z2'] }, labels: {}, reason: 'label constraint zone In [z1,z2]' },
    { c: { key: 'zone', op: 'NotIn', values: ['z1'] }, labels: { zone: 'z1' }, reason: 'label constraint zone NotIn [z1]' },
    { c: { key: 'zone', op: 'NotIn', values: ['z1'] }, labels: {}, reason: null },
    { c: { key: 'gpu', op: 'Exists', values: [] }, labels: { gpu: '' }, reason: null },
    { c: { key: 'gpu', op: 'Exists', values: [] }, labels: {}, reason: 'label constraint gpu Exists' },
    { c: { key: 'gpu', op: 'DoesNotExist', values: [] }, labels: { gpu: 'a100' }, reason: 'label constraint gpu DoesNotExist' },
  ];
  it.each(constraints)('label constraint $c.key $c.op $c.values on $labels -> $reason', ({ c, labels, reason }) => {
    expect(labelConstraint(c)(step(1, 1), nodeView({ id: 'n', labels }))?.reason ?? null).toBe(reason);
  });

  it('anti-affinity allows fewer than maxPerNode of the group and refuses at the limit', () => {
    const ctx = step(1, 1, { options: { group: { name: 'web', maxPerNode: 1 } } });
    expect(antiAffinity(ctx, nodeView({ id: 'n', groups: { db: 3 } }))).toBeNull();
    expect(antiAffinity(ctx, nodeView({ id: 'n', groups: { web: 1 } }))?.reason).toBe('anti-affinity group web max 1 per node');
  });

  it('the tenant per-node quota refuses a node already holding maxVmsPerNode of its VMs', () => {
    const ctx = step(1, 1, { maxVmsPerNode: 2 });
    expect(tenantQuotaPerNode(ctx, nodeView({ id: 'n', tenants: { t1: { vms: 1, memoryMiB: 1, vcpus: 1 } } }))).toBeNull();
    expect(tenantQuotaPerNode(ctx, nodeView({ id: 'n', tenants: { t1: { vms: 2, memoryMiB: 1, vcpus: 1 } } }))?.reason).toBe(
      'tenant quota: max VMs per node',
    );
    expect(tenantQuotaPerNode(ctx, nodeView({ id: 'n', tenants: { other: { vms: 9, memoryMiB: 1, vcpus: 1 } } }))).toBeNull();
  });

  it('manual passes only the named node', () => {
    const ctx = step(1, 1, { options: { strategy: 'manual', nodeId: 'a' } });
    expect(namedNode(ctx, nodeView({ id: 'a' }))).toBeNull();
    expect(namedNode(ctx, nodeView({ id: 'b' }))?.reason).toBe('not the named node');
  });

  it('a node is counted under its first failure: state before memory before labels', () => {
    const ctx = step(1 << 20, 1, { options: { constraints: [{ key: 'zone', op: 'In', values: ['z9'] }] } });
    const filters = filtersFor(ctx);
    expect(firstFailure(filters, ctx, nodeView({ id: 'n', cordoned: true }))).toBe('node cordoned');
    expect(firstFailure(filters, ctx, nodeView({ id: 'n' }))).toBe('Insufficient memory');
    const small = step(1, 1, { options: { constraints: [{ key: 'zone', op: 'In', values: ['z9'] }] } });
    expect(firstFailure(filtersFor(small), small, nodeView({ id: 'n' }))).toBe('label constraint zone In [z9]');
  });
});
