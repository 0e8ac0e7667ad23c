import { randomUUID } from 'node:crypto';
import { AGENT_QUEUE, AGENT_SERVICE_NAME, type HostHealth, KV_NODES, NODE_LEASE_TTL_MS, usageSubject } from '@allot/protocol';
import { ALLOT_VERSION, ok, err, type AllotError, type Health, type HostProbe, type Result, type UsageSnapshot } from '@allot/core';
import type { HostManager } from '@allot/managers';
import {
  AsyncJetStreamPublisher,
  Coalescer,
  connectNats,
  ensureKv,
  ensureStreams,
  publishDurable,
  retryWithBackoff,
  serveService,
  type ServedService,
} from '@allot/nats';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/index.ts';
import { agentEndpoints } from './endpoints.ts';
import { EventPublisher, eventsOfRecord, refusalEvent } from './events.ts';
import { createHostManager, createProbe, sampleHost } from './host.ts';
import { LedgerJournal } from './ledger-journal.ts';
import { AgentMetrics } from './metrics.ts';
import { loadStateIdentity, NodeLease, type LeaseKv } from './node-lease.ts';
import { buildUsageSnapshot, CoreListElision, coreListRefreshMs, IdleStatus, type SnapshotContext } from './usage-snapshot.ts';
import { secureStateDir } from './state-dir.ts';

export const AGENT_VERSION = ALLOT_VERSION;

/**
 * One running agent: the only authority over its host. Start-up order matters: the ledger is opened and replayed
 * (overdue reservations expire) before anything is served, so no request ever sees a half-recovered host; NATS comes
 * next, then the node's lease (one agent per node id, node-lease.ts), and only then the service. Shutdown runs the
 * other way: stop taking requests, finish those in flight, flush the ledger, give the lease back, drain NATS.
 */
export class Agent {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly bootId = randomUUID();
  readonly startedAt = Date.now();
  #probe: HostProbe | undefined;
  #journal: LedgerJournal | undefined;
  #host: HostManager | undefined;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #service: ServedService | undefined;
  #lease: NodeLease | undefined;
  #serviceStopped: Promise<void> | undefined;
  #usage: Coalescer<number> | undefined;
  /** Changes announced to the usage publisher: its state, so a tick tells a change from an idle heartbeat. */
  #changes = 0;
  readonly #events: EventPublisher;
  readonly #metrics: AgentMetrics;
  #timers: Array<ReturnType<typeof setInterval>> = [];
  #recoveryMs = 0;
  /** Published in every usage snapshot; a configuration reload replaces them (applyReload()). */
  #labels: Record<string, string>;
  /** Memory and CPU health thresholds, as reloaded; config.health until then. */
  #health: AgentConfig['health'];
  #stopping = false;
  /** Set when the agent must exit non-zero (the ledger failed, or another agent holds this node's lease). */
  fatal: unknown;
  #onFatal: (error: unknown) => void = () => {};

  constructor(config: AgentConfig, log: Logger) {
    this.config = config;
    this.log = log;
    this.#labels = config.labels;
    this.#health = config.health;
    // Before the ledger opens: expiries journaled during recovery become events as soon as NATS is reachable.
    this.#events = new EventPublisher(log.child({ component: 'events' }));
    // No-ops unless main.ts started the metrics SDK first; the gauges read the host at each scrape.
    this.#metrics = new AgentMetrics(() => {
      const host = this.#host;
      if (host === undefined) return undefined;
      return {
        nodeId: config.nodeId,
        usage: () => host.getUsage(),
        health: () => host.healthCheck(),
        cordoned: async () => {
          const view = await host.getHostView();
          return view.ok && view.value.cordoned;
        },
      };
    });
  }

  get host(): HostManager {
    if (this.#host === undefined) throw new Error('agent not started');
    return this.#host;
  }

  /** Called when the agent cannot go on (the ledger failed, the node lease was lost): main exits non-zero. */
  onFatal(handler: (error: unknown) => void): void {
    this.#onFatal = handler;
  }

  async start(): Promise<Result<{ recoveryMs: number; recordsReplayed: number; expired: number }>> {
    const started = performance.now();
    const probe = await createProbe(this.config, this.log.child({ component: 'probe' }));
    if (!probe.ok) return probe;
    this.#probe = probe.value;

    try {
      await secureStateDir(this.config.stateDir);
    } catch (e) {
      return err('internal', `cannot create or tighten the state directory ${this.config.stateDir}: ${(e as Error).message}`, {
        stateDir: this.config.stateDir,
      });
    }
    const journal = await LedgerJournal.open({
      dir: join(this.config.stateDir, 'ledger'),
      log: this.log.child({ component: 'ledger' }),
      onFatal: (error) => {
        this.fatal = error;
        this.log.fatal({ err: error }, 'ledger can no longer make records durable; stopping so that a restart recovers from disk');
        this.#onFatal(error);
      },
      // The dedupe id is node + ledger seq: equal for a republish of the same record, never reused (a torn tail was
      // never acknowledged, so its seq was never published).
      onDurable: (record) => {
        for (const { event, msgId } of eventsOfRecord(this.config.nodeId, record)) this.#events.publish(event, msgId);
      },
      onFsync: (ms, records) => this.#metrics.fsync(ms, records),
    }).then(
      (j) => ok(j),
      (error: unknown) => err<LedgerJournal>('internal', `cannot open the ledger in ${this.config.stateDir}: ${(error as Error).message}`),
    );
    if (!journal.ok) return journal;
    this.#journal = journal.value;

    const host = await createHostManager(this.config, this.#probe, this.#journal);
    if (!host.ok) return host;
    this.#host = host.value;
    // A reload while the agent was starting: its thresholds, not the file's at start-up.
    this.applyReload({ labels: this.#labels, health: this.#health });
    this.#host.onFailure((error) => {
      this.fatal = error;
      this.log.fatal(
        { err: error },
        'host manager stopped: it crashed and could not be rebuilt from the ledger; exiting so that a restart recovers from disk',
      );
      this.#onFatal(error);
    });
    const durable = this.#journal.durableState();
    const restored = await this.#host.restore(durable.snapshot, durable.records);
    if (!restored.ok) return err('internal', `ledger replay failed: ${restored.error.message}`, restored.error.details);
    this.#recoveryMs = Math.round(performance.now() - started);
    this.log.info(
      {
        recoveryMs: this.#recoveryMs,
        ledgerOpenMs: Math.round(this.#journal.recovery.recoveryMs),
        recordsReplayed: durable.records.length,
        snapshotSeq: durable.snapshot?.seq ?? 0,
        bytesDiscarded: this.#journal.recovery.bytesDiscarded,
        expiredWhileDown: restored.value.expired,
        seq: restored.value.seq,
      },
      'ledger recovered',
    );

    // Under the ledger's lock: the state directory's identity tells a previous boot of this agent from another agent.
    const identity = await loadStateIdentity(this.config.stateDir).then(
      (id) => ok(id),
      (error: unknown) =>
        err<string>('internal', `cannot read or create the node identity in ${this.config.stateDir}: ${(error as Error).message}`),
    );
    if (!identity.ok) return identity;

    this.#startSampling();
    const connected = await this.#connect(identity.value);
    if (!connected.ok) return connected;
    return ok({ recoveryMs: this.#recoveryMs, recordsReplayed: durable.records.length, expired: restored.value.expired });
  }

  #startSampling(): void {
    const sample = async (): Promise<void> => {
      if (this.#probe !== undefined && this.#host !== undefined) await sampleHost(this.#probe, this.#host);
    };
    const timer = setInterval(() => {
      sample().catch((error: unknown) => this.log.warn({ err: error }, 'probe sample failed'));
    }, this.config.samplingIntervalMs);
    timer.unref();
    this.#timers.push(timer);
    const compaction = setInterval(() => {
      const host = this.#host;
      // compactIfDue logs its own failures; the catch keeps a throw before its try from becoming an unhandled rejection.
      if (host !== undefined) this.#journal?.compactIfDue(() => host.exportState()).catch(() => undefined);
    }, 1_000);
    compaction.unref();
    this.#timers.push(compaction);
  }

  /** Connects to NATS, retrying until it succeeds or the agent stops: the host keeps its state meanwhile. */
  async #connect(identity: string): Promise<Result<void>> {
    const log = this.log.child({ component: 'nats' });
    const connected = await retryWithBackoff(
      () =>
        connectNats(this.config.nats, {
          name: `allot-agent-${this.config.nodeId}`,
          logger: log,
          onReconnect: () => this.#republish(),
          onClosed: (error) => this.#connectionLost(error),
        }),
      {
        // A refused credential or a bad config file (invalid_request) cannot be helped by waiting.
        retryable: (r) => !r.ok && r.error.code !== 'invalid_request',
        stopped: () => this.#stopping,
        onWait: (r, waitMs) =>
          log.warn(
            { err: r.ok ? undefined : r.error, retryInMs: waitMs },
            'NATS not reachable yet; the host keeps its state and the agent retries',
          ),
      },
    );
    if (!connected.ok)
      return connected.error.code === 'invalid_request' ? connected : err('unavailable', 'stopped before NATS was reachable');
    const nc = connected.value;
    this.#nc = nc;
    // Serving does not wait for JetStream: while a NATS cluster re-forms it may have no leader for a while. The streams
    // are ensured in the background; usage and events are retried until they are stored.
    void this.#ensureStreamsUntilDone(nc, log);
    this.#js = jetstream(nc);
    this.#events.attach(new AsyncJetStreamPublisher(nc));
    const js = this.#js;
    const labels = (): Record<string, string> => this.#labels;
    const ctx: SnapshotContext = {
      nodeId: this.config.nodeId,
      bootId: this.bootId,
      get labels() {
        return labels();
      },
      heartbeatMs: this.config.heartbeatMs,
      ...(this.config.idleStatusMs === undefined ? {} : { idleStatusMs: this.config.idleStatusMs }),
      overcommit: { memory: this.config.memory.overcommitRatio, cpu: this.config.cpu.overcommitRatio },
    };
    const idleStatusMs = this.config.idleStatusMs ?? this.config.heartbeatMs;
    const elision = new CoreListElision(coreListRefreshMs(idleStatusMs), this.config.heartbeatMs);
    const idle = new IdleStatus(idleStatusMs, this.config.heartbeatMs);
    this.#usage = new Coalescer<number>({
      minIntervalMs: this.config.usagePublishMinIntervalMs,
      heartbeatMs: this.config.heartbeatMs,
      // `change` is the number of changes announced (statusChanged): a heartbeat tick repeats the last one.
      publish: async (change) => {
        const snapshot = await this.usageSnapshot(ctx);
        if (!snapshot.ok) return false;
        const now = performance.now();
        if (!idle.due(snapshot.value, change, now)) return true; // idle: the node lease says it lives
        const wire = elision.forPublish(snapshot.value, now);
        const sent = await publishDurable(js, usageSubject(this.config.nodeId), wire, { timeoutMs: 2_000 });
        if (sent.ok) {
          elision.published(wire, now);
          idle.published(snapshot.value, change, now);
        }
        return sent.ok;
      },
      onError: (error) => log.debug({ err: error }, 'usage publish failed; retrying at the next tick'),
    });
    this.host.onChange(() => this.#statusChanged());

    const lease = await this.#acquireLease(nc, identity, log);
    if (!lease.ok) return lease;
    this.#lease = lease.value;

    // The contract's start: a manager already stopped (a stop that raced this start) refuses, and nothing is served.
    const started = await this.host.start();
    if (!started.ok) return started;
    const service = await serveService(nc, {
      name: AGENT_SERVICE_NAME,
      queue: AGENT_QUEUE,
      version: AGENT_VERSION,
      description: `allot agent of node ${this.config.nodeId}`,
      metadata: { nodeId: this.config.nodeId, bootId: this.bootId },
      endpoints: agentEndpoints({
        nodeId: this.config.nodeId,
        host: this.host,
        usage: () => this.usageSnapshot(ctx),
        hostHealth: () => this.hostHealth(),
        refused: (request, error) =>
          this.#events.publish(
            refusalEvent(this.config.nodeId, request, error, Date.now()),
            `${this.config.nodeId}-refused-${request.requestId}-${Date.now()}`,
          ),
        cordonChanged: (cordoned, reason) =>
          this.log.warn({ reason }, cordoned ? 'cordoned: this host takes no new allocation' : 'uncordoned'),
      }),
      logger: log.child({ component: 'service' }),
    });
    if (!service.ok) return service;
    this.#service = service.value;
    this.#statusChanged();
    this.#events.publish(
      { kind: 'agent_started', nodeId: this.config.nodeId, at: Date.now(), reason: `boot ${this.bootId}, recovery ${this.#recoveryMs} ms` },
      `${this.config.nodeId}-boot-${this.bootId}`,
    );
    this.log.info({ subjectPrefix: `allot.agent.${this.config.nodeId}`, recoveryMs: this.#recoveryMs }, 'agent ready');
    return ok(undefined);
  }

  /**
   * Takes the node's lease, waiting while JetStream does not answer (nothing is served without it: a second agent of
   * this node id would commit against the same host). Another holder refuses the start (conflict, node_lease_held).
   */
  async #acquireLease(nc: NatsConnection, identity: string, log: Logger): Promise<Result<NodeLease>> {
    const holder = { identity, bootId: this.bootId, host: hostname(), pid: process.pid, since: Date.now() };
    const lease = await retryWithBackoff(
      async (): Promise<Result<NodeLease>> => {
        if (this.#stopping) return err('unavailable', 'stopped before the node lease was taken');
        const kv = await ensureKv(jetstream(nc), KV_NODES, {
          history: 1,
          replicas: this.config.jetstreamReplicas,
          ttlMs: NODE_LEASE_TTL_MS,
        });
        return kv.ok
          ? NodeLease.acquire(kv.value as unknown as LeaseKv, this.config.nodeId, holder, {
              log: log.child({ component: 'lease' }),
              onLost: (error) => this.#leaseLost(error),
            })
          : kv;
      },
      {
        retryable: (r) => !r.ok && r.error.code === 'unavailable',
        stopped: () => this.#stopping,
        holdsProcess: false,
        onWait: (r, waitMs) =>
          log.warn(
            { err: r.ok ? undefined : r.error, retryInMs: waitMs },
            'cannot take the node lease yet (JetStream not answering); nothing is served until then',
          ),
      },
    );
    return lease.ok || !this.#stopping ? lease : err('unavailable', 'stopped before the node lease was taken');
  }

  /** Another agent holds this node now: stop answering at once, then exit non-zero (the supervisor decides what next). */
  #leaseLost(error: AllotError): void {
    this.fatal = error;
    this.log.fatal({ err: error, holder: error.details?.['holder'] }, 'node lease lost');
    void this.#stopService();
    this.#onFatal(error);
  }

  /**
   * NATS closed the connection for good (its user was revoked, or nats.js gave up): nothing can reach this agent any
   * more, so it exits non-zero for the supervisor to show, as a start-up with the same credentials would. Not when
   * the agent itself is stopping (drain closes the connection too, without an error).
   */
  #connectionLost(error: AllotError): void {
    if (this.#stopping) return;
    this.fatal = error;
    this.log.fatal({ err: error }, `NATS connection lost for good: ${error.message}`);
    void this.#stopService();
    this.#onFatal(error);
  }

  /** Stops taking requests and waits for those in flight; once, whoever asks first. */
  #stopService(): Promise<void> {
    this.#serviceStopped ??= this.#service?.stop() ?? Promise.resolve();
    return this.#serviceStopped;
  }

  /** Creates the usage and events streams when missing, retrying with backoff until JetStream answers or the agent stops. */
  async #ensureStreamsUntilDone(nc: NatsConnection, log: Logger): Promise<void> {
    await retryWithBackoff(
      async () => {
        try {
          const streams = await ensureStreams(await jetstreamManager(nc), { replicas: this.config.jetstreamReplicas });
          return streams.ok ? undefined : streams.error;
        } catch (error) {
          return error;
        }
      },
      {
        retryable: (failure) => failure !== undefined,
        stopped: () => this.#stopping,
        holdsProcess: false,
        onWait: (failure, waitMs) =>
          log.warn(
            { err: failure, retryInMs: waitMs },
            'could not create the usage and events streams yet (JetStream not ready); retrying',
          ),
      },
    );
  }

  /** After a NATS outage: publish the current state again and send the events that waited. */
  #republish(): void {
    this.log.info('reconnected to NATS; republishing state');
    this.#statusChanged();
    void this.#events.drain();
  }

  /**
   * A configuration reload (SIGHUP, see config/reload.ts): new labels and health thresholds for memory and CPU, in
   * place. A usage snapshot follows at once so that placement sees the labels without waiting for the heartbeat.
   */
  applyReload(change: Pick<AgentConfig, 'labels' | 'health'>): void {
    this.#labels = change.labels;
    this.#health = change.health;
    this.#host?.setHealthThresholds('memory', change.health);
    this.#host?.setHealthThresholds('cpu', change.health);
    this.#statusChanged();
  }

  /** Something a coordinator reads changed (or must be sent again): the status goes out now, not at the idle period. */
  #statusChanged(): void {
    this.#usage?.update(++this.#changes);
  }

  async usageSnapshot(ctx: SnapshotContext): Promise<Result<UsageSnapshot>> {
    const view = await this.host.getHostView();
    if (!view.ok) return view;
    const health = await this.host.healthCheck();
    const value: Health = health.ok ? health.value : { status: 'unhealthy', reasons: [health.error.message] };
    try {
      return ok(buildUsageSnapshot(view.value, value, ctx, Date.now()));
    } catch (error) {
      return err('internal', (error as Error).message);
    }
  }

  async hostHealth(): Promise<Result<HostHealth>> {
    const health = await this.host.healthCheck();
    if (!health.ok) return health;
    const view = await this.host.getHostView();
    if (!view.ok) return view;
    return ok({
      nodeId: this.config.nodeId,
      health: health.value,
      cordoned: view.value.cordoned,
      recoveryMs: this.#recoveryMs,
      startedAt: this.startedAt,
    });
  }

  /** Graceful stop: no new requests, finish those in flight, publish the last state, flush the ledger, drain NATS. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    await this.#stopService();
    await this.#usage?.flush().catch(() => undefined);
    this.#usage?.stop();
    // Give the events that wait a moment to reach the stream; the ledger keeps the truth either way.
    const deadline = performance.now() + Math.min(2_000, this.config.shutdownGraceMs);
    while (this.#events.pending > 0 && performance.now() < deadline && this.#nc !== undefined)
      await new Promise((resolve) => setTimeout(resolve, 50));
    this.#events.stop();
    await this.#host?.stop();
    await this.#journal?.close().catch((error: unknown) => this.log.error({ err: error }, 'ledger close failed'));
    // Only now that nothing more is committed: a successor need not wait for the lease to expire.
    await this.#lease?.release();
    await this.#nc?.drain().catch(() => undefined);
    this.log.info('agent stopped');
  }
}
