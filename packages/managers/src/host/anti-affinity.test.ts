import { unwrap, type Allocation, type AllocationRequestInput } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { MemoryJournal, type HostRecord } from './records.ts';

/* The anti-affinity group as the coordinator sends it: a typed field of the allocate request, counted and enforced here. */

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });

function host() {
  const clock = new FakeClock();
  return unwrap(
    new ManagerFactory({ topology, clock })
      .host('n1')
      .memory({ capacity: 16384 })
      .cpu({ overcommitRatio: 2 })
      .journal(new MemoryJournal())
      .build(),
  );
}

const web = (requestId: string): AllocationRequestInput => ({
  requestId,
  tenantId: 't1',
  resources: { memoryMiB: 1024, vcpus: 1 },
  group: { name: 'web', maxPerNode: 2 },
});

describe('anti-affinity group on the agent', () => {
  it('counts members by the typed group and refuses one past maxPerNode, then admits it after a release', async () => {
    const h = host();
    unwrap(await h.allocate(web('w1')));
    unwrap(await h.allocate(web('w2')));
    expect(unwrap(await h.getHostView()).groups).toEqual({ 't1/web': 2 });
    const third = await h.allocate(web('w3'));
    expect(!third.ok && third.error.code).toBe('insufficient_capacity');
    expect(!third.ok && third.error.details).toMatchObject({ group: 'web', count: 2, maxPerNode: 2 });
    unwrap(await h.release({ requestId: 'rel-w1', allocationRequestId: 'w1' }));
    expect(unwrap(await h.allocate(web('w3'))).status).toBe('active');
  });

  it('replays a ledger written before the typed field (group in metadata keys) with the same counts and limit', async () => {
    // What an older agent journaled: the group only in metadata `allot.group`.
    const source = host();
    const legacy = { metadata: { 'allot.group': 'web', 'allot.group.maxPerNode': '2' } };
    unwrap(await source.allocate({ requestId: 'w1', tenantId: 't1', resources: { memoryMiB: 1024, vcpus: 1 }, ...legacy }));
    unwrap(await source.allocate({ requestId: 'w2', tenantId: 't1', resources: { memoryMiB: 1024, vcpus: 1 }, ...legacy }));
    expect(unwrap(await source.getHostView()).groups).toEqual({ 't1/web': 2 });
    // The records as the old agent wrote them: no typed group anywhere.
    const allocations = unwrap(await source.getAllocations({ status: 'live' }));
    const records: HostRecord[] = allocations.map((a, i) => {
      const request = { ...a.request, metadata: legacy.metadata };
      delete (request as { group?: unknown }).group;
      const old: Allocation = { ...a, request };
      return { kind: 'allocated', seq: i + 1, at: a.createdAt, allocation: old, idCounter: i + 1 } as HostRecord;
    });
    const restored = host();
    unwrap(await restored.restore(undefined, records));
    expect(unwrap(await restored.getHostView()).groups).toEqual({ 't1/web': 2 });
    const third = await restored.allocate(web('w3'));
    expect(!third.ok && third.error.code).toBe('insufficient_capacity');
  });

  it("counts a group per tenant: another tenant's members of the same name neither fill the limit nor meet an affinity", async () => {
    const h = host();
    unwrap(await h.allocate({ ...web('b1'), tenantId: 'other' }));
    unwrap(await h.allocate({ ...web('b2'), tenantId: 'other' }));
    // t1's group web is empty here although the other tenant's web is at the limit.
    expect(unwrap(await h.allocate(web('w1'))).status).toBe('active');
    const near = await h.allocate({ requestId: 'near', tenantId: 'third', resources: { memoryMiB: 1024, vcpus: 1 }, affinity: ['web'] });
    expect(!near.ok && near.error.code).toBe('insufficient_capacity');
    unwrap(await h.allocate(web('w2')));
    const third = await h.allocate(web('w3'));
    expect(!third.ok && third.error.details).toMatchObject({ group: 'web', count: 2, maxPerNode: 2 });
    expect(unwrap(await h.getHostView()).groups).toEqual({ 'other/web': 2, 't1/web': 2 });
  });
});
