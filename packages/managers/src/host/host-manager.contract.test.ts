import { unwrap } from '@allot/core';
import { hostReader, resourceManagerContract } from '@allot/core/testing';
import { ManagerFactory } from '../factory.ts';
import { topologyFixture } from '../cpu/index.ts';
import { MemoryJournal } from './records.ts';
import { FakeClock } from '../testing/index.ts';

/* The contract at host scope: the agent's HostManager, in process over a journal in memory. */
resourceManagerContract('host scope: HostManager', async () => {
  const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 4, threadsPerCore: 1 });
  const manager = unwrap(
    new ManagerFactory({ topology, clock: new FakeClock() })
      .host('n1')
      .memory({ capacity: 8192 })
      .cpu({ overcommitRatio: 2 })
      .journal(new MemoryJournal())
      .build(),
  );
  unwrap(await manager.start());
  const memory = unwrap(await manager.getUsage()).find((u) => u.resourceType === 'memory');
  return { manager, read: hostReader, node: 'n1', memoryMiB: memory?.effectiveCapacity ?? 0, settle: () => undefined };
});
