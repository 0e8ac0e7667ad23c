import { decode, decodeWith, encode, PROTOCOL_HEADER, PROTOCOL_VERSION, usageSubject, type AgentVerb } from '@allot/protocol';
import { err, type Health, type HostProbe, type Result } from '@allot/core';
import { Coalescer, type AsyncJetStreamPublisher, type EndpointSpec, type RequestContext } from '@allot/nats';
import { headers as natsHeaders, type Msg } from '@nats-io/transport-node';
import { AgentConfigSchema, type AgentConfig } from '../../apps/agent/src/config/index.ts';
import { agentEndpoints } from '../../apps/agent/src/endpoints.ts';
import { eventsOfRecord, refusalEvent, type EventPublisher } from '../../apps/agent/src/events.ts';
import { createHostManager, createProbe, sampleHost } from '../../apps/agent/src/host.ts';
import { NodeLease, type LeaseKv } from '../../apps/agent/src/node-lease.ts';
import {
  buildUsageSnapshot,
  CoreListElision,
  coreListRefreshMs,
  IdleStatus,
  type SnapshotContext,
} from '../../apps/agent/src/usage-snapshot.ts';
import type { DurableState, HostManager, HostRecord, ReplayableJournal } from '../../packages/managers/src/index.ts';

/** What one simulated host is: its id, size and labels, and how often it reports. */
export interface SimHostSpec {
  readonly nodeId: string;
  readonly cores: number;
  readonly memoryMiB: number;
  readonly labels: Record<string, string>;
  readonly heartbeatMs: number;
  /** An unchanged host reports this often (the agent's idleStatusMs); default heartbeatMs. */
  readonly idleStatusMs?: number;
  readonly usagePublishMinIntervalMs: number;
}

/** What a worker shares among its hosts: one connection's publishers. */
export interface SimHostShared {
  /** Usage snapshots and events go through one pipelined JetStream publisher per worker process. */
  readonly publisher: AsyncJetStreamPublisher;
  readonly events: EventPublisher;
  /** Called after each usage snapshot the stream acknowledged: (node, seq, at of the snapshot). */
  readonly onPublished?: (nodeId: string, seq: number) => void;
  /** KV allot_nodes: each host takes and renews its node lease there, as the agent does. */
  readonly leases?: LeaseKv;
}

type Logger = Parameters<typeof createProbe>[1];
/** A logger that says nothing (the fleet's hosts would otherwise log thousands of lines). */
export const silentLogger = {
  fatal: () => undefined,
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  trace: () => undefined,
  child: () => silentLogger,
} as unknown as Logger;
const NO_CONTEXT = {} as RequestContext;

/**
 * The journal of a simulated host: every record is durable at once and kept nowhere. Ten thousand ledgers with fsync
 * do not fit one machine, and what the fleet measures is the coordinators: the host's decisions (HostManager) are the
 * real ones, its durability is not simulated (apps/agent's LedgerJournal and test/sim cover that).
 */
class ForgetfulJournal implements ReplayableJournal {
  readonly #onDurable: (record: HostRecord) => void;
  constructor(onDurable: (record: HostRecord) => void) {
    this.#onDurable = onDurable;
  }
  append(record: HostRecord): Promise<void> {
    this.#onDurable(record);
    return Promise.resolve();
  }
  load(): Promise<DurableState> {
    return Promise.resolve({ records: [] });
  }
}

/**
 * One simulated host as its agent runs it: the real HostManager built by the agent's own code (apps/agent/src/host.ts,
 * a SimulatedProbe), the agent's real endpoint handlers, real usage snapshots (buildUsageSnapshot) published coalesced
 * with a heartbeat (the agent's Coalescer, without the per-core list while it is unchanged, and when idle only every
 * idleStatusMs) on `allot.usage.<node>`, the agent's events for every record, and its node lease (the agent's NodeLease,
 * renewed every 5 s) when the worker gives a bucket. What is not the agent's: no ledger on disk, no NATS service of its
 * own (a worker serves all its hosts on one connection, worker.ts), the probe sampled at each snapshot rather than
 * every second.
 */
export class SimHost {
  readonly spec: SimHostSpec;
  readonly bootId: string;
  #host: HostManager | undefined;
  #probe: HostProbe | undefined;
  #endpoints = new Map<string, EndpointSpec>();
  #usage: Coalescer<number> | undefined;
  /** Heartbeats of unchanged cores leave the per-core list out, as the agent's do; idle hosts report seldom. */
  readonly #elision: CoreListElision;
  readonly #idle: IdleStatus;
  #changes = 0;
  #lease: NodeLease | undefined;
  #ctx: SnapshotContext;
  #config: AgentConfig;
  readonly #shared: SimHostShared;
  /** Health thresholds lowered (a health change of the churn): the host reports degraded. */
  degraded = false;
  /** The host manager's seq after its latest journaled change (what the next snapshot carries). */
  seq = 0;

  constructor(spec: SimHostSpec, shared: SimHostShared) {
    this.spec = spec;
    this.#shared = shared;
    this.bootId = `${spec.nodeId}-${Date.now().toString(36)}`;
    this.#elision = new CoreListElision(coreListRefreshMs(spec.idleStatusMs ?? spec.heartbeatMs), spec.heartbeatMs);
    this.#idle = new IdleStatus(spec.idleStatusMs ?? spec.heartbeatMs, spec.heartbeatMs);
    this.#config = AgentConfigSchema.parse({
      nodeId: spec.nodeId,
      stateDir: '/nonexistent',
      labels: spec.labels,
      simulatedHost: { cores: spec.cores, memoryMiB: spec.memoryMiB },
      cpu: { overcommitRatio: 4 },
      heartbeatMs: spec.heartbeatMs,
      usagePublishMinIntervalMs: spec.usagePublishMinIntervalMs,
      logLevel: 'silent',
    });
    this.#ctx = {
      nodeId: spec.nodeId,
      bootId: this.bootId,
      labels: spec.labels,
      heartbeatMs: spec.heartbeatMs,
      ...(spec.idleStatusMs === undefined ? {} : { idleStatusMs: spec.idleStatusMs }),
      overcommit: { memory: this.#config.memory.overcommitRatio, cpu: this.#config.cpu.overcommitRatio },
    };
  }

  get host(): HostManager {
    if (this.#host === undefined) throw new Error(`${this.spec.nodeId} not started`);
    return this.#host;
  }

  /** Builds the host manager as the agent does, then starts publishing (the first snapshot at once). */
  async start(): Promise<void> {
    await this.build();
    const kv = this.#shared.leases;
    if (kv !== undefined) {
      const holder = { identity: `${this.spec.nodeId}-identity`, bootId: this.bootId, host: 'fleet', pid: process.pid, since: Date.now() };
      const lease = await NodeLease.acquire(kv, this.spec.nodeId, holder, { log: silentLogger, onLost: () => undefined });
      if (!lease.ok) throw new Error(lease.error.message);
      this.#lease = lease.value;
    }
    this.#usage = new Coalescer<number>({
      minIntervalMs: this.spec.usagePublishMinIntervalMs,
      heartbeatMs: this.spec.heartbeatMs,
      publish: (change) => this.#publish(change),
    });
    this.host.onChange(() => this.#statusChanged());
    this.#statusChanged();
  }

  #statusChanged(): void {
    this.#usage?.update(++this.#changes);
  }

  /** Builds the host manager as the agent does, and its endpoints; publishes nothing. */
  async build(): Promise<void> {
    const probe = await createProbe(this.#config, silentLogger);
    if (!probe.ok) throw new Error(probe.error.message);
    this.#probe = probe.value;
    const nodeId = this.spec.nodeId;
    const journal = new ForgetfulJournal((record) => {
      for (const { event, msgId } of eventsOfRecord(nodeId, record)) this.#shared.events.publish(event, msgId);
    });
    const host = await createHostManager(this.#config, this.#probe, journal);
    if (!host.ok) throw new Error(host.error.message);
    this.#host = host.value;
    const restored = await this.#host.restore(undefined, []);
    if (!restored.ok) throw new Error(restored.error.message);
    this.#endpoints = new Map(
      agentEndpoints({
        nodeId,
        host: this.#host,
        usage: () => this.snapshot(),
        hostHealth: () => Promise.resolve(err('unavailable', 'not simulated')),
        refused: (request, error) =>
          this.#shared.events.publish(
            refusalEvent(nodeId, request, error, Date.now()),
            `${nodeId}-refused-${request.requestId}-${Date.now()}`,
          ),
      }).map((ep) => [ep.subject.slice(`allot.agent.${nodeId}.`.length), ep]),
    );
    this.#host.onChange((seq) => (this.seq = seq));
  }

  /** A snapshot now, as the agent builds it (the probe told what is committed first). */
  async snapshot(): Promise<Result<ReturnType<typeof buildUsageSnapshot>>> {
    const host = this.host;
    if (this.#probe !== undefined) await sampleHost(this.#probe, host);
    const view = await host.getHostView();
    if (!view.ok) return view;
    const health = await host.healthCheck();
    const value: Health = health.ok ? health.value : { status: 'unhealthy', reasons: [health.error.message] };
    return { ok: true, value: buildUsageSnapshot(view.value, value, this.#ctx, Date.now()) };
  }

  async #publish(change: number): Promise<boolean> {
    const snapshot = await this.snapshot();
    if (!snapshot.ok) return false;
    const now = performance.now();
    if (!this.#idle.due(snapshot.value, change, now)) return true;
    const wire = this.#elision.forPublish(snapshot.value, now);
    const sent = await this.#shared.publisher.publish(usageSubject(this.spec.nodeId), wire);
    if (sent.ok) {
      this.#elision.published(wire, now);
      this.#idle.published(snapshot.value, change, now);
      this.#shared.onPublished?.(this.spec.nodeId, snapshot.value.seq);
    }
    return sent.ok;
  }

  /** Health change (churn): thresholds so low the host reports degraded, or back to the defaults; published at once. */
  setDegraded(degraded: boolean): void {
    this.degraded = degraded;
    const thresholds = degraded ? { ...this.#config.health, usedDegradedPermille: 1, committedDegradedPermille: 1 } : this.#config.health;
    this.host.setHealthThresholds('memory', thresholds);
    this.#statusChanged();
  }

  /** One request on `allot.agent.<node>.<verb>`, answered as the agent's service does (decode, handler, envelope). */
  async handle(verb: string, msg: Msg): Promise<void> {
    const ep = this.#endpoints.get(verb as AgentVerb);
    let result: Result<unknown>;
    if (ep === undefined) result = err('invalid_request', `no verb ${verb}`);
    else {
      const request =
        ep.parse === undefined
          ? decode(ep.requestSchema, msg.data, Number.POSITIVE_INFINITY)
          : decodeWith(ep.parse, msg.data, Number.POSITIVE_INFINITY);
      try {
        result = request.ok ? await ep.handler(request.value, NO_CONTEXT) : request;
      } catch (e) {
        result = err('internal', `handler ${verb} failed: ${(e as Error).message}`);
      }
    }
    const h = natsHeaders();
    h.set(PROTOCOL_HEADER, String(PROTOCOL_VERSION));
    msg.respond(encode(result), { headers: h });
  }

  async stop(): Promise<void> {
    this.#usage?.stop();
    await this.#lease?.release();
  }
}
