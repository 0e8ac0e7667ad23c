import { describe, expect, it } from 'vitest';
import type { AllocationRequest, CpuUsage, NodeView } from '@allot/core';
import { CpuPool, topologyFixture, type CpuRequest } from '@allot/managers';
import { ClusterIndex, decide, seededRandom } from '@allot/placement';

/*
 * Placement and the agent's CPU pool must agree on exclusive cores bound to one NUMA node (the kubelet's CPU manager
 * static policy under the topology manager's single-numa-node): a node placement chooses is one the agent's pool takes.
 * The snapshot is the real pool's usage, as the agent publishes it.
 */

function viewOf(nodeId: string, cpu: CpuUsage, ratio: number): NodeView {
  return {
    nodeId,
    liveness: 'ready',
    lastSeen: 1,
    snapshot: {
      nodeId,
      bootId: 'b',
      seq: 1,
      at: 1,
      labels: {},
      cordoned: false,
      health: { status: 'healthy' },
      memory: {
        resourceType: 'memory',
        unit: 'MiB',
        capacity: 65_536,
        systemReserve: 0,
        effectiveCapacity: 65_536,
        committed: 0,
        used: 0,
        reserved: 0,
        allocationCount: 0,
      },
      cpu,
      overcommit: { memory: 1, cpu: ratio },
      tenants: {},
      groups: {},
      allocationCount: 0,
      heartbeatMs: 1_000,
    },
  };
}

function request(vcpus: number, numa: 'any' | 'prefer' | 'require', threadPolicy?: 'isolate' | 'require'): AllocationRequest {
  return {
    requestId: 'r',
    tenantId: 't',
    resources: { memoryMiB: 0, vcpus },
    priority: 0,
    cpu: { exclusive: true, numa, ...(threadPolicy === undefined ? {} : { threadPolicy }) },
    metadata: {},
  };
}

/** Whether placement would send this request to the node. */
function placementChooses(view: NodeView, req: AllocationRequest): boolean {
  const decided = decide(
    ClusterIndex.of([view], { random: seededRandom(1) }),
    req,
    { constraints: [], allowPreemption: false },
    {
      random: seededRandom(2),
    },
  );
  if (!decided.ok) throw new Error(decided.error.message);
  return decided.value.candidates.length > 0;
}

function pool(ratio: number, threadsPerCore = 1): CpuPool {
  const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore });
  return new CpuPool({ topology, reservedCores: [], systemReserve: 0, overcommitRatio: ratio, policy: 'first-fit' });
}

describe('exclusive cores on one NUMA node: placement agrees with the agent', () => {
  it('does not choose a node whose idle cores are free in total but split across its NUMA nodes', () => {
    const p = pool(1);
    // Node 0 (cores 0-3): 1 exclusive core, 3 idle. Node 1 (cores 4-7): a shared VM homed on 2 cores, 2 idle.
    expect(p.take('a', { vcpus: 1, exclusive: true, numa: 'require', numaNodes: [0] }).ok).toBe(true);
    const shared: CpuRequest = { vcpus: 2, exclusive: false, numa: 'require', numaNodes: [1] };
    expect(p.take('b', shared).ok).toBe(true);
    // 5 idle cores in total, at most 3 on one node: 4 exclusive cores on one node are refused by the pool.
    expect(p.check({ vcpus: 4, exclusive: true, numa: 'require' }).ok).toBe(false);
    expect(p.check({ vcpus: 4, exclusive: true, numa: 'any' }).ok).toBe(true);
    const view = viewOf('n1', p.usage(), 1);
    expect(placementChooses(view, request(4, 'require'))).toBe(false);
    expect(placementChooses(view, request(3, 'require'))).toBe(true);
    expect(placementChooses(view, request(4, 'any'))).toBe(true);
  });

  it('agrees on every request size over random states of the pool (shared load included)', () => {
    const random = seededRandom(14);
    for (let round = 0; round < 200; round += 1) {
      const ratio = round % 2 === 0 ? 1 : 2;
      const p = pool(ratio);
      for (let k = 0; k < 6; k += 1) {
        const exclusive = random() < 0.5;
        const numaNodes = random() < 0.5 ? [Math.floor(random() * 2)] : undefined;
        p.take(`a${k}`, { vcpus: 1 + Math.floor(random() * 3), exclusive, numa: 'require', numaNodes });
      }
      if (random() < 0.3) p.free(`a${Math.floor(random() * 6)}`);
      const view = viewOf('n1', p.usage(), ratio);
      for (let vcpus = 1; vcpus <= 5; vcpus += 1) {
        const agent = p.check({ vcpus, exclusive: true, numa: 'require' }).ok;
        expect({ round, vcpus, placement: placementChooses(view, request(vcpus, 'require')) }).toEqual({ round, vcpus, placement: agent });
      }
    }
  });

  it('agrees on whole physical cores (thread policies isolate and require) on an SMT host, per NUMA node and host-wide', () => {
    const random = seededRandom(15);
    for (let round = 0; round < 200; round += 1) {
      const ratio = round % 2 === 0 ? 1 : 2;
      // 2 NUMA nodes of 4 physical cores with 2 threads each: 16 logical cores.
      const p = pool(ratio, 2);
      for (let k = 0; k < 5; k += 1) {
        const exclusive = random() < 0.5;
        const threadPolicy = exclusive && random() < 0.5 ? (random() < 0.5 ? 'isolate' : 'require') : undefined;
        const numaNodes = random() < 0.5 ? [Math.floor(random() * 2)] : undefined;
        p.take(`a${k}`, { vcpus: 1 + Math.floor(random() * 4), exclusive, numa: 'require', numaNodes, threadPolicy });
      }
      const view = viewOf('n1', p.usage(), ratio);
      for (const threadPolicy of ['isolate', 'require'] as const)
        for (const numa of ['any', 'require'] as const)
          for (let vcpus = 1; vcpus <= 6; vcpus += 1) {
            const agent = p.check({ vcpus, exclusive: true, numa, threadPolicy }).ok;
            const placement = placementChooses(view, request(vcpus, numa, threadPolicy));
            expect({ round, threadPolicy, numa, vcpus, placement }).toEqual({ round, threadPolicy, numa, vcpus, placement: agent });
          }
    }
  });
});
