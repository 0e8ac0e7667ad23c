import { unwrap, type AllocationRequestInput } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { MemoryJournal } from './records.ts';

/* Required per-node affinity as the coordinator sends it (`affinity`: groups that must be on this host), enforced here. */

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });

function host() {
  return unwrap(
    new ManagerFactory({ topology, clock: new FakeClock() })
      .host('n1')
      .memory({ capacity: 16384 })
      .cpu({ overcommitRatio: 2 })
      .journal(new MemoryJournal())
      .build(),
  );
}

const db = (requestId: string, priority = 0): AllocationRequestInput => ({
  requestId,
  tenantId: 't1',
  resources: { memoryMiB: 1024, vcpus: 1 },
  priority,
  group: { name: 'db', maxPerNode: 10 },
});
const nearDb = (requestId: string, more: Partial<AllocationRequestInput> = {}): AllocationRequestInput => ({
  requestId,
  tenantId: 't1',
  resources: { memoryMiB: 1024, vcpus: 1 },
  affinity: ['db'],
  ...more,
});

describe('required affinity on the agent', () => {
  it('refuses a request whose group has no allocation on the host, admits it once one is there, refuses again after its release', async () => {
    const h = host();
    const first = await h.allocate(nearDb('a1'));
    expect(!first.ok && first.error.code).toBe('insufficient_capacity');
    expect(!first.ok && first.error.message).toBe('affinity group db has no allocation on node n1');
    unwrap(await h.allocate(db('d1')));
    expect(unwrap(await h.allocate(nearDb('a2'))).status).toBe('active');
    unwrap(await h.release({ requestId: 'rel-d1', allocationRequestId: 'd1' }));
    expect((await h.allocate(nearDb('a3'))).ok).toBe(false);
  });

  it("a preemption that would evict the group's last member here is refused; with another member staying it goes ahead", async () => {
    const h = host();
    unwrap(await h.allocate(db('d1')));
    unwrap(await h.allocate({ requestId: 'filler', tenantId: 't1', resources: { memoryMiB: 16384 - 2048, vcpus: 1 } }));
    const evictingLast = await h.preempt(nearDb('a4', { resources: { memoryMiB: 2048, vcpus: 1 }, priority: 100 }), [
      unwrap(await h.getAllocations({ status: 'live' })).find((a) => a.requestId === 'd1')!.id,
    ]);
    expect(!evictingLast.ok && evictingLast.error.message).toBe('affinity group db has no allocation on node n1');
    unwrap(await h.release({ requestId: 'rel-filler', allocationRequestId: 'filler' }));
    unwrap(await h.allocate(db('d2')));
    unwrap(await h.allocate({ requestId: 'filler2', tenantId: 't1', resources: { memoryMiB: 16384 - 3072, vcpus: 1 } }));
    const d1 = unwrap(await h.getAllocations({ status: 'live' })).find((a) => a.requestId === 'd1')!.id;
    expect(unwrap(await h.preempt(nearDb('a5', { resources: { memoryMiB: 2048, vcpus: 1 }, priority: 100 }), [d1])).allocation.status).toBe(
      'active',
    );
  });
});
