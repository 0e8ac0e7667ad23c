import { ALLOT_VERSION, type AllotError } from '@allot/core';
import { applyReloadLogLevel, connectionCounters, connectNats, NATS_AUTH_FAILED, retryWithBackoff } from '@allot/nats';
import {
  observeNatsConnection,
  readBearerTokenFile,
  sendJson,
  serveHttp,
  startMetrics,
  startTracing,
  type HttpServer,
} from '@allot/telemetry';
import { COORDINATOR_DEFAULT_CONFIG, loadCoordinatorConfig } from './config.ts';
import { planCoordinatorReload } from './config-reload.ts';
import { startCoordinator } from './coordinator.ts';
import type { NatsConnection } from './nats-deps.ts';
import { observeCluster } from './exported-metrics.ts';
import { createLogger } from './logger.ts';

/*
 * allot coordinator process: `node apps/coordinator/src/main.ts --config <file>` (+ ALLOT_* variables).
 * Logs `coordinator ready` when serving. SIGTERM/SIGINT: stop taking requests, answer those in flight, drain NATS, exit 0
 * (bounded when NATS is unreachable: README.md).
 */
/** Longest a SIGTERM stop may take; container engines SIGKILL after 10-15 s. */
const STOP_DEADLINE_MS = 8_000;
/** Longest the connection's drain may take after the coordinator's own (bounded) stop; then it is closed. */
const DRAIN_WAIT_MS = 1_000;

/** Drains the connection (replies flushed), or closes it when the drain does not finish in ms (no server reachable). */
async function drainOrClose(nc: NatsConnection, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const drained = nc.drain().then(
    () => 'drained' as const,
    () => 'failed' as const,
  );
  const outcome = await Promise.race([drained, expired]);
  clearTimeout(timer);
  if (outcome !== 'drained' && !nc.isClosed()) await nc.close().catch(() => undefined);
}

async function main(): Promise<number> {
  // First thing: with ALLOT_TRACE_FILE set, spans are written there; unset, nothing is registered.
  const tracing = await startTracing({ service: 'allot-coordinator' });
  const config = loadCoordinatorConfig(process.argv.slice(2), process.env, undefined, COORDINATOR_DEFAULT_CONFIG);
  if (!config.ok) {
    process.stderr.write(`${config.error.message}\n`);
    return 2;
  }
  const c = config.value;
  const logger = createLogger(c.logLevel, c.coordinatorId);
  // SIGHUP: re-read the configuration from the same source; the log level changes in place, the rest is named as ignored.
  let running = c;
  process.on('SIGHUP', () => {
    const reloaded = loadCoordinatorConfig(process.argv.slice(2), process.env, undefined, COORDINATOR_DEFAULT_CONFIG);
    if (!reloaded.ok) {
      logger.error(
        { problems: reloaded.error.details?.['problems'] },
        `configuration reload refused, nothing changed: ${reloaded.error.message}`,
      );
      return;
    }
    const plan = planCoordinatorReload(running, reloaded.value);
    running = plan.config;
    applyReloadLogLevel(logger, running.logLevel, plan);
  });
  if (c.nats.insecure === true && (c.production === true || process.env.NODE_ENV === 'production')) {
    logger.warn('production with nats.insecure: true: NATS credentials or TLS are missing');
  }
  // Until the coordinator serves, a signal has nothing to finish (no request taken, no state of its own): exit at once.
  // In a container the coordinator is PID 1, where a signal without a handler is ignored, so a start-up still waiting
  // for NATS or JetStream would otherwise sit out the engine's grace period and be SIGKILLed.
  const duringStartup = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'coordinator stopping during start-up; nothing was served yet');
    process.exit(0);
  };
  process.on('SIGTERM', duringStartup);
  process.on('SIGINT', duringStartup);
  // GET /metrics and /healthz on their own listener (config.metrics), apart from the dashboard and its token: a
  // scraper needs no dashboard access, and a dashboard user no metrics port. Its own token, from metrics.tokenFile,
  // guards /metrics (read now: a bad file is a configuration error, like a bad key). The SDK is registered before the
  // coordinator starts: instruments made earlier would stay no-ops.
  let metricsToken: string | undefined;
  if (c.metrics?.tokenFile !== undefined) {
    const token = await readBearerTokenFile(c.metrics.tokenFile);
    if (token instanceof Error) {
      process.stderr.write(`config error: metrics.tokenFile: ${token.message}\n`);
      return 2;
    }
    metricsToken = token;
  }
  const telemetry =
    c.metrics === undefined
      ? undefined
      : await startMetrics({ service: 'allot-coordinator', nodeId: c.coordinatorId, version: ALLOT_VERSION });
  if (telemetry !== undefined) observeNatsConnection(connectionCounters);
  let state: 'starting' | 'ready' | 'stopping' = 'starting';
  let metricsServer: HttpServer | undefined;
  if (c.metrics !== undefined && telemetry !== undefined) {
    try {
      metricsServer = await serveHttp({
        host: c.metrics.host,
        port: c.metrics.port,
        // Ready when serving: 503 while waiting for NATS or rebuilding the view, and again while stopping.
        routes: {
          '/metrics': telemetry.handler,
          '/healthz': (_req, res) => sendJson(res, state === 'ready' ? 200 : 503, { status: state, coordinatorId: c.coordinatorId }),
        },
        ...(metricsToken === undefined ? {} : { bearerToken: metricsToken, openPaths: ['/healthz'] }),
        onError: (error, path) => logger.error({ err: error, path }, 'metrics handler failed'),
      });
      logger.info({ url: metricsServer.url, token: metricsToken !== undefined }, 'metrics and health listening');
    } catch (error) {
      logger.fatal({ err: error }, `cannot listen on ${c.metrics.host}:${c.metrics.port}: ${(error as Error).message}`);
      return 1;
    }
  }
  // A connection NATS ends for good (above all a user revoked by a config reload) stops the coordinator as a refused
  // start-up would: exit 2 with the identity named, rather than sitting on a closed connection.
  let stopFor: ((reason: string, code: number) => void) | undefined;
  const connectionLost = (error: AllotError) => {
    const code = error.details?.['reason'] === NATS_AUTH_FAILED ? 2 : 1;
    logger.fatal({ error }, `NATS connection lost for good: ${error.message}`);
    if (code === 2) process.stderr.write(`${error.message}\n`);
    if (stopFor === undefined) process.exit(code);
    else stopFor('nats connection lost', code);
  };
  const natsOptions = { name: `allot-coordinator-${c.coordinatorId}`, logger, onClosed: connectionLost };
  // NATS may come up after us (a whole cluster restarting): keep trying, as the agents do; a bad credential or
  // config (invalid_request) stops at once.
  const nc = await retryWithBackoff(() => connectNats(c.nats, natsOptions), {
    retryable: (r) => !r.ok && r.error.code !== 'invalid_request',
    onWait: (r, waitMs) => logger.warn({ err: r.ok ? undefined : r.error, retryInMs: waitMs }, 'NATS not reachable yet; retrying'),
  });
  if (!nc.ok) {
    // Refused credentials, a certificate that does not verify, an unreadable key file: restarting cannot help, so the
    // exit code is a configuration error's (2) and the message names the server's answer and the file.
    logger.fatal({ error: nc.error }, `cannot connect to NATS: ${nc.error.message}`);
    process.stderr.write(`${nc.error.message}\n`);
    await metricsServer?.close();
    return 2;
  }
  const started = await startCoordinator(nc.value, c, { logger });
  if (!started.ok) {
    logger.fatal({ error: started.error }, 'coordinator did not start');
    await nc.value.close();
    await metricsServer?.close();
    return 1;
  }
  const coordinator = started.value;
  if (telemetry !== undefined) observeCluster(coordinator.view);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string, code = 0) => {
      if (stopping) return;
      stopping = true;
      state = 'stopping';
      logger.info({ signal }, 'coordinator stopping');
      // Bounded: with every NATS server gone, draining waits for a reconnect that may never come. The coordinator's
      // state is soft (the agents and the KV buckets hold the truth), so giving up on the drain loses nothing.
      setTimeout(() => {
        // `holding`: what keeps the process alive; once "coordinator stopped" was logged, that names a leaked handle
        // (chaos scenario 4 saw one after a NATS server's restart, docs/chaos.md).
        const holding = process.getActiveResourcesInfo();
        logger.error({ afterMs: STOP_DEADLINE_MS, holding }, 'stop did not finish in time (NATS unreachable?); exiting');
        process.exit(1);
      }, STOP_DEADLINE_MS).unref();
      void (async () => {
        try {
          await coordinator.stop(); // bounded (STOP_BUDGET_MS), whatever NATS does
          // A drain needs a server to flush to: with none reachable it would wait for a reconnect that may never come.
          if (!nc.value.isClosed()) await drainOrClose(nc.value, DRAIN_WAIT_MS);
          await metricsServer?.close();
          await telemetry?.shutdown().catch(() => undefined);
          await tracing.shutdown().catch(() => undefined);
          // Nothing of ours runs any more: exit rather than wait for the event loop to empty. A handle left behind (a
          // library's timer; chaos scenario 4 once saw a stopped coordinator held until its deadline) is named here.
          // Asked a moment later: a socket just destroyed still shows until its handle is closed on the next turn.
          await new Promise((resolve) => setTimeout(resolve, 100));
          const holding = process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
          logger.info(holding.length === 0 ? {} : { holding }, 'coordinator stopped');
          resolve(code);
        } catch (e) {
          logger.error({ err: e }, 'unclean stop');
          resolve(1);
        }
      })();
    };
    // The serving handlers go on before the start-up ones come off, and "ready" is said only then: removing the last
    // listener of a signal stops Node's watcher for it, and a SIGTERM arriving in that gap (a supervisor that stops us
    // as soon as it reads "ready") was swallowed, leaving a coordinator that ignored it until SIGKILL.
    stopFor = shutdown;
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.off('SIGTERM', duringStartup);
    process.off('SIGINT', duringStartup);
    state = 'ready';
    logger.info({ servers: c.nats.servers, nodes: coordinator.view.size }, 'coordinator ready');
  });
}

// Explicitly: after a stop nothing of ours runs, and a handle a library left must not keep the process past it.
process.exit(await main());
