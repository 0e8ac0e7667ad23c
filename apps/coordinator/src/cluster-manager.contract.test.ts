import { unwrap } from '@allot/core';
import { resourceManagerContract, type ScopeReader } from '@allot/core/testing';
import { ClusterManager, type ClusterAnswers } from './cluster-manager.ts';
import { inProcessCluster } from './testing/fake-agents.ts';

/* The contract at cluster scope: ClusterManager over in-process fake agents (allocate = place; limits on the named node). */
const read: ScopeReader<ClusterAnswers> = {
  allocation: (placed) => placed.allocation,
  committedMemoryMiB: (usage) => usage.memory.committed,
  allocations: (page) => page.allocations,
};

resourceManagerContract('cluster scope: ClusterManager', async () => {
  const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 4, cpuOvercommit: 2 } });
  const c = await cluster.coordinator('c1');
  const manager = new ClusterManager({ view: c.view, flow: c.flow, agents: cluster.agents.caller(), now: () => cluster.clock.wall() });
  unwrap(await manager.start());
  return { manager, read, node: 'a', memoryMiB: 8192, settle: () => c.refresh() };
});
