import { PlaceRequestSchema, type AgentVerb, type PlaceReply, type Result } from '@allot/core';
import { buildUsageSnapshot } from '../../apps/agent/src/usage-snapshot.ts';
import type { AgentCaller } from '../../apps/coordinator/src/agents.ts';
import { PlaceConfigSchema, ReconcileConfigSchema } from '../../apps/coordinator/src/config.ts';
import { IntentStore } from '../../apps/coordinator/src/intents/intent-store.ts';
import { PlaceFlow } from '../../apps/coordinator/src/place-flow.ts';
import { QuotaService } from '../../apps/coordinator/src/quotas.ts';
import { Reconciler } from '../../apps/coordinator/src/reconciler.ts';
import { MemoryBucket } from '../../apps/coordinator/src/store/memory-bucket.ts';
import { quietLogger } from '../../apps/coordinator/src/testing/cluster.ts';
import { ClusterView } from '../../apps/coordinator/src/view.ts';
import { AGENT_CPU_OVERCOMMIT, SimAgent } from './agent.ts';
import { sleep } from './agent-layer.ts';
import { SimBucket } from './bucket.ts';
import { ProcessClock } from './clocks.ts';
import { describeFaults, drawFaults, QUIET, type Faults } from './faults.ts';
import { SimNetwork } from './network.ts';
import type { Scheduler } from './scheduler.ts';

export interface ClusterRunOptions {
  readonly durationMs: number;
  readonly agents: number;
  readonly coordinators: number;
  readonly clients: number;
}

const RECONCILE = ReconcileConfigSchema.parse({ everyMs: 2_000, pendingOlderThanMs: 5_000 });

/**
 * A simulated coordinator process: the real IntentStore, QuotaService, ClusterView, PlaceFlow and Reconciler over its
 * own connection to the shared bucket and to the agents. A crash cuts both (whatever it had in flight is lost: its
 * callers hear nothing) and a restart builds everything anew.
 */
class SimCoordinator {
  readonly id: string;
  readonly #sched: Scheduler;
  readonly #store: MemoryBucket;
  readonly #network: SimNetwork;
  readonly #faults: () => Faults;
  #bucket: SimBucket | undefined;
  #clock: ProcessClock | undefined;
  incarnation = 0;
  up = false;
  flow: PlaceFlow | undefined;
  view: ClusterView | undefined;
  reconciler: Reconciler | undefined;
  intents: IntentStore | undefined;
  #quotas: QuotaService | undefined;

  constructor(sched: Scheduler, id: string, store: MemoryBucket, network: SimNetwork, faults: () => Faults) {
    this.#sched = sched;
    this.id = id;
    this.#store = store;
    this.#network = network;
    this.#faults = faults;
  }

  async start(): Promise<void> {
    const incarnation = ++this.incarnation;
    const name = `${this.id}#${incarnation}`;
    const clock = new ProcessClock(this.#sched, name, this.#sched.int(-30_000, 30_000));
    const bucket = new SimBucket({ store: this.#store, sched: this.#sched, faults: this.#faults, name });
    const agents: AgentCaller = {
      call: (nodeId, verb, request, opts = {}) =>
        new Promise((resolve) => {
          void this.#network.call(nodeId, verb as AgentVerb, request as never, { ...opts, from: name }).then((reply) => {
            if (this.incarnation === incarnation) resolve(reply as never);
          });
        }),
    };
    const store = new IntentStore(bucket, { coordinatorId: name, clock, finishedTtlMs: 0 });
    const quotas = new QuotaService(store, quietLogger);
    const view = new ClusterView({ lostAfterMs: 15_000, clock });
    this.#bucket = bucket;
    this.#clock = clock;
    this.intents = store;
    this.#quotas = quotas;
    this.view = view;
    this.flow = new PlaceFlow({ coordinatorId: name, view, store, quotas, agents, config: PlaceConfigSchema.parse({}), logger: quietLogger, clock, random: this.#sched.random });
    this.reconciler = new Reconciler({ store, agents, config: RECONCILE, logger: quietLogger, clock });
    await quotas.start();
    if (this.incarnation !== incarnation) return;
    this.up = true;
    this.#sched.trace(`${name} up (wall skew ${clock.skewMs} ms)`);
    void this.#reconcileLoop(incarnation);
  }

  async #reconcileLoop(incarnation: number): Promise<void> {
    while (this.incarnation === incarnation) {
      await sleep(this.#sched, RECONCILE.everyMs, `${this.id} reconcile tick`);
      const reconciler = this.reconciler;
      if (this.incarnation !== incarnation || reconciler === undefined) return;
      const round = await reconciler.reconcileOnce();
      if (Object.keys(round.outcomes).length > 0) this.#sched.trace(`${this.id}#${incarnation} reconciled ${JSON.stringify(round.outcomes)}`);
    }
  }

  crash(): void {
    if (!this.up) return;
    this.#sched.trace(`${this.id}#${this.incarnation} CRASH`);
    this.up = false;
    this.incarnation++;
    this.#bucket?.cut();
    this.#clock?.kill();
    this.#quotas?.stop();
    this.flow = undefined;
    this.reconciler = undefined;
    this.#sched.after(this.#sched.int(100, 5_000), `${this.id} restart`, () => void this.start());
  }

  stepClock(deltaMs: number): void {
    this.#clock?.step(deltaMs);
  }
}

interface Acked {
  readonly requestId: string;
  readonly tenantId: string;
  readonly nodeId: string;
  readonly allocationId: string;
  released: boolean;
}

/**
 * Layer 2: coordinators over the agents. Clients place VMs through random coordinators (retrying the same request id,
 * on any coordinator, after a timeout or an unknown outcome) and release them, while agents and coordinators crash,
 * disks and KV operations fail or stall, KV writes land with their outcome unknown, messages are lost, duplicated and
 * reordered, and clocks are skewed and stepped. Checked as they happen: the agent invariants (layer 1), and that an
 * ok place names an allocation live on its node's disk. Checked once settled (faults off, reconcilers run until
 * quiet): every acknowledged placement not released is live on its node's disk; at most one live allocation per
 * request id across all agents; each tenant's usage record equals its live allocations.
 */
export async function runClusterLayer(sched: Scheduler, options: ClusterRunOptions): Promise<void> {
  let faults: Faults = drawFaults(sched);
  sched.trace(`faults: ${describeFaults(faults)}`);
  const current = (): Faults => faults;
  const agents = new Map<string, SimAgent>();
  for (let i = 1; i <= options.agents; i++) agents.set(`n${i}`, new SimAgent(sched, `n${i}`, current));
  for (const agent of agents.values()) await sched.settle(agent.start(), `${agent.nodeId} start`);
  const network = new SimNetwork({ sched, agents, faults: current, timeoutMs: 1_000 });
  const kv = new MemoryBucket({ now: () => sched.now });
  const coordinators: SimCoordinator[] = [];
  for (let i = 1; i <= options.coordinators; i++) coordinators.push(new SimCoordinator(sched, `c${i}`, kv, network, current));
  for (const c of coordinators) await sched.settle(c.start(), `${c.id} start`);
  const end = sched.now + options.durationMs;
  const acked = new Map<string, Acked>();
  let counter = 0;
  let stopFeed = false;

  // Usage snapshots: each agent publishes its view every 500 ms; each coordinator applies it after a network delay.
  const feed = async (agent: SimAgent): Promise<void> => {
    while (!stopFeed && sched.failure === undefined) {
      await sleep(sched, 500, `${agent.nodeId} heartbeat`);
      const host = agent.host;
      const clock = agent.clock;
      if (host === undefined || clock === undefined) continue;
      const view = await host.getHostView();
      if (!view.ok || !agent.up) continue;
      const snapshot = buildUsageSnapshot(view.value, { status: 'healthy' }, { nodeId: agent.nodeId, bootId: `b${agent.incarnation}`, labels: {}, heartbeatMs: 500, overcommit: { memory: 1, cpu: AGENT_CPU_OVERCOMMIT } }, clock.now());
      for (const c of coordinators) {
        if (sched.chance(faults.dropP)) continue;
        sched.after(sched.int(0, faults.maxDelayMs), `${agent.nodeId} usage -> ${c.id}`, () => c.view?.apply(structuredClone(snapshot)));
      }
    }
  };

  /** Asks some live coordinator; a crash or a slow answer is a timeout for the client. */
  const ask = <T>(fn: (c: SimCoordinator) => Promise<Result<T>>, label: string): Promise<Result<T> | 'timeout'> =>
    new Promise((resolve) => {
      const live = coordinators.filter((c) => c.up);
      if (live.length === 0) {
        sched.after(200, `${label} no coordinator`, () => resolve('timeout'));
        return;
      }
      const c = sched.pick(live);
      let settled = false;
      sched.after(5_000, `${label} client timeout`, () => {
        if (!settled) resolve('timeout');
        settled = true;
      });
      void fn(c).then((result) => {
        if (settled) return;
        settled = true;
        sched.trace(`${label} via ${c.id}: ${result.ok ? 'ok' : `${result.error.code} ${result.error.message.slice(0, 120)}`}`);
        resolve(result);
      });
    });

  const place = async (client: number): Promise<void> => {
    const requestId = `c${client}-p${++counter}`;
    const tenantId = `t${sched.int(1, 3)}`;
    const req = PlaceRequestSchema.parse({ request: { requestId, tenantId, resources: { memoryMiB: 512 * sched.int(1, 8), vcpus: sched.int(1, 4) } } });
    for (let attempt = 1; attempt <= 5; attempt++) {
      const reply = await ask<PlaceReply>((c) => (c.flow as PlaceFlow).place(structuredClone(req)), `place ${requestId}`);
      if (reply === 'timeout') continue;
      if (reply.ok) {
        const a = reply.value.allocation;
        const onDisk = agents.get(reply.value.nodeId)?.model.get(a.id);
        if (onDisk === undefined || onDisk.requestId !== requestId) sched.fail(`place ${requestId} acknowledged with ${a.id} on ${reply.value.nodeId}, not on that node's disk`);
        else if (onDisk.status !== 'active' && !acked.get(requestId)?.released) sched.fail(`place ${requestId} acknowledged with ${a.id}, which is ${onDisk.status} on ${reply.value.nodeId}'s disk`);
        if (!acked.has(requestId)) acked.set(requestId, { requestId, tenantId, nodeId: reply.value.nodeId, allocationId: a.id, released: false });
        return;
      }
      if (reply.error.code !== 'unavailable' && reply.error.code !== 'timeout' && reply.error.code !== 'internal') return;
    }
  };

  const release = async (client: number): Promise<void> => {
    const open = [...acked.values()].filter((a) => !a.released);
    if (open.length === 0) return;
    const a = sched.pick(open);
    const releaseId = `rel-${a.requestId}-${client}`;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const reply = await ask((c) => (c.flow as PlaceFlow).release({ requestId: releaseId, placementRequestId: a.requestId, tenantId: a.tenantId }), `release ${a.requestId}`);
      if (reply === 'timeout') continue;
      if (reply.ok) a.released = true;
      if (reply.ok || (reply.error.code !== 'unavailable' && reply.error.code !== 'timeout' && reply.error.code !== 'internal')) return;
    }
    // Unknown outcome after every retry: the placement may or may not be released; stop holding it to account.
    a.released = true;
  };

  const client = async (c: number): Promise<void> => {
    while (sched.now < end && sched.failure === undefined) {
      await sleep(sched, sched.int(0, 500), `client ${c} think`);
      if (sched.chance(0.65)) await place(c);
      else await release(c);
    }
  };

  const chaos = async (): Promise<void> => {
    while (sched.now < end && sched.failure === undefined) {
      await sleep(sched, 100, 'chaos tick');
      for (const agent of agents.values()) if (agent.up && sched.chance(faults.agentCrashP)) agent.crash('killed');
      for (const c of coordinators) {
        if (c.up && sched.chance(faults.coordinatorCrashP)) c.crash();
        if (sched.chance(faults.clockStepP)) c.stepClock(sched.pick([-60_000, -5_000, 5_000, 60_000]));
      }
    }
  };

  for (const agent of agents.values()) void feed(agent);
  const running = [chaos(), ...Array.from({ length: options.clients }, (_, i) => client(i + 1))];
  let done = false;
  void Promise.all(running).then(() => (done = true));
  while (!done && sched.failure === undefined && (await sched.step()));
  if (sched.failure !== undefined) return;

  // Settle: faults off, everyone up, reconcilers run until nothing is pending and old enough.
  faults = { ...QUIET };
  sched.trace('settling: faults off');
  for (const agent of agents.values()) if (!agent.up) await sched.settle(agent.start(), `${agent.nodeId} start`);
  await sched.runUntil(sched.now + 6_000);
  for (const c of coordinators) if (!c.up) await sched.settle(c.start(), `${c.id} start`);
  await sched.runUntil(sched.now + 60_000);
  stopFeed = true;
  if (sched.failure !== undefined) return;
  checkSettled(sched, agents, acked);
  const c = coordinators[0] as SimCoordinator;
  for (const tenantId of ['t1', 't2', 't3']) {
    const usage = await sched.settle((c.intents as IntentStore).usage(tenantId), `usage of ${tenantId}`);
    if (!usage.ok) {
      sched.fail(`usage of ${tenantId} unreadable after settling: ${usage.error.message}`);
      continue;
    }
    const recorded = usage.value?.value.usage ?? { vms: 0, memoryMiB: 0, vcpus: 0 };
    const live = { vms: 0, memoryMiB: 0, vcpus: 0 };
    for (const agent of agents.values())
      for (const a of agent.model.live())
        if (a.tenantId === tenantId) {
          live.vms++;
          live.memoryMiB += a.memoryMiB;
          live.vcpus += a.vcpus;
        }
    if (recorded.vms !== live.vms || recorded.memoryMiB !== live.memoryMiB || recorded.vcpus !== live.vcpus)
      sched.fail(`tenant ${tenantId}: usage record ${JSON.stringify({ vms: recorded.vms, memoryMiB: recorded.memoryMiB, vcpus: recorded.vcpus })}, live placements on the agents' disks ${JSON.stringify(live)}`);
  }
}

function checkSettled(sched: Scheduler, agents: ReadonlyMap<string, SimAgent>, acked: ReadonlyMap<string, Acked>): void {
  const liveByRequest = new Map<string, string[]>();
  for (const agent of agents.values()) for (const a of agent.model.live()) liveByRequest.set(a.requestId, [...(liveByRequest.get(a.requestId) ?? []), a.id]);
  for (const [requestId, ids] of liveByRequest) if (ids.length > 1) sched.fail(`request ${requestId} holds ${ids.length} live allocations once settled: ${ids.join(', ')}`);
  for (const a of acked.values()) {
    if (a.released) continue;
    const onDisk = agents.get(a.nodeId)?.model.get(a.allocationId);
    if (onDisk?.status !== 'active') sched.fail(`acknowledged placement ${a.requestId} (${a.allocationId}) is ${onDisk?.status ?? 'missing'} on ${a.nodeId}'s disk once settled`);
  }
}
