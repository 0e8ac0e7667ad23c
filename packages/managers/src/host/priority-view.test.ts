import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { MemoryJournal } from './records.ts';

/* What the agent publishes for preemption planning: its preemptible allocations' capacity per priority level. */

const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 8, threadsPerCore: 1 });

function host() {
  return unwrap(
    new ManagerFactory({ topology, clock: new FakeClock() })
      .host('n1')
      .memory({ capacity: 16384 })
      .cpu({})
      .journal(new MemoryJournal())
      .build(),
  );
}

describe('the host view per priority level', () => {
  it('counts live allocations by priority, exclusive cores apart, and drops what is released or preempted', async () => {
    const h = host();
    unwrap(await h.allocate({ requestId: 'low', tenantId: 't', resources: { memoryMiB: 2048, vcpus: 2 }, priority: 0 }));
    unwrap(
      await h.allocate({
        requestId: 'pinned',
        tenantId: 't',
        resources: { memoryMiB: 1024, vcpus: 2 },
        priority: 0,
        cpu: { exclusive: true, numa: 'any' },
      }),
    );
    unwrap(await h.allocate({ requestId: 'mid', tenantId: 't', resources: { memoryMiB: 4096, vcpus: 1 }, priority: 30 }));
    expect(unwrap(await h.getHostView()).priorities).toEqual([
      { priority: 0, vms: 2, memoryMiB: 3072, sharedVcpus: 2, exclusiveCores: 2 },
      { priority: 30, vms: 1, memoryMiB: 4096, sharedVcpus: 1, exclusiveCores: 0 },
    ]);
    unwrap(await h.release({ requestId: 'rel', allocationRequestId: 'mid' }));
    expect(unwrap(await h.getHostView()).priorities.map((p) => p.priority)).toEqual([0]);
  });
});
