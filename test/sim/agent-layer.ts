import { AGENT_ENDPOINTS } from '@allot/protocol';
import type { Allocation } from '@allot/core';
import { SimAgent } from './agent.ts';
import { CLOCK_STEPS_MS, describeFaults, drawFaults, QUIET, type Faults } from './faults.ts';
import { SimNetwork } from './network.ts';
import type { Scheduler } from './scheduler.ts';

/** Whether the agents' allocate takes a fencing token (the safety redesign's protocol) in this tree. */
export const AGENTS_TAKE_FENCES = ((): boolean => {
  const parsed = AGENT_ENDPOINTS.allocate.request.safeParse({
    requestId: 'r',
    tenantId: 't',
    resources: { memoryMiB: 1, vcpus: 1 },
    fence: 1,
  });
  return parsed.success && (parsed.data as { fence?: number }).fence === 1;
})();

export interface RunOptions {
  /** Simulated ms of faults before settling. */
  readonly durationMs: number;
  readonly agents: number;
  readonly clients: number;
}

export const sleep = (sched: Scheduler, ms: number, label = 'sleep'): Promise<void> =>
  new Promise((resolve) => sched.after(ms, label, resolve));

/**
 * Layer 1: the agents alone. Clients allocate (some as reservations with a TTL), retry timed-out allocates with the
 * same request id on the same node (a higher fence each time, when the agents take fences), activate and release what
 * they were granted, while disks stall and fail, messages are lost, duplicated and reordered, agents crash and clocks
 * step. The agent invariants are checked as each record reaches a disk and as each ok reply leaves an agent; once the
 * faults stop, every agent's memory must agree with its disk.
 */
export async function runAgentLayer(sched: Scheduler, options: RunOptions): Promise<void> {
  let faults: Faults = drawFaults(sched);
  sched.trace(`faults: ${describeFaults(faults)}`);
  const current = (): Faults => faults;
  const agents = new Map<string, SimAgent>();
  for (let i = 1; i <= options.agents; i++) agents.set(`n${i}`, new SimAgent(sched, `n${i}`, current));
  for (const agent of agents.values()) await sched.settle(agent.start(), `${agent.nodeId} start`);
  const network = new SimNetwork({ sched, agents, faults: current, timeoutMs: 1_000 });
  const nodes = [...agents.keys()];
  const end = sched.now + options.durationMs;
  let requestCounter = 0;

  const client = async (c: number): Promise<void> => {
    const granted: Allocation[] = [];
    /** The allocate each grant answered (a late copy is sent again once it is released). */
    const requests = new Map<string, object>();
    /** Released grants: their allocate, sent again late (a copy a client or the network held back), must get them back. */
    const ended: { nodeId: string; id: string; request: object }[] = [];
    while (sched.now < end && sched.failure === undefined) {
      await sleep(sched, sched.int(0, 300), `client ${c} think`);
      const roll = sched.random();
      if (roll < 0.05 && ended.length > 0) {
        // Within the retention window the agent answers the released allocation; a new one is the model's failure
        // (principle 4, checked on true time whatever the agent's wall clock did). Past it, a new grant is released.
        const late = ended[sched.int(0, ended.length - 1)] as (typeof ended)[number];
        const reply = await network.call(late.nodeId, 'allocate', late.request as never, { from: `client${c}` });
        if (reply.ok) {
          const a = reply.value as Allocation;
          if (a.id !== late.id && (a.status === 'active' || a.status === 'reserved')) granted.push(a);
        }
      } else if (roll >= 0.9 && granted.length > 0) {
        // Preempt some of this client's grants on one node (priority 0) for a priority-50 request, sometimes after a
        // grace period; retried at a higher fence after a timeout, as a coordinator drives it.
        const nodeId = (granted[sched.int(0, granted.length - 1)] as Allocation).nodeId;
        const here = granted.filter((a) => a.nodeId === nodeId);
        const victims = here.slice(0, sched.int(1, Math.min(2, here.length))).map((a) => a.id);
        const requestId = `c${c}-x${++requestCounter}`;
        const request = {
          requestId,
          tenantId: 't9',
          priority: 50,
          resources: { memoryMiB: 512 * sched.int(1, 8), vcpus: sched.int(1, 4) },
        };
        const graceMs = sched.chance(0.4) ? { graceMs: sched.int(100, 5_000) } : {};
        for (let attempt = 1; attempt <= 4; attempt++) {
          const reply = await network.call(nodeId, 'preempt', { request: { ...request, fence: attempt }, victims, ...graceMs } as never, {
            from: `client${c}`,
          });
          if (reply.ok) {
            const done = reply.value as { allocation: Allocation };
            if (done.allocation.requestId !== requestId)
              sched.fail(`${nodeId} answered preempt ${requestId} with ${done.allocation.id} of ${done.allocation.requestId}`);
            const kept = granted.filter((a) => !victims.includes(a.id));
            granted.length = 0;
            granted.push(...kept, done.allocation);
            break;
          }
          if (reply.error.code !== 'timeout' && reply.error.code !== 'internal') break;
        }
      } else if (roll < 0.55 || granted.length === 0) {
        const nodeId = sched.pick(nodes);
        const requestId = `c${c}-r${++requestCounter}`;
        const reservation = sched.chance(0.3) ? { ttlMs: sched.int(200, 20_000) } : undefined;
        const request = {
          requestId,
          tenantId: `t${sched.int(1, 3)}`,
          resources: { memoryMiB: 512 * sched.int(1, 8), vcpus: sched.int(1, 4) },
          ...(reservation === undefined ? {} : { reservation }),
        };
        for (let attempt = 1; attempt <= 4; attempt++) {
          const reply = await network.call(nodeId, 'allocate', (AGENTS_TAKE_FENCES ? { ...request, fence: attempt } : request) as never, {
            from: `client${c}`,
          });
          if (reply.ok) {
            const a = reply.value as Allocation;
            if (a.requestId !== requestId) sched.fail(`${nodeId} answered allocate ${requestId} with ${a.id} of ${a.requestId}`);
            if (a.status === 'active' || a.status === 'reserved') granted.push(a);
            requests.set(a.id, AGENTS_TAKE_FENCES ? { ...request, fence: attempt } : request);
            break;
          }
          if (reply.error.code !== 'timeout' && reply.error.code !== 'internal') break;
        }
      } else if (roll >= 0.8 && granted.some((a) => a.status === 'active')) {
        // Resize an active grant in place (grow or shrink), retried under the resize's own request id after a timeout.
        const active = granted.filter((a) => a.status === 'active');
        const a = active[sched.int(0, active.length - 1)] as Allocation;
        const fence = (a as Allocation & { fence?: number }).fence;
        const request = {
          requestId: `c${c}-z${++requestCounter}`,
          allocationId: a.id,
          resources: { memoryMiB: 512 * sched.int(1, 8), vcpus: sched.int(1, 4) },
          ...(fence === undefined ? {} : { fence }),
        };
        for (let attempt = 1; attempt <= 4; attempt++) {
          const reply = await network.call(a.nodeId, 'resize', request, { from: `client${c}` });
          if (reply.ok) {
            const resized = reply.value as Allocation;
            if (
              resized.id !== a.id ||
              resized.granted.memoryMiB !== request.resources.memoryMiB ||
              resized.granted.vcpus !== request.resources.vcpus
            )
              sched.fail(
                `${a.nodeId} answered resize ${request.requestId} of ${a.id} with ${resized.id} at ${resized.granted.memoryMiB} MiB/${resized.granted.vcpus} vCPUs`,
              );
            const index = granted.findIndex((g) => g.id === a.id);
            if (index >= 0) granted[index] = resized;
            break;
          }
          if (reply.error.code === 'not_found')
            granted.splice(
              granted.findIndex((g) => g.id === a.id),
              1,
            );
          if (reply.error.code !== 'timeout' && reply.error.code !== 'internal') break;
        }
      } else {
        const index = sched.int(0, granted.length - 1);
        const a = granted[index] as Allocation;
        if (a.status === 'reserved' && sched.chance(0.5)) {
          const reply = await network.call(a.nodeId, 'activate', { allocationId: a.id, requestId: `act-${a.id}` }, { from: `client${c}` });
          if (reply.ok) granted[index] = reply.value as Allocation;
          else if (reply.error.code === 'not_found' || reply.error.code === 'conflict') granted.splice(index, 1);
        } else {
          const reply = await network.call(a.nodeId, 'release', { requestId: `rel-${a.id}`, allocationId: a.id }, { from: `client${c}` });
          if (reply.ok || reply.error.code === 'not_found') granted.splice(index, 1);
          const request = requests.get(a.id);
          if (reply.ok && request !== undefined) ended.push({ nodeId: a.nodeId, id: a.id, request });
        }
      }
    }
  };

  const chaos = async (): Promise<void> => {
    while (sched.now < end && sched.failure === undefined) {
      await sleep(sched, 100, 'chaos tick');
      for (const agent of agents.values()) {
        if (agent.up && sched.chance(faults.agentCrashP)) agent.crash('killed');
        if (sched.chance(faults.clockStepP)) agent.stepClock(sched.pick(CLOCK_STEPS_MS));
      }
    }
  };

  const running = [chaos(), ...Array.from({ length: options.clients }, (_, i) => client(i + 1))];
  let done = false;
  void Promise.all(running).then(() => (done = true));
  while (!done && sched.failure === undefined && (await sched.step()));
  if (sched.failure !== undefined) return;

  // Settle: no more faults, every agent up, then memory must agree with disk.
  faults = { ...QUIET };
  sched.trace('settling: faults off');
  for (const agent of agents.values()) if (!agent.up) await sched.settle(agent.start(), `${agent.nodeId} start`);
  await sched.runUntil(sched.now + 30_000);
  for (const agent of agents.values()) await checkMemoryMatchesDisk(sched, agent);
}

/** Once quiet, an agent's in-memory live allocations and committed figures are exactly its disk's. */
export async function checkMemoryMatchesDisk(sched: Scheduler, agent: SimAgent): Promise<void> {
  const host = agent.host;
  if (host === undefined) {
    sched.fail(`${agent.nodeId} is not up after settling`);
    return;
  }
  const live = await sched.settle(host.getAllocations({ status: 'live' }), `${agent.nodeId} allocations`);
  if (!live.ok) {
    sched.fail(`${agent.nodeId}: allocations failed after settling: ${live.error.message}`);
    return;
  }
  const inMemory = new Set(live.value.map((a) => a.id));
  const onDisk = new Set(agent.model.liveIds());
  for (const id of onDisk) if (!inMemory.has(id)) sched.fail(`${agent.nodeId}: ${id} is live on disk but not in memory`);
  for (const id of inMemory) if (!onDisk.has(id)) sched.fail(`${agent.nodeId}: ${id} is live in memory but not on disk`);
  // Resizes replayed: each live allocation holds in memory exactly the amounts its disk's records end on.
  for (const a of live.value) {
    const disk = agent.model.get(a.id);
    if (disk !== undefined && (disk.memoryMiB !== a.granted.memoryMiB || disk.vcpus !== a.granted.vcpus))
      sched.fail(
        `${agent.nodeId}: ${a.id} holds ${a.granted.memoryMiB} MiB/${a.granted.vcpus} vCPUs in memory, ${disk.memoryMiB}/${disk.vcpus} on disk`,
      );
  }
}
