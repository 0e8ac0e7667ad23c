#!/usr/bin/env node
// allot-agent: the authority over one hypervisor host. `node apps/agent/src/main.ts --config agent.json`
import { readFileSync, writeSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { AGENT_SERVICE_NAME } from '@allot/protocol';
import { ALLOT_VERSION } from '@allot/core';
import { applyReloadLogLevel, connectionCounters, NATS_AUTH_FAILED, NATS_CONFIG_UNREADABLE, NATS_TLS_FAILED } from '@allot/nats';
import {
  observeNatsConnection,
  readBearerTokenFile,
  sendJson,
  serveHttp,
  startMetrics,
  startTracing,
  type HttpServer,
} from '@allot/telemetry';
import { Agent } from './agent.ts';
import { LEASE_HELD } from './node-lease.ts';
import { AGENT_DEFAULT_CONFIG, loadAgentConfig, planAgentReload } from './config/index.ts';
import { createLogger } from './logger.ts';

// `allot-agent ledger ...`: the offline ledger tool (ledger-tool.ts) instead of the agent; nothing below runs.
if (process.argv[2] === 'ledger') {
  const { runLedgerTool } = await import('./ledger-tool.ts');
  const { default: pino } = await import('pino');
  const result = await runLedgerTool({
    argv: process.argv.slice(3),
    env: process.env,
    log: pino({ level: 'warn' }, pino.destination(2)),
    defaultConfigFile: AGENT_DEFAULT_CONFIG,
    stdout: (text) => writeSync(1, text),
  });
  if (result.message !== undefined) writeSync(2, `${result.message}\n`);
  process.exit(result.code);
}

// First thing: with ALLOT_TRACE_FILE set, spans of every request are written there; unset, nothing is registered.
const tracing = await startTracing({ service: AGENT_SERVICE_NAME });

/** The configuration from its one source (--config, ALLOT_AGENT_CONFIG or the default file, plus env): at start and on SIGHUP. */
const loadConfig = () =>
  loadAgentConfig({
    argv: process.argv.slice(2),
    env: process.env,
    readFile: (path) => readFileSync(path, 'utf8'),
    hostname: hostname(),
    defaultConfigFile: AGENT_DEFAULT_CONFIG,
  });
const loaded = loadConfig();
if (!loaded.ok) {
  // A bad value stops the agent with every problem named, never a stack trace.
  process.stderr.write(`${loaded.error.message}\n`);
  process.exit(2);
}
const config = loaded.value;
const log = createLogger({ level: config.logLevel, name: AGENT_SERVICE_NAME, nodeId: config.nodeId });
if (config.nats.insecure === true && (config.production === true || process.env.NODE_ENV === 'production')) {
  log.warn('production with nats.insecure: true: NATS credentials or TLS are missing');
}
// The metrics listener's token (http.tokenFile), read now: a bad file is a configuration error, like a bad key.
let metricsToken: string | undefined;
if (config.http?.tokenFile !== undefined) {
  const token = await readBearerTokenFile(config.http.tokenFile);
  if (token instanceof Error) {
    process.stderr.write(`config error: http.tokenFile: ${token.message}\n`);
    process.exit(2);
  }
  metricsToken = token;
}
/** Start failures that are the configuration's fault: exit 2, the message on stderr too. */
const CONFIGURATION_REASONS = new Set<unknown>([NATS_AUTH_FAILED, NATS_TLS_FAILED, NATS_CONFIG_UNREADABLE]);
// Metrics before the agent: instruments made before the SDK is registered stay no-ops.
const telemetry =
  config.http === undefined
    ? undefined
    : await startMetrics({ service: AGENT_SERVICE_NAME, nodeId: config.nodeId, version: ALLOT_VERSION });
if (telemetry !== undefined) observeNatsConnection(connectionCounters);
const agent = new Agent(config, log);

/** GET /healthz: the host's health as JSON; 200 when healthy or degraded (it still serves), 503 otherwise. */
async function healthz(res: ServerResponse): Promise<void> {
  let health;
  try {
    health = await agent.hostHealth();
  } catch {
    sendJson(res, 503, { nodeId: config.nodeId, status: 'starting' });
    return;
  }
  if (!health.ok) {
    sendJson(res, 503, { nodeId: config.nodeId, status: 'unhealthy', error: health.error });
    return;
  }
  const serving = health.value.health.status === 'healthy' || health.value.health.status === 'degraded';
  sendJson(res, serving ? 200 : 503, health.value);
}

let http: HttpServer | undefined;
if (config.http !== undefined && telemetry !== undefined) {
  try {
    http = await serveHttp({
      host: config.http.host,
      port: config.http.port,
      routes: { '/metrics': telemetry.handler, '/healthz': (_req, res) => healthz(res) },
      // /healthz stays open for probes; /metrics, with a token configured, needs it.
      ...(metricsToken === undefined ? {} : { bearerToken: metricsToken, openPaths: ['/healthz'] }),
      onError: (error, path) => log.error({ err: error, path }, 'http handler failed'),
    });
    log.info({ url: http.url, port: http.port, token: metricsToken !== undefined }, 'metrics and health listening');
  } catch (error) {
    log.fatal(
      { err: error, host: config.http.host, port: config.http.port },
      `cannot listen on ${config.http.host}:${config.http.port}: ${(error as Error).message}`,
    );
    process.exit(1);
  }
}

let exiting = false;
async function shutdown(signal: string, code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  log.info({ signal }, 'stopping');
  const timer = setTimeout(() => {
    log.error({ graceMs: config.shutdownGraceMs }, 'shutdown grace exceeded; exiting');
    process.exit(1);
  }, config.shutdownGraceMs + 2_000);
  timer.unref();
  await agent.stop();
  await http?.close();
  await telemetry?.shutdown().catch(() => undefined);
  await tracing.shutdown().catch(() => undefined);
  process.exit(code);
}

agent.onFatal((error) => {
  // A credential revoked while connected stops the agent like a refused one at start-up: exit 2, the message on stderr.
  const reason = (error as { details?: Record<string, unknown> } | undefined)?.details?.['reason'];
  if (CONFIGURATION_REASONS.has(reason)) {
    process.stderr.write(`${(error as { message: string }).message}\n`);
    void shutdown('fatal', 2);
    return;
  }
  void shutdown('fatal', 1);
});
process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
process.on('SIGINT', () => void shutdown('SIGINT', 0));
// SIGHUP: re-read the configuration; apply what is safe in place (log level, labels, health thresholds), name the rest.
let running = config;
process.on('SIGHUP', () => {
  const reloaded = loadConfig();
  if (!reloaded.ok) {
    log.error(
      { problems: reloaded.error.details?.['problems'] },
      `configuration reload refused, nothing changed: ${reloaded.error.message}`,
    );
    return;
  }
  const plan = planAgentReload(running, reloaded.value);
  running = plan.config;
  agent.applyReload(running);
  applyReloadLogLevel(log, running.logLevel, plan);
});
// A bug must not leave a half-working authority behind: log it and exit non-zero; the ledger keeps what was acknowledged.
process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception');
  void shutdown('uncaughtException', 1);
});
process.on('unhandledRejection', (error) => {
  log.fatal({ err: error }, 'unhandled rejection');
  void shutdown('unhandledRejection', 1);
});

const started = await agent.start();
// A start cut short by a signal (waiting for NATS or the lease) is not a failure: shutdown() exits.
if (!started.ok && !exiting) {
  log.fatal({ err: started.error }, `agent could not start: ${started.error.message}`);
  await agent.stop().catch(() => undefined);
  // 2, like a bad configuration: NATS refused the credentials, its certificate does not verify, a key file cannot be
  // read (restarting cannot help until the files are fixed), or another agent holds this node id (a supervisor's retry
  // succeeds once that lease expires).
  const reason = started.error.details?.['reason'];
  if (CONFIGURATION_REASONS.has(reason)) process.stderr.write(`${started.error.message}\n`);
  process.exit(CONFIGURATION_REASONS.has(reason) || reason === LEASE_HELD ? 2 : 1);
}
