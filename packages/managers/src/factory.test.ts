import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { CpuManager } from './cpu-manager/cpu-manager.ts';
import { topologyFixture } from './cpu/index.ts';
import { ManagerFactory } from './factory.ts';
import { MemoryManager } from './memory/memory-manager.ts';
import { FakeProbe } from './testing/fake-probe.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 8, threadsPerCore: 2 });

describe('ManagerFactory', () => {
  it('refuses an unsupported resource type by name', async () => {
    const factory = new ManagerFactory({ probe: new FakeProbe({ topology }) });
    const r = await factory.create({ resourceType: 'gpu', limits: { capacity: 1 } });
    expect(!r.ok && r.error).toMatchObject({ code: 'invalid_request', message: 'no manager registered for resource type gpu' });
  });

  it('detects memory and CPU capacity from the probe', async () => {
    const factory = new ManagerFactory({ probe: new FakeProbe({ topology, totalMemoryMiB: 24576 }) });
    const memory = unwrap(await factory.create({ resourceType: 'memory', limits: { systemReserve: 1536 } }));
    expect(unwrap(await memory.getLimits()).memory?.capacity).toBe(24576);
    const cpu = unwrap(await factory.create({ resourceType: 'cpu', limits: { overcommitRatio: 2 } }));
    expect(unwrap(await cpu.getLimits()).cpu?.capacity).toBe(16);
  });

  it('creates a counting manager for a registered custom type', async () => {
    const factory = new ManagerFactory({ probe: new FakeProbe({ topology }) }).registerGeneric('custom:licenses');
    const m = unwrap(await factory.create({ resourceType: 'custom:licenses', limits: { capacity: 3 } }));
    const a = await m.allocate({ requestId: 'r', tenantId: 't', resources: { memoryMiB: 0, vcpus: 0, extra: { 'custom:licenses': 4 } } });
    expect(!a.ok && a.error.code).toBe('insufficient_capacity');
  });
});

describe('builders', () => {
  it('return every problem, not only the first', () => {
    const r = MemoryManager.builder().capacity(-1).overcommit(0.5).build();
    expect(!r.ok && (r.error.details?.issues as unknown[]).length).toBeGreaterThanOrEqual(2);
    const c = CpuManager.builder().overcommit(100).policy('fastest' as never).build();
    expect(!c.ok && (c.error.details?.issues as { path: string }[]).map((i) => i.path.split('.')[0])).toEqual(expect.arrayContaining(['topology', 'limits', 'policy']));
  });

  it('build managers with the figures they were given', async () => {
    const m = unwrap(MemoryManager.builder().capacity(16384).overcommit(1.5).reserve(1024).hardLimit(20000).build());
    expect(unwrap(await m.getUsage())[0]?.effectiveCapacity).toBe(20000);
    const c = unwrap(CpuManager.builder().topology(topology).overcommit(2).reservedCores([0, 1]).policy('affinity-aware').build());
    expect(unwrap(await c.exportTelemetry())['cpu.policy']).toBe('affinity-aware');
  });

  it('validateConfig returns every problem', async () => {
    const m = unwrap(MemoryManager.builder().capacity(1024).build());
    const problems = unwrap(await m.validateConfig({ resourceType: 'cpu' as 'memory', limits: { capacity: -5, systemReserve: 0, overcommitRatio: 0.5 }, health: { committedDegradedPermille: 0 } as never }));
    expect(problems.map((p) => p.path)).toEqual(expect.arrayContaining(['resourceType', 'health.committedDegradedPermille']));
  });
});
