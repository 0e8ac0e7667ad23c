import type { AllocationRequestInput, Result } from '@allot/core';
import { afterAll, describe, expect, it } from 'vitest';
import { agentRequest, cleanupAll, startLocalCluster, waitFor } from '../harness/index.ts';

/*
 * Preemption for exclusive cores on one NUMA node, with real processes: a simulated host of 8 cores over 2 NUMA nodes
 * (0-3 on node 0, 4-7 on node 1). Tenant bronze (priority 0) holds a and b on node 0 and c on node 1, two exclusive
 * cores each; tenant gold (priority 50, may preempt) needs 4 exclusive cores on one node. Only evicting c frees a whole
 * node: the coordinator must plan per NUMA node (totals say any one VM would do) and the agent's atomic preempt agrees.
 */

function okValue<T>(result: Result<T>, what: string): T {
  if (!result.ok) throw new Error(`${what}: ${result.error.code}: ${result.error.message}`);
  return result.value;
}

afterAll(async () => {
  await cleanupAll();
});

describe('preemption for exclusive cores on one NUMA node, through a coordinator and a real agent', () => {
  it('checks and then preempts the VM whose release completes a node, and the agent commits it', async () => {
    const cluster = await startLocalCluster({
      agents: [{ nodeId: 'cells', simulatedHost: { cores: 8, memoryMiB: 16_384, numaNodes: 2 } }],
    });
    for (const [tenantId, priority, allowPreemption] of [
      ['bronze', 0, false],
      ['gold', 50, true],
    ] as const)
      okValue(
        await cluster.sched('quota.set', { requestId: `q-${tenantId}`, quota: { tenantId, maxVms: 10, priority, allowPreemption } }),
        tenantId,
      );
    const exclusive = (requestId: string, tenantId: string, vcpus: number): AllocationRequestInput => ({
      requestId,
      tenantId,
      resources: { memoryMiB: 256, vcpus },
      cpu: { exclusive: true, numa: 'require' },
    });
    const nodesOf: Record<string, number[] | undefined> = {};
    for (const id of ['a', 'b', 'c']) {
      const placed = okValue(await cluster.sched('place', { request: exclusive(id, 'bronze', 2) }), id);
      nodesOf[id] = placed.allocation.cpu?.numaNodes;
    }
    expect(nodesOf).toEqual({ a: [0], b: [0], c: [1] });
    await waitFor(
      async () => {
        const n = await cluster.sched('node', { nodeId: 'cells' });
        return n.ok && n.value.snapshot.cpu.exclusiveCores === 6;
      },
      { message: 'the view to see the six exclusive cores' },
    );

    const gold = exclusive('gold-1', 'gold', 4);
    const checked = okValue(await cluster.sched('check', { request: gold, placement: { allowPreemption: true } }), 'check');
    expect(checked.fits).toBe(false);
    // The victim is bronze's: gold's check names the node and counts the VM, without naming it.
    expect(checked.preemption).toEqual({ nodeId: 'cells', victims: [] });
    expect(checked.message).toContain('It would fit on cells by preempting 1 allocation of priority 0 or lower.');

    const placed = okValue(await cluster.sched('place', { request: gold, placement: { allowPreemption: true } }), 'gold-1');
    // The victim is bronze's: gold's reply counts it without naming it; the agent's allocations below show which.
    expect(placed.preempted).toEqual([]);
    expect(placed.othersPreempted).toBe(1);
    expect(placed.allocation.cpu?.numaNodes).toEqual([1]);
    const live = okValue(await agentRequest(cluster.nc, 'cells', 'allocations', { status: 'live' }), 'allocations');
    expect(live.allocations.map((a) => a.requestId).sort()).toEqual(['a', 'b', 'gold-1']);
    await cluster.stop();
  }, 120_000);
});
