import { err, type Allocation, type Result, type TenantQuota } from '@allot/core';
import {
  PlaceRequestSchema,
  type AgentVerb,
  type AllotEvent,
  type DecommissionReply,
  type EvacuateReply,
  type Move,
  type PlaceReply,
} from '@allot/protocol';
import { buildUsageSnapshot } from '../../apps/agent/src/usage-snapshot.ts';
import type { AgentCaller } from '../../apps/coordinator/src/agents.ts';
import { PlaceConfigSchema, ReconcileConfigSchema } from '../../apps/coordinator/src/config.ts';
import { ClusterManager } from '../../apps/coordinator/src/cluster-manager.ts';
import { decommissionNode } from '../../apps/coordinator/src/decommission.ts';
import { NodeStates } from '../../apps/coordinator/src/node-states.ts';
import { decodeIntent, IntentStore } from '../../apps/coordinator/src/intents/intent-store.ts';
import { PlaceFlow } from '../../apps/coordinator/src/place-flow.ts';
import { handleEndingEvent } from '../../apps/coordinator/src/quota-events.ts';
import { QuotaService } from '../../apps/coordinator/src/quotas.ts';
import { Reconciler } from '../../apps/coordinator/src/reconciler.ts';
import { MemoryBucket } from '../../apps/coordinator/src/store/memory-bucket.ts';
import { quietLogger } from '../../apps/coordinator/src/testing/cluster.ts';
import { Sweep, SweepConfigSchema } from '../../apps/coordinator/src/sweep.ts';
import { ClusterView } from '../../apps/coordinator/src/view.ts';
import { knownUnheard } from '../../apps/coordinator/src/unheard-node.ts';
import { evacuateNode } from '../../apps/coordinator/src/moves/evacuate.ts';
import { abortMove, confirmMove, destinationRequestId, moveAllocation, type MoveDeps } from '../../apps/coordinator/src/moves/move.ts';
import { AGENT_CPU_OVERCOMMIT, SimAgent } from './agent.ts';
import { sleep } from './agent-layer.ts';
import { SimBucket } from './bucket.ts';
import { ProcessClock } from './clocks.ts';
import { SimEventStream, type EventConsumer } from './events.ts';
import { CLOCK_STEPS_MS, describeFaults, drawFaults, QUIET, type Faults } from './faults.ts';
import { checkMovesSettled, followConfirmedMoves, MoveBook, MoveFaults, type SimMove } from './moves.ts';
import { Lifecycle } from './preempt-resize.ts';
import { BatchClients } from './batches.ts';
import { SimNetwork } from './network.ts';
import type { Scheduler } from './scheduler.ts';

export interface ClusterRunOptions {
  readonly durationMs: number;
  readonly agents: number;
  readonly coordinators: number;
  readonly clients: number;
  /** Clients also move VMs (two-phase) and the operator evacuates a node once in half the runs. */
  readonly moves?: boolean;
  /** The run's seed: the moves' own faults draw from a stream derived from it (MoveFaults). */
  readonly seed?: number;
  /** Clients also place with preemption and resize VMs in place (preempt-resize.ts), on their own random stream. */
  readonly lifecycle?: boolean;
  /** Clients also place gangs all or nothing through place.batch (batches.ts), on their own random stream. */
  readonly batches?: boolean;
}

/**
 * Tenant limits set before the clients start (t1 has none). Small enough that places run into them: the invariant
 * "a tenant's live allocations on the agents' disks never exceed its limits" is checked at every durable commit.
 */
const QUOTAS: readonly TenantQuota[] = [
  { tenantId: 't2', maxVms: 3, placeRates: [], releaseRates: [] },
  { tenantId: 't3', maxVms: 6, maxVcpus: 8, maxMemoryMiB: 8_192, placeRates: [], releaseRates: [] },
];

const RECONCILE = ReconcileConfigSchema.parse({ everyMs: 2_000, pendingOlderThanMs: 5_000 });
/** Sweeps far more often than in production (60 s, grace 60 s), so its races with retries happen within a run. */
const SWEEP = SweepConfigSchema.parse({ everyMs: 3_000, graceMs: 4_000, pageSize: 7 });

/**
 * A simulated coordinator process: the real IntentStore, QuotaService, ClusterView, PlaceFlow, ClusterManager (for
 * activate), Reconciler, Sweep and quota-events handler over its own connection to the shared bucket and to the agents.
 * A crash cuts both (whatever it had in flight is lost: its callers hear nothing) and a restart builds everything anew.
 */
class SimCoordinator implements EventConsumer {
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
  sweep: Sweep | undefined;
  manager: ClusterManager | undefined;
  intents: IntentStore | undefined;
  nodeStates: NodeStates | undefined;
  /** What move, move.confirm, move.abort and evacuate are served with (moves/*.ts, as coordinator.ts wires them). */
  moves: MoveDeps | undefined;
  /** A moves run's faults: this coordinator may die between a move's steps. */
  moveFaults: MoveFaults | undefined;
  #agents: AgentCaller | undefined;
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
          // A move's step (MoveFaults): this coordinator may die before sending it, once it is sent, or on its answer.
          const step = this.moveFaults === undefined ? undefined : MoveFaults.stepOf(verb, request);
          const crash = step === undefined ? undefined : this.moveFaults?.crashAt();
          const dies = (at: 'before' | 'sent' | 'answered'): boolean => {
            if (crash !== at || !this.up) return false;
            this.#sched.trace(
              `${name} dies between move steps: ${at === 'before' ? 'before' : at === 'sent' ? 'having sent' : 'having heard'} ${step} on ${nodeId}`,
            );
            this.crash();
            return true;
          };
          if (dies('before')) return;
          void this.#network.call(nodeId, verb as AgentVerb, request as never, { ...opts, from: name }).then((reply) => {
            if (this.incarnation === incarnation && !dies('answered')) resolve(reply as never);
          });
          dies('sent');
        }),
    };
    const store = new IntentStore(bucket, { coordinatorId: name, clock, finishedTtlMs: 0 });
    const quotas = new QuotaService(store, quietLogger);
    // The index's tie-breaking salt comes from the seed too (by default it is drawn from crypto: a run would not replay).
    const view = new ClusterView({ lostAfterMs: 15_000, clock, index: { random: this.#sched.random } });
    this.#bucket = bucket;
    this.#clock = clock;
    this.intents = store;
    this.#quotas = quotas;
    this.view = view;
    this.flow = new PlaceFlow({
      coordinatorId: name,
      view,
      store,
      quotas,
      agents,
      config: PlaceConfigSchema.parse({}),
      logger: quietLogger,
      clock,
      random: this.#sched.random,
    });
    const nodeStates = new NodeStates({
      bucket,
      clock,
      coordinatorId: name,
      logger: quietLogger,
      onChange: (nodeId, record) => view.setDecommissioned(nodeId, record),
    });
    this.nodeStates = nodeStates;
    this.#agents = agents;
    // As the coordinator does: a decommissioned node that is also lost may have its pending intents failed unfenced.
    const nodeGone = (nodeId: string): boolean =>
      nodeStates.decommissioned(nodeId) !== undefined && (view.get(nodeId)?.liveness ?? 'lost') === 'lost';
    this.reconciler = new Reconciler({ store, agents, config: RECONCILE, logger: quietLogger, clock, nodeGone });
    this.sweep = new Sweep({
      store,
      agents,
      nodes: () => view.nodes({ liveness: 'ready' }).map((n) => n.nodeId),
      clock,
      config: SWEEP,
      logger: quietLogger,
      random: this.#sched.random,
    });
    this.manager = new ClusterManager({ view, flow: this.flow, agents, now: () => clock.wall() });
    this.moves = {
      store,
      flow: this.flow,
      agents,
      knowsNode: (nodeId) => view.get(nodeId) !== undefined,
      // As the coordinator does (no leases here): a node placements count on has not reported yet, retry.
      knownUnheard: (nodeId) => knownUnheard({ countingOn: (n) => countingOn(store, n), clock }, nodeId),
      holdMs: 10_000,
      agentTimeoutMs: 1_000,
      logger: quietLogger,
    };
    await quotas.start();
    if (this.incarnation !== incarnation) return;
    await nodeStates.start();
    if (this.incarnation !== incarnation) return;
    await this.manager.start();
    this.up = true;
    this.#sched.trace(`${name} up (wall skew ${clock.skewMs} ms)`);
    void this.#reconcileLoop(incarnation);
    void this.#sweepLoop(incarnation);
    void this.#livenessLoop(incarnation);
  }

  get name(): string {
    return `${this.id}#${this.incarnation}`;
  }

  /** One delivery of the shared quota-events consumer; a crash while handling leaves it unsettled (no ack). */
  handleEvent(event: AllotEvent): Promise<Result<unknown>> {
    const intents = this.intents;
    const incarnation = this.incarnation;
    if (intents === undefined) return Promise.resolve(err('unavailable', 'not started'));
    return new Promise((resolve) => {
      void handleEndingEvent(intents, event).then((r) => {
        if (this.incarnation === incarnation) resolve(r);
      });
    });
  }

  /** The sweep's own schedule (sweep.ts schedules on the global timers, which the simulation does not drive). */
  async #sweepLoop(incarnation: number): Promise<void> {
    while (this.incarnation === incarnation) {
      await sleep(this.#sched, SWEEP.everyMs + this.#sched.int(0, SWEEP.everyMs / 5), `${this.id} sweep tick`);
      const sweep = this.sweep;
      if (this.incarnation !== incarnation || sweep === undefined) return;
      const round = await sweep.sweepOnce();
      if (this.incarnation !== incarnation) return;
      if (!round.ok) this.#sched.trace(`${this.id}#${incarnation} sweep failed: ${round.error.message}`);
      else if (round.value.discrepancies.length > 0 || round.value.released > 0 || round.value.ended > 0)
        this.#sched.trace(
          `${this.id}#${incarnation} swept: released ${round.value.released}, ended ${round.value.ended}, ${round.value.discrepancies.map((d) => `${d.kind} ${d.requestId}${'reason' in d ? ` ${d.reason}` : ''}`).join('; ')}`,
        );
    }
  }

  /** The view's liveness sweep (liveness.ts runs it on a global timer): a silent node turns suspect, then lost. */
  async #livenessLoop(incarnation: number): Promise<void> {
    while (this.incarnation === incarnation) {
      await sleep(this.#sched, 1_000, `${this.id} liveness tick`);
      if (this.incarnation !== incarnation) return;
      for (const t of this.view?.sweep() ?? []) this.#sched.trace(`${this.name} view: ${t.nodeId} ${t.from} -> ${t.to}`);
    }
  }

  async #reconcileLoop(incarnation: number): Promise<void> {
    while (this.incarnation === incarnation) {
      await sleep(this.#sched, RECONCILE.everyMs, `${this.id} reconcile tick`);
      const reconciler = this.reconciler;
      if (this.incarnation !== incarnation || reconciler === undefined) return;
      const round = await reconciler.reconcileOnce();
      if (Object.keys(round.outcomes).length > 0)
        this.#sched.trace(`${this.id}#${incarnation} reconciled ${JSON.stringify(round.outcomes)}`);
    }
  }

  /** The operator's `allot node decommission` served by this coordinator (decommission.ts, as the endpoint calls it). */
  decommission(nodeId: string, requestId: string): Promise<Result<DecommissionReply>> {
    const { nodeStates, view, intents, reconciler } = this;
    const agents = this.#agents;
    if (nodeStates === undefined || view === undefined || intents === undefined || reconciler === undefined || agents === undefined)
      return Promise.resolve(err('unavailable', 'not started'));
    return decommissionNode(
      { nodeStates, view, store: intents, agents, reconciler, logger: quietLogger, agentTimeoutMs: 1_000 },
      { nodeId, requestId, reason: 'sim: crashed for good' },
    );
  }

  crash(): void {
    if (!this.up) return;
    this.#sched.trace(`${this.id}#${this.incarnation} CRASH`);
    this.up = false;
    this.incarnation++;
    this.#bucket?.cut();
    this.#clock?.kill();
    this.#quotas?.stop();
    this.nodeStates?.stop();
    this.nodeStates = undefined;
    this.flow = undefined;
    this.reconciler = undefined;
    this.sweep = undefined;
    this.manager = undefined;
    this.moves = undefined;
    this.intents = undefined;
    this.#sched.after(this.#sched.int(100, 5_000), `${this.id} restart`, () => void this.start());
  }

  stepClock(deltaMs: number): void {
    this.#clock?.step(deltaMs);
  }
}

export interface Acked {
  readonly requestId: string;
  readonly tenantId: string;
  readonly nodeId: string;
  readonly allocationId: string;
  /** Placed as a reservation (it expires on its node unless activated). */
  readonly reservation: boolean;
  /** An activate answered ok: it must stay active until released. 'unknown': an activate's outcome was never heard. */
  activated: 'no' | 'unknown' | 'ok';
  /** A release was sent: 'ok' once answered ok (then released on its node's disk for good), 'unknown' otherwise. */
  release: 'no' | 'unknown' | 'ok';
  /** When the release was answered ok (simulated time). */
  releasedAt?: number;
  /** A move of it in flight (this client's or an evacuation's): not released meanwhile. */
  moving?: SimMove;
  /** Moved away by a confirmed move, or by one whose confirm went unanswered: the move checks judge it. */
  moved?: true;
  /** Released on its node by a preemption's `preempted` record (the lifecycle checks judge it). */
  preempted?: true;
}

/**
 * Layer 2: coordinators over the agents. Clients place VMs through random coordinators (retrying the same request id,
 * on any coordinator, after a timeout or an unknown outcome) and release them, while agents and coordinators crash,
 * disks and KV operations fail or stall, KV writes land with their outcome unknown, messages are lost, duplicated and
 * reordered, and clocks are skewed and stepped. Checked as they happen: the agent invariants (layer 1), that an ok
 * place names an allocation live on its node's disk, at most one live allocation per request id across all disks, and
 * that no tenant's live allocations on the disks exceed its limits (t2 and t3 have quotas). Checked once settled
 * (faults off, reconcilers run until quiet): every acknowledged placement not released is live on its node's disk; at most one live allocation per
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
  // The operator's quota.set, before any coordinator starts (straight to the store: no KV fault applies to set-up).
  const operator = new IntentStore(kv, {
    coordinatorId: 'operator',
    clock: { wall: () => sched.now, monotonic: () => sched.now },
    finishedTtlMs: 0,
  });
  for (const quota of QUOTAS) {
    const set = await sched.settle(operator.setQuota(quota), `quota of ${quota.tenantId}`);
    if (!set.ok) throw new Error(`cannot set the quota of ${quota.tenantId}: ${set.error.message}`);
  }
  const coordinators: SimCoordinator[] = [];
  for (let i = 1; i <= options.coordinators; i++) coordinators.push(new SimCoordinator(sched, `c${i}`, kv, network, current));
  const moveFaults = options.moves === true ? new MoveFaults(options.seed ?? 0) : undefined;
  if (moveFaults !== undefined) sched.trace(moveFaults.describe());
  for (const c of coordinators) c.moveFaults = moveFaults;
  for (const c of coordinators) await sched.settle(c.start(), `${c.id} start`);
  const events = new SimEventStream({ sched, faults: current, consumers: () => coordinators });
  // In half the seeds one host crashes for good and the operator decommissions it once it is lost. From the first
  // decommission on, its disk is the operator's word: what it holds is given up, so it leaves the cross-disk checks.
  const loss: HostLossState = {
    nodeId: options.agents >= 3 && sched.chance(0.5) ? `n${options.agents}` : undefined,
    decommissioned: false,
    givenUp: new Set(),
    settled: false,
  };
  const counted = (agent: SimAgent): boolean => !(loss.decommissioned && agent.nodeId === loss.nodeId);
  // Every move destination as soon as its intent is written (before its first allocate): the quota check counts its VM once.
  const book = new MoveBook();
  await kv.watch((change) => {
    if ('deleted' in change || !change.key.startsWith('intent.')) return;
    const intent = decodeIntent(change.value);
    const from = intent.ok ? intent.value.movesFrom : undefined;
    if (!intent.ok || from === undefined) return;
    book.add({
      moveId: from.moveRequestId,
      tenantId: intent.value.tenantId,
      sourceRequestId: from.requestId,
      sourceNodeId: from.nodeId,
      sourceAllocationId: from.allocationId,
      destRequestId: intent.value.requestId,
      outcome: 'starting',
      confirmSent: false,
      mustSurvive: false,
    });
  });
  for (const agent of agents.values()) {
    agent.onEvent = (event, msgId) => events.publish(event, msgId);
    agent.onRecord = (record) => {
      lifecycle?.onRecord(agent, record);
      // A preemptor commits in its `preempted` record, a growth in its `resized` one: both count against the limits.
      if (record.kind !== 'allocated' && record.kind !== 'reserved' && record.kind !== 'preempted' && record.kind !== 'resized') return;
      const { requestId, id, tenantId } = record.allocation;
      // At every instant, at most one live allocation per request id across all disks: fencing moves an intent to another
      // node only after its node refused at a fence above every earlier drive, and takes a failed one over only after that.
      for (const other of agents.values())
        if (other !== agent && counted(other) && other.model.liveOf(requestId).size > 0)
          sched.fail(
            `request ${requestId}: ${id} committed on ${agent.nodeId} while ${[...other.model.liveOf(requestId)].join(', ')} is live on ${other.nodeId}'s disk`,
          );
      // At every instant, a tenant's live allocations on all disks stay within its limits: an intent counts from before
      // its first allocate until its allocation is proven gone (ended, or fenced with nothing held).
      const quota = QUOTAS.find((q) => q.tenantId === tenantId);
      if (quota !== undefined)
        checkTenantLimits(sched, [...agents.values()].filter(counted), quota, `${id} (${requestId}) committed on ${agent.nodeId}`, book);
    };
  }
  let lifecycle: Lifecycle | undefined;
  let batches: BatchClients | undefined;
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
      // A crash leaves the dead incarnation's reads unsettled: never wait for one past the next heartbeat.
      const view = await Promise.race([host.getHostView(), sleep(sched, 500, `${agent.nodeId} host view wait`).then(() => undefined)]);
      if (view === undefined || !view.ok || !agent.up) continue;
      const snapshot = buildUsageSnapshot(
        view.value,
        { status: 'healthy' },
        {
          nodeId: agent.nodeId,
          bootId: `b${agent.incarnation}`,
          labels: {},
          heartbeatMs: 500,
          overcommit: { memory: 1, cpu: AGENT_CPU_OVERCOMMIT },
        },
        clock.now(),
      );
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

  /** A retryable answer: the outcome is unknown, the same request may be sent again. */
  const retryable = (code: string): boolean => code === 'unavailable' || code === 'timeout' || code === 'internal';

  /** An ok place must name an allocation of that request on its node's disk, holding capacity unless released since. */
  // A reservation may expire between the agent's answer and the client's (its TTL runs during a disk stall, in transit):
  // the quota follows its expired event. Released is never an answer (finding 7).
  const checkPlaced = (requestId: string, reply: PlaceReply): void => {
    const a = reply.allocation;
    const onDisk = agents.get(reply.nodeId)?.model.get(a.id);
    const known = acked.get(requestId);
    // A victim preempted between its allocate's turn and the answer: the answer is the allocation as the turn found it.
    const holds = (status: string): boolean =>
      status === 'active' ||
      status === 'reserved' ||
      (a.expiresAt !== undefined && status === 'expired') ||
      (status === 'released' && lifecycle?.isVictim(reply.nodeId, a.id) === true);
    if (onDisk === undefined || onDisk.requestId !== requestId)
      sched.fail(`place ${requestId} acknowledged with ${a.id} on ${reply.nodeId}, not on that node's disk`);
    else if (known !== undefined && known.allocationId !== a.id)
      sched.fail(`place ${requestId} acknowledged with ${a.id}, earlier with ${known.allocationId}`);
    else if (!holds(onDisk.status) && known === undefined)
      sched.fail(`place ${requestId} acknowledged with ${a.id}, which is ${onDisk.status} on ${reply.nodeId}'s disk`);
    // Live on exactly one node's disk: no other node holds this request (the place flow answers before writing placed).
    for (const other of agents.values())
      if (other.nodeId !== reply.nodeId && counted(other) && other.model.liveOf(requestId).size > 0)
        sched.fail(`place ${requestId} acknowledged on ${reply.nodeId} while ${other.nodeId}'s disk holds it live too`);
  };

  const place = async (client: number): Promise<void> => {
    const requestId = `c${client}-p${++counter}`;
    const tenantId = `t${sched.int(1, 3)}`;
    const reservation = sched.chance(0.3) ? { reservation: { ttlMs: sched.int(500, 15_000) } } : {};
    const req = PlaceRequestSchema.parse({
      request: { requestId, tenantId, resources: { memoryMiB: 512 * sched.int(1, 8), vcpus: sched.int(1, 4) }, ...reservation },
    });
    for (let attempt = 1; attempt <= 5; attempt++) {
      const reply = await ask<PlaceReply>((c) => (c.flow as PlaceFlow).place(structuredClone(req)), `place ${requestId}`);
      if (reply === 'timeout') continue;
      if (reply.ok) {
        checkPlaced(requestId, reply.value);
        if (!acked.has(requestId))
          acked.set(requestId, {
            requestId,
            tenantId,
            nodeId: reply.value.nodeId,
            allocationId: reply.value.allocation.id,
            reservation: 'reservation' in reservation,
            activated: 'no',
            release: 'no',
          });
        // A late copy of the same place (a client that retried anyway, a duplicate from its queue), racing whatever
        // comes next for this placement (its release, the sweep): it must answer the same allocation or conflict.
        if (sched.chance(0.2)) {
          sched.after(sched.int(0, 3_000), `place ${requestId} late retry`, () => {
            void ask<PlaceReply>((c) => (c.flow as PlaceFlow).place(structuredClone(req)), `place ${requestId} (late retry)`).then(
              (late) => {
                if (late !== 'timeout' && late.ok) checkPlaced(requestId, late.value);
              },
            );
          });
        }
        return;
      }
      if (!retryable(reply.error.code)) return;
    }
    // Never answered: the placement may exist. Its release (a client cleaning up) races the reconciler and the sweep.
    if (sched.chance(0.5)) await sleep(sched, sched.int(0, 2_000), `release ${requestId} after an unknown place`);
    if (sched.chance(0.5)) {
      const reply = await ask(
        (c) => (c.flow as PlaceFlow).release({ requestId: `rel-${requestId}-unknown`, placementRequestId: requestId, tenantId }),
        `release ${requestId} (place unknown)`,
      );
      if (reply !== 'timeout' && reply.ok) sched.trace(`release of never-acknowledged ${requestId} ok`);
    }
  };

  const release = async (client: number): Promise<void> => {
    const open = [...acked.values()].filter((a) => a.release === 'no' && a.moving === undefined && a.moved === undefined);
    if (open.length === 0) return;
    const a = sched.pick(open);
    a.release = 'unknown';
    // Its earlier moves (aborted, expired) no longer promise it survives: its tenant lets it go.
    for (const m of book.values()) if (m.sourceRequestId === a.requestId) m.mustSurvive = false;
    const releaseId = `rel-${a.requestId}-${client}`;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const reply = await ask(
        (c) => (c.flow as PlaceFlow).release({ requestId: releaseId, placementRequestId: a.requestId, tenantId: a.tenantId }),
        `release ${a.requestId}`,
      );
      if (reply === 'timeout') continue;
      // An answered placement is released whether or not its deferred `placed` write has landed: never "still pending".
      if (!reply.ok && reply.error.details?.['state'] === 'pending')
        sched.fail(`release ${a.requestId}, an acknowledged placement, answered: ${reply.error.message}`);
      if (reply.ok) {
        a.release = 'ok';
        a.releasedAt = sched.now;
        const holder = agents.get(a.nodeId);
        const onDisk = holder !== undefined && counted(holder) ? holder.model.get(a.allocationId) : undefined;
        if (onDisk !== undefined && (onDisk.status === 'active' || onDisk.status === 'reserved'))
          sched.fail(`release ${a.requestId} answered ok while ${a.allocationId} is ${onDisk.status} on ${a.nodeId}'s disk`);
      }
      if (reply.ok || !retryable(reply.error.code)) return;
    }
  };

  /** Activates one of the reservations placed (through any coordinator, by allocation id, as the scheduler does). */
  const activate = async (client: number): Promise<void> => {
    const open = [...acked.values()].filter((a) => a.reservation && a.activated === 'no' && a.release === 'no');
    if (open.length === 0) return;
    const a = sched.pick(open);
    a.activated = 'unknown';
    for (let attempt = 1; attempt <= 3; attempt++) {
      const reply = await ask<Allocation>(
        (c) => (c.manager as ClusterManager).activateReservation(a.allocationId, `act-${a.requestId}-${client}`),
        `activate ${a.requestId} (${a.allocationId})`,
      );
      if (reply === 'timeout') continue;
      if (reply.ok) a.activated = 'ok';
      if (reply.ok || !retryable(reply.error.code)) return;
    }
  };

  /** Settle verbs never answered: the scheduler sends them again once the faults stop (the verbs are resumable). */
  const unanswered: { m: SimMove; verb: 'confirm' | 'abort' }[] = [];

  /**
   * A move's settle verb (confirm or abort) through any coordinator, retried with the same ids while unanswered. A
   * scheduler whose confirm went unanswered may give up and abort instead (MoveFaults.giveUpP); an abort refused because
   * the confirm got past its point of no return (reason `confirming`) is followed by the confirm again.
   */
  const settleMove = async (m: SimMove, first: 'confirm' | 'abort'): Promise<void> => {
    let verb = first;
    const settle = { requestId: m.moveId, allocationId: m.sourceAllocationId };
    for (let attempt = 1; attempt <= 5; attempt++) {
      if (verb === 'confirm') m.confirmSent = true;
      const reply = await ask<Move>((c) => {
        const deps = c.moves as MoveDeps;
        return verb === 'confirm' ? confirmMove(deps, settle, m.tenantId) : abortMove(deps, settle, m.tenantId);
      }, `move ${m.moveId} ${verb}`);
      if (reply === 'timeout') {
        if (verb === 'confirm' && moveFaults !== undefined && moveFaults.random() < moveFaults.giveUpP) {
          sched.trace(`move ${m.moveId}: its confirm went unanswered; the scheduler gives up and aborts it`);
          verb = 'abort';
        }
        continue;
      }
      if (reply.ok) {
        m.outcome = reply.value.state;
        if (reply.value.state === 'confirmed') movedTo(m, reply.value);
        return;
      }
      // Refused for good: the move was settled the other way (an expired hold is aborted; a confirmed move is not).
      const reason = reply.error.details?.['reason'];
      await checkSettleTruth(m, reason);
      // Preempted (or ended on its node) while only held: the VM never left its source (which stays), as after an abort.
      const endedHeld = (reason === 'preempted' || reason === 'released') && reply.error.details?.['state'] === 'released';
      if (reason === 'aborted' || endedHeld) m.outcome = 'aborted';
      if (reply.error.details?.['state'] === 'confirmed') {
        // Confirmed by another hand (the reconciler, a confirm that was unanswered): the VM is its destination now.
        m.outcome = 'confirmed';
        const source = acked.get(m.sourceRequestId);
        if (source !== undefined) source.moved = true;
      }
      if (reply.error.details?.['reason'] === 'confirming' && verb === 'abort') {
        verb = 'confirm';
        continue;
      }
      if (!retryable(reply.error.code) && reply.error.details?.['state'] !== 'pending') break;
      await sleep(sched, 500, `move ${m.moveId} ${verb} retry`);
    }
    if (m.outcome !== 'confirmed' && m.outcome !== 'aborted') {
      m.outcome = 'unknown';
      unanswered.push({ m, verb });
    }
  };

  /**
   * A settle answer tells the truth about the destination: `preempted` only when a `preempted` record released it, and
   * never `aborted` when one did, unless the move was claimed for its abort first (its intent says so; a move whose
   * destination was preempted was not aborted: seed 508).
   */
  const checkSettleTruth = async (m: SimMove, reason: unknown): Promise<void> => {
    if (reason !== 'aborted' && reason !== 'preempted') return;
    const copies = [...agents.values()].flatMap((agent) => agent.model.allOf(m.destRequestId).map((a) => ({ nodeId: agent.nodeId, a })));
    const preempted = copies.some((c) => lifecycle?.isVictim(c.nodeId, c.a.id) === true);
    if (reason === 'aborted' && preempted) {
      const read = await (coordinators[0] as SimCoordinator).intents?.get(m.destRequestId);
      const dest = read?.ok === true ? read.value?.value : undefined;
      // Unreadable now (a fault): not judged. An expired hold answers aborted too (its `expired` record, not preempted).
      if (dest !== undefined && dest.settling !== 'abort')
        sched.fail(
          `move ${m.moveId} answered aborted; its destination was preempted (${dest.state}, released by ${dest.releasedBy ?? '-'})`,
        );
    }
    if (reason === 'preempted' && !preempted && !copies.some((c) => c.nodeId === loss.nodeId))
      sched.fail(`move ${m.moveId} answered preempted; no preempted record released its destination`);
  };

  /** A confirmed move: the tenant's placement is the destination from now on (its release, its checks). */
  const movedTo = (m: SimMove, move: Move): void => {
    const source = acked.get(m.sourceRequestId);
    const held = move.destination.allocation;
    if (source !== undefined) source.moved = true;
    // The VM lives on as the destination (its own acked entry): no move of the source promises anything more.
    for (const earlier of book.values()) if (earlier.sourceRequestId === m.sourceRequestId) earlier.mustSurvive = false;
    if (held === undefined || acked.has(move.destination.requestId)) return;
    // Like an ok place: an ok confirm names its destination active on its node's disk (or preempted there since, or a
    // victim still running out a preemption's grace period: releasing; seed 358; or moved on by a later move's confirm:
    // seed 162).
    const onDisk = agents.get(move.destination.nodeId)?.model.get(held.id);
    const victim = lifecycle?.isVictim(move.destination.nodeId, held.id) === true;
    // A repeated confirm after the VM moved on (an evacuation's confirm released this destination): followed there.
    const isVictim = (nodeId: string, id: string): boolean => lifecycle?.isVictim(nodeId, id) === true;
    const placement = { requestId: move.destination.requestId, nodeId: move.destination.nodeId, allocationId: held.id };
    const movedOn = onDisk?.status === 'released' && followConfirmedMoves(agents, book, placement, isVictim, loss.nodeId)?.ok === true;
    // A held destination handed the count because its source ended (moves.endPlacement) reads confirmed while still a
    // reservation (a confirm activates it): judged as a reservation answered ok, which may expire (seed 669).
    const stillHeld = held.status === 'reserved';
    const holds = ['active', 'releasing', ...(stillHeld ? ['reserved', 'expired'] : [])];
    if (
      source?.release === 'no' &&
      move.destination.nodeId !== loss.nodeId &&
      !holds.includes(onDisk?.status ?? 'missing') &&
      !victim &&
      !movedOn
    )
      sched.fail(
        `move ${m.moveId} confirmed with destination ${held.id} on ${move.destination.nodeId}, which is ${onDisk?.status ?? 'missing'} on that node's disk`,
      );
    acked.set(move.destination.requestId, {
      requestId: move.destination.requestId,
      tenantId: m.tenantId,
      nodeId: move.destination.nodeId,
      allocationId: held.id,
      reservation: stillHeld,
      activated: stillHeld ? 'unknown' : 'ok',
      release: source?.release === 'no' ? 'no' : 'unknown',
    });
  };

  /** The scheduler's side of a held move: confirm it, abort it, or let its hold expire (sometimes after a while). */
  const finishMove = async (m: SimMove, holdMs: number): Promise<void> => {
    await sleep(sched, sched.int(0, Math.round(holdMs * 1.2)), `move ${m.moveId} scheduler thinks`);
    const roll = sched.random();
    if (roll < 0.6) await settleMove(m, 'confirm');
    else if (roll < 0.9) await settleMove(m, 'abort');
    else sched.trace(`move ${m.moveId}: left to expire`);
  };

  /** A tenant moves one of its active placements (two-phase: held on a destination, then confirmed or aborted). */
  const move = async (client: number): Promise<void> => {
    // A VM preempted (`--lifecycle`) is gone: its tenant no longer moves it.
    const open = [...acked.values()].filter(
      (a) =>
        a.release === 'no' &&
        a.moving === undefined &&
        a.moved === undefined &&
        a.preempted === undefined &&
        (!a.reservation || a.activated === 'ok'),
    );
    if (open.length === 0) return;
    const a = sched.pick(open);
    const moveId = `mv-${client}-${++counter}`;
    const m: SimMove = {
      moveId,
      tenantId: a.tenantId,
      sourceRequestId: a.requestId,
      sourceNodeId: a.nodeId,
      sourceAllocationId: a.allocationId,
      destRequestId: destinationRequestId(a.allocationId, moveId),
      outcome: 'starting',
      confirmSent: false,
      mustSurvive: true,
    };
    book.add(m);
    a.moving = m;
    const others = [...agents.keys()].filter((n) => n !== a.nodeId);
    const to = sched.chance(0.4) ? { to: sched.pick(others) } : {};
    const holdMs = sched.int(2_000, 10_000);
    for (let attempt = 1; attempt <= 4; attempt++) {
      const reply = await ask<Move>(
        (c) => moveAllocation(c.moves as MoveDeps, { requestId: moveId, allocationId: a.allocationId, holdMs, ...to }, a.tenantId),
        `move ${moveId} of ${a.requestId} (${a.allocationId})${'to' in to ? ` to ${to.to}` : ''}`,
      );
      if (reply === 'timeout') continue;
      if (reply.ok) {
        m.outcome = reply.value.state;
        if (reply.value.destination.requestId !== m.destRequestId)
          sched.fail(`move ${moveId} answered destination ${reply.value.destination.requestId}, not ${m.destRequestId}`);
        if (reply.value.state === 'held') await finishMove(m, holdMs);
        break;
      }
      if (!retryable(reply.error.code)) {
        m.outcome = 'aborted';
        break;
      }
    }
    if (m.outcome === 'starting') m.outcome = 'unknown';
    // The VM's place is known again unless a confirm went unanswered (it stays the move checks' to judge).
    if (m.outcome === 'unknown' && m.confirmSent) a.moved = true;
    else a.moving = undefined;
  };

  /** The operator evacuates a live node once, mid-run; the scheduler then settles each held move like a tenant's. */
  const evacuator = async (): Promise<void> => {
    await sleep(sched, sched.int(options.durationMs / 4, (options.durationMs * 3) / 4), 'operator plans an evacuation');
    const candidates = [...agents.keys()].filter((n) => n !== loss.nodeId);
    const nodeId = sched.pick(candidates);
    const evacuationId = `evac-${nodeId}-${sched.int(1, 1_000_000)}`;
    const holdMs = sched.int(3_000, 10_000);
    // Its sources are the client's: no release or move of them until the evacuation's moves are settled.
    const held = [...acked.values()].filter(
      (a) => a.nodeId === nodeId && a.release === 'no' && a.moving === undefined && a.moved === undefined && a.preempted === undefined,
    );
    const claim = { moveId: 'evacuation' } as SimMove;
    for (const a of held) a.moving = claim;
    let plan: EvacuateReply | undefined;
    for (let attempt = 1; attempt <= 4 && plan === undefined; attempt++) {
      const reply = await ask<EvacuateReply>(
        (c) => evacuateNode(c.moves as MoveDeps, { requestId: evacuationId, nodeId, holdMs }),
        `evacuate ${nodeId} (${evacuationId})`,
      );
      if (reply !== 'timeout' && reply.ok) plan = reply.value;
      else if (reply !== 'timeout' && !retryable(reply.error.code)) break;
    }
    if (plan !== undefined) {
      sched.trace(`evacuation ${evacuationId}: ${plan.movesCount} moves, ${plan.unplacedCount} unplaced`);
      const settling: Promise<void>[] = [];
      for (const planned of plan.moves) {
        const m = book.get(planned.destination.requestId);
        if (m === undefined) {
          sched.fail(`evacuation ${evacuationId} planned destination ${planned.destination.requestId}, whose intent was never written`);
          continue;
        }
        const source = acked.get(m.sourceRequestId);
        const mine = source !== undefined && source.moving === claim;
        if (mine) {
          source.moving = m;
          m.mustSurvive = true;
        }
        if (planned.state !== 'held') {
          m.outcome = planned.state;
          if (planned.state === 'confirmed') movedTo(m, planned);
          if (mine) source.moving = undefined;
          continue;
        }
        m.outcome = 'held';
        settling.push(
          finishMove(m, holdMs).then(() => {
            if (!mine) return;
            if (m.outcome === 'unknown' && m.confirmSent) source.moved = true;
            else source.moving = undefined;
          }),
        );
      }
      await Promise.all(settling);
    }
    for (const a of held) if (a.moving === claim) a.moving = undefined;
  };

  /** Cumulative shares of the clients' operations (moves take some of place's and activate's when on). */
  const mix = options.moves === true ? { place: 0.5, activate: 0.62, move: 0.7 } : { place: 0.55, activate: 0.7, move: 0.7 };
  const client = async (c: number): Promise<void> => {
    while (sched.now < end && sched.failure === undefined) {
      await sleep(sched, sched.int(0, 500), `client ${c} think`);
      if (lifecycle !== undefined && lifecycle.random() < lifecycle.share) {
        await lifecycle.turn(c);
        continue;
      }
      if (batches !== undefined && batches.random() < batches.share) {
        await batches.turn(c);
        continue;
      }
      const roll = sched.random();
      if (roll < mix.place) await place(c);
      else if (roll < mix.activate) await activate(c);
      else if (roll < mix.move) await move(c);
      else await release(c);
    }
  };

  const chaos = async (): Promise<void> => {
    while (sched.now < end && sched.failure === undefined) {
      await sleep(sched, 100, 'chaos tick');
      for (const agent of agents.values()) {
        if (agent.up && !agent.dead && sched.chance(faults.agentCrashP)) agent.crash('killed');
        if (sched.chance(faults.clockStepP)) agent.stepClock(sched.pick(CLOCK_STEPS_MS));
      }
      for (const c of coordinators) {
        if (c.up && sched.chance(faults.coordinatorCrashP)) c.crash();
        if (sched.chance(faults.clockStepP)) c.stepClock(sched.pick(CLOCK_STEPS_MS));
      }
    }
  };

  /** The host lost for good: crashed a third of the way in, decommissioned through live coordinators until settled. */
  const decommissioner = async (nodeId: string): Promise<void> => {
    await sleep(sched, sched.int(options.durationMs / 5, options.durationMs / 2), 'operator waits');
    const agent = agents.get(nodeId) as SimAgent;
    agent.crash('lost for good', true);
    // Past the view's lostAfterMs (15 s) in most rounds; an earlier one finds it suspect and leaves it unsettled.
    await sleep(sched, sched.int(5_000, 20_000), 'operator notices');
    for (let round = 1; round <= 40 && sched.failure === undefined; round++) {
      loss.decommissioned = true;
      loss.decommissionedAt ??= sched.now;
      const reply = await ask((c) => c.decommission(nodeId, `decommission-${nodeId}-${round}`), `decommission ${nodeId} (round ${round})`);
      if (reply !== 'timeout' && reply.ok) {
        for (const id of [...reply.value.gone, ...reply.value.failed]) loss.givenUp.add(id);
        sched.trace(
          `decommission ${nodeId}: liveness ${reply.value.liveness}, gone ${reply.value.gone.length}, failed ${reply.value.failed.length}, unsettled ${reply.value.unsettled.length}, remaining ${reply.value.remainingCount}, removed ${reply.value.removed}`,
        );
        if (reply.value.removed && reply.value.unsettled.length === 0) {
          loss.settled = true;
          return;
        }
      }
      await sleep(sched, 3_000, 'operator retries the decommission');
    }
  };

  if (options.batches === true) {
    batches = new BatchClients(options.seed ?? 0, { sched, agents, ask, retryable, nextId: () => ++counter, lostNode: loss.nodeId });
    sched.trace(batches.describe());
  }
  if (options.lifecycle === true) {
    lifecycle = new Lifecycle(options.seed ?? 0, {
      sched,
      agents,
      acked,
      book,
      ask,
      retryable,
      checkPlaced,
      nextId: () => ++counter,
      lostNode: loss.nodeId,
    });
    sched.trace(lifecycle.describe());
    const late = lifecycle;
    network.lateCopy = (verb) => late.lateCopy(verb);
  }
  for (const agent of agents.values()) void feed(agent);
  const running = [
    chaos(),
    ...Array.from({ length: options.clients }, (_, i) => client(i + 1)),
    ...(loss.nodeId === undefined ? [] : [decommissioner(loss.nodeId)]),
    ...(options.moves === true && sched.chance(0.5) ? [evacuator()] : []),
  ];
  let done = false;
  void Promise.all(running).then(() => (done = true));
  while (!done && sched.failure === undefined && (await sched.step()));
  if (sched.failure !== undefined) return;

  // Settle: faults off, everyone up, reconcilers run until nothing is pending and old enough.
  faults = { ...QUIET };
  sched.trace('settling: faults off');
  for (const agent of agents.values()) if (!agent.up && !agent.dead) await sched.settle(agent.start(), `${agent.nodeId} start`);
  await sched.runUntil(sched.now + 6_000);
  for (const c of coordinators) if (!c.up) await sched.settle(c.start(), `${c.id} start`);
  // A scheduler finishes what it started: each unanswered confirm or abort is sent again, unless the schedulers walked
  // away (MoveFaults.walkAway): then the coordinators' reconcilers alone drive every half-settled move to its end.
  if (moveFaults?.walkAway === true) sched.trace(`settling: the schedulers walked away from ${unanswered.length} unanswered verbs`);
  else for (const { m, verb } of unanswered.splice(0)) await sched.settle(settleMove(m, verb), `move ${m.moveId} ${verb} again`);
  await sched.runUntil(sched.now + 60_000);
  stopFeed = true;
  if (sched.failure !== undefined) return;
  if (loss.nodeId !== undefined && !loss.settled)
    sched.fail(`the decommission of ${loss.nodeId}, lost for good, never settled (removed, nothing unsettled)`);
  if (loss.nodeId !== undefined) {
    // A decommission run again answers what every round did (read back from the intents): whatever was given up, by a
    // round whose reply was lost (the client timed out, its coordinator crashed; seed 17) or by the reconciler on the
    // decommission's word between two rounds (seed 5), is named by a reply the operator received.
    const scanned = await sched.settle(((coordinators[0] as SimCoordinator).intents as IntentStore).scan(), 'scan for decommission');
    if (scanned.ok)
      for (const { value: i } of scanned.value) {
        if (i.nodeId !== loss.nodeId || loss.givenUp.has(i.requestId)) continue;
        const givenUp =
          (i.state === 'released' && i.releasedBy === 'decommission') ||
          (i.state === 'failed' && i.error?.details?.['reason'] === 'node_decommissioned');
        if (givenUp) sched.fail(`placement ${i.requestId} was given up by the decommission of ${loss.nodeId}, and no reply named it`);
      }
  }
  lifecycle?.markVictims();
  const isVictim = (nodeId: string, id: string): boolean => lifecycle?.isVictim(nodeId, id) === true;
  checkSettled(sched, agents, acked, loss, book, isVictim);
  checkMovesSettled(sched, agents, book, loss.nodeId, isVictim);
  lifecycle?.checkSettled();
  await batches?.checkSettled((coordinators[0] as SimCoordinator).intents as IntentStore);
  if (events.unacked > 0) sched.fail(`${events.unacked} ending events still unacknowledged by the quota-events consumer once settled`);
  const c = coordinators[0] as SimCoordinator;
  for (const tenantId of ['t1', 't2', 't3']) {
    const usage = await sched.settle((c.intents as IntentStore).usage(tenantId), `usage of ${tenantId}`);
    if (!usage.ok) {
      sched.fail(`usage of ${tenantId} unreadable after settling: ${usage.error.message}`);
      continue;
    }
    const recorded = usage.value?.value.usage ?? { vms: 0, memoryMiB: 0, vcpus: 0 };
    const live = { vms: 0, memoryMiB: 0, vcpus: 0 };
    for (const agent of [...agents.values()].filter(counted))
      for (const a of agent.model.live())
        // A move's held destination counts 0 (its source counts); one its host keeps past the settle after a reboot and
        // a wall-clock step (SimAgent.expiresOnWallClock) is still held, so it still counts 0.
        if (
          a.tenantId === tenantId &&
          !(a.status === 'reserved' && book.get(a.requestId) !== undefined && agent.expiresOnWallClock(a.id))
        ) {
          live.vms++;
          live.memoryMiB += a.memoryMiB;
          live.vcpus += a.vcpus;
        }
    if (recorded.vms !== live.vms || recorded.memoryMiB !== live.memoryMiB || recorded.vcpus !== live.vcpus) {
      await traceDisagreement(sched, c.intents as IntentStore, agents, tenantId);
      sched.fail(
        `tenant ${tenantId}: usage record ${JSON.stringify({ vms: recorded.vms, memoryMiB: recorded.memoryMiB, vcpus: recorded.vcpus })}, live placements on the agents' disks ${JSON.stringify(live)}`,
      );
    }
  }
}

/**
 * Fails the run when the tenant's live allocations across every agent's disk exceed one of its limits, naming them. A
 * VM counts once however many copies of it are live during its moves (a move never counts twice against quota).
 */
function checkTenantLimits(sched: Scheduler, agents: readonly SimAgent[], quota: TenantQuota, when: string, book: MoveBook): void {
  const live: string[] = [];
  const used = { vms: 0, vcpus: 0, memoryMiB: 0 };
  const vms = new Set<string>();
  for (const agent of agents)
    for (const a of agent.model.live())
      if (a.tenantId === quota.tenantId) {
        const vm = book.vmOf(a.requestId);
        live.push(
          `${agent.nodeId}/${a.id} ${a.requestId}${vm === a.requestId ? '' : ` (a copy of ${vm})`} fence ${a.fence ?? '-'} ${a.status}`,
        );
        if (vms.has(vm)) continue;
        vms.add(vm);
        used.vms++;
        used.vcpus += a.vcpus;
        used.memoryMiB += a.memoryMiB;
      }
  const limits = [
    ['vms', quota.maxVms],
    ['vcpus', quota.maxVcpus],
    ['memoryMiB', quota.maxMemoryMiB],
  ] as const;
  for (const [key, max] of limits)
    if (max !== undefined && used[key] > max) {
      sched.fail(
        `tenant ${quota.tenantId}: ${used[key]} ${key} live on the agents' disks, over its limit ${max}, when ${when}; live: ${live.join('; ')}`,
      );
      return;
    }
}

/** For a failing quota check: the tenant's counting intents without a live allocation, and live allocations without one. */
async function traceDisagreement(
  sched: Scheduler,
  store: IntentStore,
  agents: ReadonlyMap<string, SimAgent>,
  tenantId: string,
): Promise<void> {
  const scanned = await sched.settle(store.scan(), 'scan');
  if (!scanned.ok) return;
  const live = new Map<string, string>();
  const amounts = new Map<string, string>();
  for (const agent of agents.values())
    for (const a of agent.model.live())
      if (a.tenantId === tenantId) {
        live.set(a.requestId, `${a.id} ${a.status} ${a.memoryMiB} MiB ${a.vcpus} vCPUs`);
        amounts.set(a.requestId, `${a.memoryMiB}/${a.vcpus}`);
      }
  const counting = new Set<string>();
  for (const { value: i, revision } of scanned.value) {
    if (i.tenantId !== tenantId) continue;
    if (i.state === 'pending' || i.state === 'placed') counting.add(i.requestId);
    const held = live.get(i.requestId);
    // A resize settled on its node and not in its intent (or the other way round): the amounts disagree.
    const counts = i.state === 'pending' || i.state === 'placed';
    if (counts && held !== undefined && amounts.get(i.requestId) !== `${i.memoryMiB}/${i.vcpus}`)
      sched.trace(
        `disagreement: intent ${i.requestId} ${i.state} on ${i.nodeId} attempt ${i.attempt} rev ${revision} counts ${i.memoryMiB} MiB ${i.vcpus} vCPUs${i.resizing === undefined ? '' : ` (resizing ${i.resizing.requestId} from ${i.resizing.memoryMiB}/${i.resizing.vcpus})`}; live: ${held}`,
      );
    if ((i.state === 'pending' || i.state === 'placed') !== (held !== undefined))
      sched.trace(
        `disagreement: intent ${i.requestId} ${i.state} on ${i.nodeId} attempt ${i.attempt} rev ${revision} (${i.memoryMiB} MiB ${i.vcpus} vCPUs); live: ${held ?? 'none'}`,
      );
  }
  for (const [requestId, what] of live)
    if (!counting.has(requestId)) sched.trace(`disagreement: ${requestId} live (${what}) with no counting intent`);
}

/** A host crashed for good and the operator's decommission of it: what it gave up, whether it settled. */
interface HostLossState {
  readonly nodeId: string | undefined;
  /** The first decommission was sent: the lost host's disk is given up from then on. */
  decommissioned: boolean;
  /** When the first decommission was sent (simulated time). */
  decommissionedAt?: number;
  /** Request ids the decommission reported `gone` or `failed`. */
  readonly givenUp: Set<string>;
  settled: boolean;
}

function checkSettled(
  sched: Scheduler,
  agents: ReadonlyMap<string, SimAgent>,
  acked: ReadonlyMap<string, Acked>,
  loss: HostLossState,
  book: MoveBook,
  isVictim: (nodeId: string, allocationId: string) => boolean,
): void {
  const liveByRequest = new Map<string, string[]>();
  for (const agent of agents.values())
    if (agent.nodeId !== loss.nodeId)
      for (const a of agent.model.live()) liveByRequest.set(a.requestId, [...(liveByRequest.get(a.requestId) ?? []), a.id]);
  for (const [requestId, ids] of liveByRequest)
    if (ids.length > 1) sched.fail(`request ${requestId} holds ${ids.length} live allocations once settled: ${ids.join(', ')}`);
  for (const a of acked.values()) {
    // Moved away (confirmed, or a confirm unanswered): checkMovesSettled judges where it is. Preempted: a `preempted`
    // record named it a victim (Lifecycle.checkSettled judges it); any other end of it is still a failure below.
    if (a.moved === true || a.preempted === true) continue;
    const status = agents.get(a.nodeId)?.model.get(a.allocationId)?.status ?? 'missing';
    const what = `acknowledged placement ${a.requestId} (${a.allocationId}${a.reservation ? `, a reservation, activate ${a.activated}` : ''})`;
    if (a.nodeId === loss.nodeId) {
      // On the host lost for good: released by its tenant, given up by the decommission (reported), or it is lost.
      const ended = status === 'released' || status === 'expired'; // before the host died (its event or the sweep counted it)
      // A release answered ok after the decommission proves nothing (the decommission released the intent first).
      const released = a.release === 'ok' && (a.releasedAt ?? 0) < (loss.decommissionedAt ?? Number.POSITIVE_INFINITY);
      const givenUp = loss.givenUp.has(a.requestId);
      sched.trace(
        `lost host ${a.nodeId}: ${what}: ${released ? 'released' : ended ? `${status} before the crash` : givenUp ? 'given up' : 'NOT given up'}`,
      );
      if (!released && !ended && !givenUp)
        sched.fail(`${what} was on ${a.nodeId}, lost for good, and the decommission never reported it given up`);
      continue;
    }
    if (a.release === 'unknown') continue;
    // Released by a move's confirm its client never heard answered: the VM is its destination now (followed there).
    const followed = a.release === 'no' && status === 'released' ? followConfirmedMoves(agents, book, a, isVictim, loss.nodeId) : undefined;
    if (followed !== undefined) {
      sched.trace(`${what}: followed through its confirmed move: ${followed.trail}`);
      if (!followed.ok) sched.fail(`${what} was moved by a confirm and lost: ${followed.trail}`);
      continue;
    }
    if (a.release === 'ok') {
      if (status === 'active' || status === 'reserved')
        sched.fail(`${what} was released (acknowledged) and is ${status} on ${a.nodeId}'s disk once settled`);
      continue;
    }
    // Not released by its tenant: active; a reservation not known activated may also have expired. One still held
    // after a reboot and a wall-clock step expires at its wall-clock instant (the only information a reboot leaves).
    if (status === 'reserved' && agents.get(a.nodeId)?.expiresOnWallClock(a.allocationId) === true) {
      sched.trace(`${what} is still reserved: its host rebooted and its wall clock stepped since it was made`);
      continue;
    }
    const allowed = a.reservation && a.activated !== 'ok' ? ['active', 'expired'] : ['active'];
    if (!allowed.includes(status)) sched.fail(`${what} is ${status} on ${a.nodeId}'s disk once settled`);
  }
}

/** Placements counted on a node by the tenants' usage records this store has seen (as coordinator.ts counts them). */
function countingOn(store: IntentStore, nodeId: string): number {
  let n = 0;
  for (const { value } of store.cachedTenants()) n += value.usage.vmsPerNode[nodeId] ?? 0;
  return n;
}
