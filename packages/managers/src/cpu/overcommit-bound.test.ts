import { AllocationRequestSchema, unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { ManagerFactory } from '../factory.ts';
import { MemoryJournal } from '../host/records.ts';
import { topologyFixture } from './topology-fixture.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 4, threadsPerCore: 1 });

function host(overcommitRatio: number) {
  return unwrap(
    new ManagerFactory({ topology }).host('n1').memory({ capacity: 8192 }).cpu({ overcommitRatio }).journal(new MemoryJournal()).build(),
  );
}

const vm = (requestId: string, cpu: { exclusive?: boolean; maxOvercommit?: number }) =>
  AllocationRequestSchema.parse({ requestId, tenantId: 't1', resources: { memoryMiB: 512, vcpus: 2 }, cpu });

describe("the agent refuses a request whose bound on CPU overcommit is below the host's ratio", () => {
  it('refuses a shared request bounded at 1 on a 2x host with the figures, and keeps nothing', async () => {
    const h = host(2);
    const refused = await h.allocate(vm('strict', { maxOvercommit: 1 }));
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.error.code).toBe('insufficient_capacity');
    expect(refused.error.details).toMatchObject({ reason: 'overcommit', overcommitRatio: 2, maxOvercommit: 1, resourceType: 'cpu' });
    expect((await h.reserve({ ...vm('strict-hold', { maxOvercommit: 1.5 }), reservation: { ttlMs: 1_000 } })).ok).toBe(false);
    expect(unwrap(await h.getAllocations({})).length).toBe(0);
    await h.stop();
  });

  it('takes it where the ratio is within the bound, and a dedicated-CPU request anywhere (exclusive cores never share)', async () => {
    const h = host(2);
    expect(unwrap(await h.allocate(vm('loose', { maxOvercommit: 2 }))).status).toBe('active');
    expect(unwrap(await h.allocate(vm('pinned', { exclusive: true, maxOvercommit: 1 }))).cpu?.mode).toBe('exclusive');
    await h.stop();
    const strictHost = host(1);
    expect(unwrap(await strictHost.allocate(vm('strict', { maxOvercommit: 1 }))).status).toBe('active');
    await strictHost.stop();
  });
});
