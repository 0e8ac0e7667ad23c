import { describe, expect, it } from 'vitest';
import { unwrap, type AllocationRequest, type AllocationRequestInput, type NodeMemory, type NodeView } from '@allot/core';
import { buildUsageSnapshot } from '@allot/agent';
import { ManagerFactory, MemoryJournal, topologyFixture, type HostManager } from '@allot/managers';
import { FakeClock } from '@allot/managers/testing';
import { planPreemption, seededRandom, type RandomSource } from '@allot/placement';

/*
 * The preemption plans placement makes for requests bound to one NUMA node (exclusive cores on one node, a named memory
 * node, hugepages) are plans the agent's atomic preempt carries out: over random hosts built by the real host manager
 * (2 NUMA nodes of 4 cores, 8 GiB each with two 1-GiB pages), every plan placement returns is committed by the agent.
 * Before per-node planning, placement planned by totals and the agent refused some of them (or there was no plan).
 */

const topology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 1 });
const NODES: NodeMemory[] = [0, 1].map((node) => ({ node, totalMiB: 8192, hugepages: [{ sizeKiB: 1_048_576, total: 2, free: 2 }] }));

/** The same host with 2 threads per physical core (16 logical cores). */
const smtTopology = topologyFixture({ sockets: 1, numaPerSocket: 2, coresPerNuma: 4, threadsPerCore: 2 });

function host(ratio: number, cores = topology): HostManager {
  const factory = new ManagerFactory({ topology: cores, nodeMemory: NODES, clock: new FakeClock() });
  return unwrap(factory.host('n1').memory({ capacity: 12_288 }).cpu({ overcommitRatio: ratio }).journal(new MemoryJournal()).build());
}

async function viewOf(h: HostManager): Promise<NodeView> {
  const view = unwrap(await h.getHostView());
  const ctx = { nodeId: 'n1', bootId: 'b', labels: {}, heartbeatMs: 1_000, overcommit: { memory: 1, cpu: 1 } };
  return { nodeId: 'n1', liveness: 'ready', lastSeen: 1, snapshot: buildUsageSnapshot(view, { status: 'healthy' }, ctx, 1) };
}

const pick = <T>(random: RandomSource, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

/** A low-priority VM of a random shape: exclusive cores on one node, shared vCPUs, pinned or floating memory, pages. */
function victimRequest(random: RandomSource, i: number): AllocationRequestInput {
  const exclusive = random() < 0.5;
  const numa = random() < 0.6 ? 'require' : 'any';
  const memory =
    random() < 0.3
      ? { numaNode: pick(random, [0, 1]) }
      : random() < 0.3
        ? { hugepages: { pageSizeMiB: 1024 as const, count: 1 } }
        : undefined;
  return {
    requestId: `low-${i}`,
    tenantId: 'bronze',
    priority: pick(random, [0, 10, 20]),
    resources: { memoryMiB: 512 * (1 + Math.floor(random() * 5)), vcpus: 1 + Math.floor(random() * 2) },
    cpu: { exclusive, numa },
    ...(memory === undefined ? {} : { memory }),
  };
}

/** A preemptor bound to one NUMA node, one of the three ways. */
function preemptor(random: RandomSource): AllocationRequest {
  const kind = pick(random, ['cores', 'memory', 'pages'] as const);
  const base = { requestId: 'high', tenantId: 'gold', priority: 100, metadata: {} };
  if (kind === 'cores')
    return {
      ...base,
      resources: { memoryMiB: 1024 * (1 + Math.floor(random() * 3)), vcpus: 2 + Math.floor(random() * 3) },
      cpu: { exclusive: true, numa: 'require' },
    };
  if (kind === 'memory')
    return {
      ...base,
      resources: { memoryMiB: 1024 * (2 + Math.floor(random() * 4)), vcpus: 1 },
      cpu: { exclusive: false, numa: 'any' },
      memory: { numaNode: pick(random, [0, 1]) },
    };
  return {
    ...base,
    resources: { memoryMiB: 512, vcpus: 1 },
    cpu: { exclusive: false, numa: 'any' },
    memory: { hugepages: { pageSizeMiB: 1024, count: 2 } },
  };
}

describe('NUMA-bound preemption plans agree with the agent', () => {
  it('every plan placement makes is committed by the agent’s atomic preempt', async () => {
    const random = seededRandom(1414);
    let plans = 0;
    for (let round = 0; round < 150; round += 1) {
      const h = host(round % 2 === 0 ? 1 : 2);
      for (let i = 0; i < 8; i += 1) await h.allocate(victimRequest(random, i));
      const request = preemptor(random);
      const live = unwrap(await h.getAllocations());
      const plan = planPreemption(await viewOf(h), live, request);
      if (plan === null || plan.victims.length === 0) continue;
      plans += 1;
      const done = await h.preempt(
        request,
        plan.victims.map((v) => v.id),
      );
      expect({ round, victims: plan.victims.map((v) => v.id), refused: done.ok ? null : done.error.message }).toEqual({
        round,
        victims: plan.victims.map((v) => v.id),
        refused: null,
      });
    }
    // Not vacuous: most rounds needed (and got) a plan.
    expect(plans).toBeGreaterThan(50);
  });

  it('plans for whole physical cores (thread policies isolate and require) on an SMT host are committed too', async () => {
    const random = seededRandom(1515);
    let plans = 0;
    for (let round = 0; round < 150; round += 1) {
      const h = host(round % 2 === 0 ? 1 : 2, smtTopology);
      for (let i = 0; i < 10; i += 1) {
        const input = victimRequest(random, i);
        const threadPolicy = input.cpu?.exclusive === true && random() < 0.5 ? pick(random, ['isolate', 'require'] as const) : undefined;
        const vcpus = threadPolicy === 'require' ? 2 : input.resources.vcpus;
        await h.allocate({
          ...input,
          resources: { ...input.resources, vcpus },
          cpu: { ...input.cpu, ...(threadPolicy === undefined ? {} : { threadPolicy }) },
        });
      }
      const threadPolicy = pick(random, ['isolate', 'require'] as const);
      const request: AllocationRequest = {
        requestId: 'high',
        tenantId: 'gold',
        priority: 100,
        metadata: {},
        resources: { memoryMiB: 1024, vcpus: threadPolicy === 'require' ? pick(random, [2, 4, 6]) : 1 + Math.floor(random() * 4) },
        cpu: { exclusive: true, numa: pick(random, ['any', 'require'] as const), threadPolicy },
      };
      const live = unwrap(await h.getAllocations());
      const plan = planPreemption(await viewOf(h), live, request);
      if (plan === null || plan.victims.length === 0) continue;
      plans += 1;
      const done = await h.preempt(
        request,
        plan.victims.map((v) => v.id),
      );
      expect({ round, victims: plan.victims.map((v) => v.id), refused: done.ok ? null : done.error.message }).toEqual({
        round,
        victims: plan.victims.map((v) => v.id),
        refused: null,
      });
    }
    expect(plans).toBeGreaterThan(30);
  });
});
