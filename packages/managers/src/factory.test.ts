import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from './cpu/index.ts';
import { ManagerFactory } from './factory.ts';
import { FakeProbe } from './testing/fake-probe.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 8, threadsPerCore: 2 });

describe('ManagerFactory', () => {
  it('refuses an unsupported resource type by name', () => {
    const r = new ManagerFactory({ topology })
      .host('n1')
      .resource({ resourceType: 'gpu', limits: { capacity: 1 } })
      .build();
    expect(!r.ok && r.error).toMatchObject({
      code: 'invalid_request',
      message: 'resourceType: no manager registered for resource type gpu',
    });
  });

  it('detects memory and CPU capacity from the host', async () => {
    const factory = new ManagerFactory({ topology, memoryMiB: 24576 });
    const host = unwrap(factory.host('n1').memory({ systemReserve: 1536 }).cpu({ overcommitRatio: 2 }).build());
    const limits = unwrap(await host.getLimits());
    expect(limits.memory?.capacity).toBe(24576);
    expect(limits.cpu?.capacity).toBe(16);
  });

  it("takes memory capacity from the probe's sample when the host's is not given", async () => {
    const host = unwrap(new ManagerFactory({ probe: new FakeProbe({ totalMemoryMiB: 8192 }) }).host('n1').memory().build());
    expect(unwrap(await host.getLimits()).memory?.capacity).toBe(8192);
    const unknown = new ManagerFactory({ probe: new FakeProbe() }).host('n1').memory().build();
    expect(!unknown.ok && unknown.error.code).toBe('unavailable');
  });

  it('manages the lowest core ids when CPU capacity is below the host core count, and refuses more cores than the host has', async () => {
    const host = unwrap(new ManagerFactory({ topology }).host('n1').cpu({ capacity: 4 }).build());
    const a = unwrap(
      await host.allocate({ requestId: 'r', tenantId: 't', resources: { memoryMiB: 0, vcpus: 4 }, cpu: { exclusive: true } }),
    );
    expect(a.cpu?.cpuset).toEqual([0, 1, 2, 3]);
    const more = new ManagerFactory({ topology }).host('n1').cpu({ capacity: 17 }).build();
    expect(!more.ok && more.error.message).toContain('the host has 16 logical cores, not 17');
  });

  it('counts a registered custom type, refusing what does not fit', async () => {
    const factory = new ManagerFactory({ topology }).registerCounting('custom:licenses');
    const host = unwrap(
      factory
        .host('n1')
        .resource({ resourceType: 'custom:licenses', limits: { capacity: 3 } })
        .build(),
    );
    const a = await host.allocate({
      requestId: 'r',
      tenantId: 't',
      resources: { memoryMiB: 0, vcpus: 0, extra: { 'custom:licenses': 4 } },
    });
    expect(!a.ok && a.error.code).toBe('insufficient_capacity');
    unwrap(await host.allocate({ requestId: 'r2', tenantId: 't', resources: { memoryMiB: 0, vcpus: 0, extra: { 'custom:licenses': 3 } } }));
    expect(unwrap(await host.getUsage())).toMatchObject([{ resourceType: 'custom:licenses', committed: 3, effectiveCapacity: 3 }]);
  });

  it('returns every problem of every resource at build, not only the first', () => {
    const r = new ManagerFactory({ topology })
      .host('n1')
      .memory({ capacity: -1, overcommitRatio: 0.5 })
      .cpu({ overcommitRatio: 100 }, { policy: 'fastest' as never })
      .build();
    const paths = (!r.ok && (r.error.details?.issues as { path: string }[]).map((i) => i.path)) || [];
    expect(paths).toEqual(expect.arrayContaining(['memory.limits.capacity', 'memory.limits.overcommitRatio', 'cpu.policy']));
    expect(paths.some((p) => p.startsWith('cpu.limits'))).toBe(true);
  });

  it('refuses a bad node id and one manager twice for a type', () => {
    const r = new ManagerFactory({ topology, memoryMiB: 1024 }).host('no spaces').memory().memory().build();
    expect(!r.ok && (r.error.details?.issues as { path: string }[]).map((i) => i.path)).toEqual(['nodeId', 'managers.memory']);
  });
});
