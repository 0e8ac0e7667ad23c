import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import type { HostManager } from './host-manager.ts';
import { MemoryJournal } from './records.ts';
import { FakeClock } from '../testing/fake-clock.ts';

/** Two physical cores of two threads each. */
const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 2, threadsPerCore: 2 });

function build(journal: MemoryJournal, clock: FakeClock): HostManager {
  return unwrap(
    new ManagerFactory({ topology, clock }).host('n1').memory({ capacity: 8192 }).cpu({ overcommitRatio: 2 }).journal(journal).build(),
  );
}

describe('a memory-only resize of a VM on whole physical cores', () => {
  it('replays after a restart: its cores (and held-idle siblings) are unchanged, so there is nothing to reshape', async () => {
    const journal = new MemoryJournal();
    const clock = new FakeClock();
    const h = build(journal, clock);
    const vm = unwrap(
      await h.allocate({
        requestId: 'vm',
        tenantId: 't',
        resources: { memoryMiB: 1024, vcpus: 1 },
        cpu: { exclusive: true, numa: 'any', threadPolicy: 'isolate' },
      }),
    );
    const grown = unwrap(await h.resize({ requestId: 'grow', allocationId: vm.id, resources: { memoryMiB: 2048, vcpus: 1 } }));
    expect(grown.cpu).toEqual(vm.cpu);
    const restarted = build(new MemoryJournal(), clock);
    const restored = await restarted.restore(undefined, journal.records);
    expect(restored.ok ? 'restored' : restored.error.message).toBe('restored');
    expect(unwrap(await restarted.getAllocations({}))).toEqual(unwrap(await h.getAllocations({})));
  });
});
