import { describe, expect, it } from 'vitest';
import type { NodeView, UsageSnapshot } from '@allot/core';
import { syntheticSnapshot } from './fixtures.ts';
import { rowOf, sameRowFields } from './model.ts';

const base = syntheticSnapshot({
  nodeId: 'n1',
  seq: 4,
  cores: 8,
  labels: { zone: 'a', rack: 'r1' },
  tenants: { acme: { vms: 1, vcpus: 2, memoryMiB: 1024 } },
  health: { status: 'degraded', reasons: ['disk slow'] },
  vcpusCommitted: 2,
  memoryCommitted: 1024,
  memoryUsed: 512,
});

const row = (s: UsageSnapshot) => JSON.stringify(rowOf({ nodeId: s.nodeId, liveness: 'ready', lastSeen: 0, snapshot: s } as NodeView));

/** One change each: what a heartbeat may carry, seen by a row or not. */
const CHANGES: [string, (s: UsageSnapshot) => void][] = [
  ['at (not shown)', (s) => (s.at += 2_000)],
  ['a core utilization (not shown)', (s) => ((s.cpu.cores[0] as { utilizationPermille: number }).utilizationPermille += 1)],
  ['a tenant usage figure (not shown)', (s) => ((s.tenants['acme'] as { vms: number }).vms += 1)],
  ['seq', (s) => (s.seq += 1)],
  ['bootId', (s) => (s.bootId = 'other')],
  ['cordoned', (s) => (s.cordoned = !s.cordoned)],
  ['allocationCount', (s) => (s.allocationCount += 1)],
  ['heartbeatMs', (s) => (s.heartbeatMs += 1)],
  ['memory.used', (s) => (s.memory.used += 1)],
  ['memory.committed', (s) => (s.memory.committed += 1)],
  ['memory.reserved', (s) => (s.memory.reserved += 1)],
  ['memory.capacity', (s) => (s.memory.capacity += 1)],
  ['memory.systemReserve', (s) => (s.memory.systemReserve += 1)],
  ['memory.effectiveCapacity', (s) => (s.memory.effectiveCapacity += 1)],
  ['cpu.used', (s) => (s.cpu.used += 1)],
  ['cpu.committed', (s) => (s.cpu.committed += 1)],
  ['cpu.effectiveCapacity', (s) => (s.cpu.effectiveCapacity += 1)],
  ['cpu.sharedCores', (s) => (s.cpu.sharedCores -= 1)],
  ['cpu.exclusiveCores', (s) => (s.cpu.exclusiveCores += 1)],
  ['cpu.reservedCores', (s) => (s.cpu.reservedCores += 1)],
  ['overcommit.cpu', (s) => (s.overcommit.cpu += 1)],
  ['overcommit.memory', (s) => (s.overcommit.memory += 0.5)],
  ['a label value', (s) => (s.labels['zone'] = 'b')],
  ['a label more', (s) => (s.labels['new'] = 'x')],
  ['a label less', (s) => delete s.labels['rack']],
  ['a tenant more', (s) => (s.tenants['beta'] = { vms: 1, vcpus: 1, memoryMiB: 1 })],
  ['a tenant less', (s) => delete s.tenants['acme']],
  ['health status', (s) => (s.health = { status: 'healthy' })],
  ['health reasons', (s) => (s.health = { status: 'degraded', reasons: ['disk slow', 'fan'] })],
];

describe('a heartbeat that moves nothing a row shows', () => {
  it.each(CHANGES)('%s: same fields exactly when the same row', (_name, change) => {
    const next = structuredClone(base);
    change(next);
    expect(sameRowFields(base, next)).toBe(row(base) === row(next));
  });

  it("a tenant id named like an Object property is not found in another node's tenants", () => {
    // 'constructor' is `in` every object: found by a prototype, the tenants {constructor} and {acme} compared equal.
    const named = structuredClone(base);
    named.tenants = { constructor: { vms: 1, vcpus: 2, memoryMiB: 1024 } };
    expect(row(named) === row(base)).toBe(false);
    expect(sameRowFields(named, base)).toBe(false);
  });

  it('an unchanged copy (a new decoded object) is the same row', () => {
    expect(sameRowFields(base, structuredClone(base))).toBe(true);
  });
});
