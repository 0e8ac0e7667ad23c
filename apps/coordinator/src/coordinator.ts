import { ALLOT_VERSION, err, ok, type Result } from '@allot/core';
import { CLUSTER_EVENT_NODE, eventSubject, KV_PLACEMENTS, type AllotEvent } from '@allot/protocol';
import { ensureKv, ensureStreams, publishDurable, retryWithBackoff, versionAtLeast, type ServedService } from '@allot/nats';
import type { Logger } from 'pino';
import { AgentClient } from './agents.ts';
import { ClusterManager } from './cluster-manager.ts';
import { decommissionCordonReason } from './decommission.ts';
import type { CoordinatorConfig } from './config.ts';
import { DroppedInput } from './dropped-input.ts';
import { serveScheduler } from './endpoints.ts';
import { IntentStore } from './intents/intent-store.ts';
import { migrateLegacyLayout } from './intents/legacy-migration.ts';
import { openLegacyQuotasBucket } from './intents/legacy-quotas-bucket.ts';
import { startHttpServer, type DashboardServer } from './http/server.ts';
import { movesRoute } from './moves/moves-route.ts';
import { NodeLeaseTable, publishTransition, startLivenessSweep, startNodeLeaseFeed } from './liveness.ts';
import { jetstream, jetstreamManager, type NatsConnection } from './nats-deps.ts';
import { NodeStates } from './node-states.ts';
import { NodeTaints } from './node-taints.ts';
import { PlaceFlow } from './place-flow.ts';
import { followQuotaEvents } from './quota-events.ts';
import { QuotaService } from './quotas.ts';
import { Reconciler } from './reconciler.ts';
import { systemCoordinatorClock, type CoordinatorClock } from './store/clock.ts';
import { NatsBucket } from './store/nats-bucket.ts';
import { Sweep } from './sweep.ts';
import { knownUnheard } from './unheard-node.ts';
import { followUsage, type UsageFeed } from './usage-feed.ts';
import { ClusterView, type LivenessTransition } from './view.ts';

export const COORDINATOR_VERSION = ALLOT_VERSION;

/** The oldest nats-server the coordinator runs on: atomic batch publish (2.12) and per-message TTLs (2.11). */
export const MIN_NATS_SERVER = '2.12.0';

/**
 * Longest a stop waits, all steps together, on what needs NATS (the requests in flight, the deferred placed writes, a
 * consumer's stop): the stop and the connection's drain stay inside main.ts's 8 s deadline even when NATS is gone.
 */
export const STOP_BUDGET_MS = 5_000;

/** `done`'s outcome, or 'timeout' after ms (the timer never holds the process). */
async function withinMs(done: Promise<unknown>, ms: number): Promise<'done' | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  try {
    return await Promise.race([done.then(() => 'done' as const), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A running coordinator. */
export interface Coordinator {
  readonly manager: ClusterManager;
  readonly view: ClusterView;
  readonly flow: PlaceFlow;
  readonly quotas: QuotaService;
  /** Placement intents and tenant usage records: the place protocol's state. */
  readonly store: IntentStore;
  /** Settles placement intents left pending (runs every config.reconcile.everyMs; reconcileOnce for one round now). */
  readonly reconciler: Reconciler;
  /** The anti-entropy sweep (every config.sweep.everyMs; sweepOnce and audit on demand). */
  readonly sweep: Sweep;
  /** The operators' decommission records, followed from KV. */
  readonly nodeStates: NodeStates;
  /** The dashboard's HTTP server, when config.http is set: its url, and extraRoutes to mount /metrics on. */
  readonly http: DashboardServer | undefined;
  /** Stops taking requests, answers those in flight, stops following the streams. Leaves the connection open. */
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  readonly now?: () => number;
  /** Wall time for instants, monotonic time for every duration (default: the system's). */
  readonly clock?: CoordinatorClock;
  readonly random?: () => number;
  /** Wait at most this long for the view to be rebuilt before serving (default 10 s); it keeps filling afterwards. */
  readonly rebuildTimeoutMs?: number;
}

/**
 * nats.js builds an Error (a stack capture) per request and per timer "to help identify what timed out"; with three to
 * four requests per place that was a fifth of the coordinator's CPU in the profile. Our failures are typed values that
 * name the subject, so the stacks are not needed. The option is read per request, so setting it on an open connection
 * takes effect at once; a client version without it is left alone.
 */
export function withoutAsyncTraces(nc: NatsConnection): void {
  const options = (nc as unknown as { protocol?: { options?: { noAsyncTraces?: boolean } } }).protocol?.options;
  if (options !== undefined) options.noAsyncTraces = true;
}

/** Retries a JetStream step while it answers unavailable or timeout, with a capped backoff, logging each wait. */
function untilJetStreamAnswers<T>(logger: Logger, step: () => Promise<Result<T>>, maxWaitMs = 5 * 60_000): Promise<Result<T>> {
  return retryWithBackoff(step, {
    initialMs: 250,
    maxMs: 5_000,
    deadlineMs: maxWaitMs,
    retryable: (r) => !r.ok && (r.error.code === 'unavailable' || r.error.code === 'timeout'),
    onWait: (r, waitMs) => logger.warn({ err: r.ok ? undefined : r.error, retryInMs: waitMs }, 'JetStream not ready yet; retrying'),
  });
}

/**
 * Starts a coordinator on an open NATS connection: streams and buckets ensured, quota records watched, the usage
 * stream followed until the view is rebuilt, liveness swept, then the scheduler endpoints served.
 */
export async function startCoordinator(nc: NatsConnection, config: CoordinatorConfig, opts: StartOptions): Promise<Result<Coordinator>> {
  const { logger } = opts;
  const now = opts.now ?? Date.now;
  withoutAsyncTraces(nc);
  const js = jetstream(nc);
  // Intent and usage record change in one atomic batch: a server without atomic batches would fail every place.
  const serverVersion = nc.info?.version ?? 'unknown';
  if (!versionAtLeast(serverVersion, MIN_NATS_SERVER)) {
    return err(
      'internal',
      `nats-server ${serverVersion} is too old: the coordinator needs ${MIN_NATS_SERVER} or later (atomic batch publish, per-message TTL)`,
      { serverVersion, minimum: MIN_NATS_SERVER },
    );
  }
  // While a NATS cluster re-forms (everything restarted at once), JetStream has no leader for a while: wait for it
  // instead of exiting, as the agents do. Only unavailable/timeout are retried; a bad configuration fails at once.
  const storage = await untilJetStreamAnswers(logger, async () => {
    let jsm;
    try {
      jsm = await jetstreamManager(nc);
    } catch (e) {
      return err('unavailable', `JetStream is not available: ${(e as Error).message}`);
    }
    const streams = await ensureStreams(jsm, { replicas: config.replicas });
    if (!streams.ok) return streams;
    // One bucket for intents and usage records: an atomic batch spans one stream, and each transition that changes
    // whether an intent counts writes both. No max_age: pending and placed intents never expire; failed and released
    // ones carry their own TTL (intentTtlMs), and expiry leaves a marker so watchers see the key go.
    const kv = await ensureKv(js, KV_PLACEMENTS, {
      history: 1,
      replicas: config.replicas,
      allowAtomic: true,
      allowMsgTtl: true,
      expiryMarkerTtlMs: 60 * 60_000,
    });
    if (!kv.ok) return kv;
    return ok(kv.value);
  });
  if (!storage.ok) return storage;
  const clock = opts.clock ?? systemCoordinatorClock;
  const store = new IntentStore(new NatsBucket(nc, storage.value, KV_PLACEMENTS), {
    coordinatorId: config.coordinatorId,
    clock,
    finishedTtlMs: config.intentTtlMs,
  });
  // Upgrading from the layout before usage records lived here (allot_quotas): limits and intents carried over, once.
  const migrated = await untilJetStreamAnswers(logger, async () => {
    const legacy = await openLegacyQuotasBucket(nc);
    return legacy.ok ? migrateLegacyLayout(store, legacy.value, logger) : legacy;
  });
  if (!migrated.ok) return err(migrated.error.code, `legacy quota migration: ${migrated.error.message}`, migrated.error.details);

  const agents = new AgentClient(nc, config.place.agentTimeoutMs);
  // Counting intents naming a node, from the tenants' usage records (exact by construction: usage = counting intents).
  const countingOn = (nodeId: string) => {
    let n = 0;
    for (const { value } of store.cachedTenants()) n += value.usage.vmsPerNode[nodeId] ?? 0;
    return n;
  };
  const publishEvent = (event: AllotEvent, msgId: string) => {
    void publishDurable(js, eventSubject(CLUSTER_EVENT_NODE, event.kind), event, { msgId, timeoutMs: 5_000 }).then((sent) => {
      if (!sent.ok) logger.debug({ err: sent.error }, 'cluster event not published');
    });
  };
  // A decommissioned node that reports again is refused: its agent is cordoned with the reason (it logs and journals
  // it, and refuses allocates), once per boot of that agent on each coordinator; its snapshots are dropped.
  const onRefused = (nodeId: string, bootId: string) => {
    const record = nodeStates.decommissioned(nodeId);
    const reason = decommissionCordonReason(nodeId, record?.reason);
    logger.warn(
      { node: nodeId, bootId },
      'decommissioned node reported again: refused (its snapshots are dropped; the sweep releases its placements)',
    );
    publishEvent({ kind: 'node_refused', nodeId, at: clock.wall(), reason }, `node_refused:${nodeId}:${bootId}`);
    void agents.call(nodeId, 'cordon', { requestId: `decommissioned:${nodeId}:${bootId}`.slice(0, 128), reason }).then((r) => {
      if (!r.ok) logger.info({ node: nodeId, err: r.error }, 'refused node not cordoned; told again at its next boot');
    });
  };
  // Bad data reaching a callback (stream consumers, timers, the SSE broadcast) is counted here, never thrown.
  const dropped = new DroppedInput(logger);
  // The node leases count as liveness (a renewal every 5 s), so agents may send their status seldom when idle.
  const leases = config.liveness.leaseExpiry ? new NodeLeaseTable(clock, { dropped }) : undefined;
  const view = new ClusterView({
    lostAfterMs: config.liveness.lostAfterMs,
    clock,
    countingOn,
    onRefused,
    ...(leases === undefined ? {} : { leases }),
    ...(config.liveness.suspectAfterMs === undefined ? {} : { suspectAfterMs: config.liveness.suspectAfterMs }),
  });
  const nodeStates = new NodeStates({
    bucket: store.bucket,
    clock,
    coordinatorId: config.coordinatorId,
    logger,
    onChange: (nodeId, record) => view.setDecommissioned(nodeId, record),
  });
  // Before the view is rebuilt: a replayed snapshot of a removed node must already be refused.
  await nodeStates.start();
  const nodeTaints = new NodeTaints({
    bucket: store.bucket,
    clock,
    coordinatorId: config.coordinatorId,
    logger,
    onChange: (nodeId, taints) => view.setTaints(nodeId, taints),
  });
  await nodeTaints.start();
  const quotas = new QuotaService(store, logger);
  await quotas.start();
  const flow = new PlaceFlow({
    coordinatorId: config.coordinatorId,
    view,
    store,
    quotas,
    agents,
    config: config.place,
    logger,
    clock,
    random: opts.random ?? Math.random,
  });
  const manager = new ClusterManager({ view, flow, agents, now });
  const nodeGone = (nodeId: string) => nodeStates.decommissioned(nodeId) !== undefined && (view.get(nodeId)?.liveness ?? 'lost') === 'lost';
  const reconciler = new Reconciler({ store, agents, config: config.reconcile, logger, clock, nodeGone });

  // Ready nodes, and removed decommissioned ones whose agents still report: what they hold is released as strays.
  const sweepNodes = () => [
    ...view.nodes({ liveness: 'ready' }).map((n) => n.nodeId),
    ...view.refusedNodesHeard(config.liveness.lostAfterMs),
  ];
  const sweep = new Sweep({
    store,
    agents,
    nodes: sweepNodes,
    clock,
    config: config.sweep,
    logger,
    publishEvent,
    ...(opts.random === undefined ? {} : { random: opts.random }),
  });

  const onTransition = (t: LivenessTransition) => {
    logger.info({ node: t.nodeId, from: t.from, to: t.to }, t.kind);
    void publishTransition(js, t, logger);
  };
  // Before the usage replay, so a replayed snapshot is judged with its node's lease (a node whose status is old but
  // whose agent renews is not lost); a bucket not there yet (no agent so far) is followed once it is.
  const leaseFeed = leases === undefined ? undefined : startNodeLeaseFeed(js, leases, { logger, dropped });
  if (leaseFeed !== undefined && leases !== undefined) {
    await Promise.race([leaseFeed.started, new Promise<void>((r) => setTimeout(r, opts.rebuildTimeoutMs ?? 10_000).unref())]);
    logger.info({ leases: leases.size, current: leases.current() }, 'node leases read');
  }
  const followed = await untilJetStreamAnswers(logger, () =>
    followUsage(js, view, { logger, onTransition, dropped }).then(
      (f) => ok(f),
      (e: unknown) => err<UsageFeed>('unavailable', `cannot follow ALLOT_USAGE: ${(e as Error).message}`),
    ),
  );
  if (!followed.ok) {
    await leaseFeed?.stop();
    quotas.stop();
    return followed;
  }
  const feed = followed.value;
  const quotaEvents = await untilJetStreamAnswers(logger, () =>
    followQuotaEvents(js, store, { logger, dropped, refusedNode: (nodeId) => nodeStates.decommissioned(nodeId)?.removedAt !== undefined }),
  );
  if (!quotaEvents.ok) {
    await feed.stop();
    await leaseFeed?.stop();
    quotas.stop();
    return quotaEvents;
  }
  const rebuildTimeoutMs = opts.rebuildTimeoutMs ?? 10_000;
  const rebuilt = await Promise.race([
    feed.caughtUp.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), rebuildTimeoutMs).unref()),
  ]);
  await quotas.ready;
  logger.info({ nodes: view.size, rebuilt }, 'cluster view built');
  const removing = new Set<string>();
  const onRemovable = (nodeIds: string[]) => {
    for (const nodeId of nodeIds) {
      if (removing.has(nodeId)) continue;
      removing.add(nodeId);
      void nodeStates
        .markRemoved(nodeId)
        .then((marked) => {
          if (!marked.ok) logger.warn({ node: nodeId, err: marked.error }, 'decommissioned node not marked removed; next sweep');
          else if (marked.value !== undefined) {
            view.setDecommissioned(nodeId, marked.value);
            logger.info({ node: nodeId }, 'decommissioned node removed: nothing of it remains');
          }
        })
        .finally(() => removing.delete(nodeId));
    }
  };
  const stopSweep = startLivenessSweep(view, { everyMs: config.liveness.checkEveryMs, onTransition, onRemovable, dropped });

  await manager.start();
  // A node missing from the view that holds a lease or placements has not reported yet: retry, not not_found.
  const knowsNode = (nodeId: string) => view.get(nodeId) !== undefined;
  const unheard = (nodeId: string) => knownUnheard({ ...(leases === undefined ? {} : { leases }), countingOn, clock }, nodeId);
  const served: Result<ServedService> = await serveScheduler(
    nc,
    {
      manager,
      view,
      quotas,
      agents,
      sweep,
      publishEvent,
      tenantDefaults: config.tenantDefaults,
      taints: nodeTaints,
      decommission: { nodeStates, view, store, agents, reconciler, logger, agentTimeoutMs: config.place.agentTimeoutMs, publishEvent },
      resize: { store, agents, knowsNode, knownUnheard: unheard, agentTimeoutMs: config.place.agentTimeoutMs, logger },
      batch: { view, store, agents, flow, logger, agentTimeoutMs: config.place.agentTimeoutMs, maxAttempts: config.place.maxAttempts },
      moves: {
        store,
        flow,
        agents,
        knowsNode,
        knownUnheard: unheard,
        holdMs: config.place.moveHoldMs,
        agentTimeoutMs: config.place.agentTimeoutMs,
        logger,
        publishEvent,
      },
    },
    { coordinatorId: config.coordinatorId, version: COORDINATOR_VERSION, logger, readOnly: config.readOnly },
  );
  if (!served.ok) {
    stopSweep();
    await quotaEvents.value.stop();
    await feed.stop();
    await leaseFeed?.stop();
    quotas.stop();
    return served;
  }
  // The endpoints' subscriptions reach the server with the next flush: after it, "ready" means requests find us.
  await nc.flush();

  let http: DashboardServer | undefined;
  if (config.http !== undefined) {
    const started = await startHttpServer(
      { view, quotas, agents, manager, js, dropped },
      {
        host: config.http.host,
        port: config.http.port,
        seriesEveryMs: config.http.seriesEveryMs,
        seriesPoints: config.http.seriesPoints,
        maxConnections: config.http.maxConnections,
        maxSseClients: config.http.maxSseClients,
        ...(config.http.token === undefined ? {} : { token: config.http.token }),
        ...(config.http.allowedHosts === undefined ? {} : { allowedHosts: config.http.allowedHosts }),
        logger,
        now,
        ...(config.dashboardDir === undefined ? {} : { dashboardDir: config.dashboardDir }),
      },
    );
    if (!started.ok) {
      await served.value.stop();
      await manager.stop();
      stopSweep();
      await quotaEvents.value.stop();
      await feed.stop();
      await leaseFeed?.stop();
      quotas.stop();
      return started;
    }
    http = started.value;
    http.extraRoutes.set('/api/moves', movesRoute(store, now));
  }
  reconciler.start();
  // A read-only view of several sites reaches no agent: a sweep would only fail against each node.
  if (!config.readOnly) sweep.start();
  return ok({
    manager,
    view,
    flow,
    quotas,
    store,
    reconciler,
    sweep,
    nodeStates,
    http,
    stop: async () => {
      // Every step runs, whatever an earlier one met: with NATS unreachable a step may throw (a request rejected as the
      // connection dropped) or wait for a server that is not coming back, and a skipped step left the liveness sweep's
      // interval and the streams' consumers holding the process after the stop (coordinator-stop.test.ts).
      // Waits that need NATS are bounded: what they give up on is soft state (an in-flight request unanswered is
      // retried by its client; a deferred placed write that cannot land leaves a pending intent the reconciler settles).
      const budgetEnds = performance.now() + STOP_BUDGET_MS;
      const step = async (name: string, run: () => unknown, bounded = true): Promise<void> => {
        try {
          const done = Promise.resolve(run());
          if (!bounded) await done;
          else if ((await withinMs(done, Math.max(0, budgetEnds - performance.now()))) === 'timeout')
            logger.warn({ step: name }, 'stop gave up waiting for this step: its stop budget is spent (NATS unreachable?)');
        } catch (e) {
          logger.warn({ step: name, err: (e as Error).message }, 'stop step failed; stopping the rest');
        }
      };
      await step('sweep', () => sweep.stop());
      await step('reconciler', () => reconciler.stop());
      await step('http', () => http?.stop());
      await step('endpoints', () => served.value.stop());
      await step('manager', () => manager.stop());
      await step('deferred placed writes', () => flow.settled());
      await step('liveness sweep', () => stopSweep(), false);
      await step('quota events', () => quotaEvents.value.stop());
      await step('usage feed', () => feed.stop());
      if (leaseFeed !== undefined) await step('node lease feed', () => leaseFeed.stop());
      await step('quotas', () => quotas.stop(), false);
      await step('node states', () => nodeStates.stop(), false);
      await step('node taints', () => nodeTaints.stop(), false);
    },
  });
}
