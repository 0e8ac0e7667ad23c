import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { NatsConnectionConfig, NodeView } from '@allot/core';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { renderNodes } from '../render/nodes.ts';
import { openSession, type Session } from '../session.ts';
import { describeExit, startChild, tailOf, type Child, type ChildExit } from './child.ts';
import {
  agentConfig,
  childEnv,
  clusterLayout,
  coordinatorConfig,
  natsServerConfig,
  parseClusterFile,
  type ClusterFile,
  type ClusterLayout,
} from './config.ts';
import { portIsFree } from './ports.ts';
import { ensureDeployment, type Deployment } from '../security/deployment.ts';
import { setupStorage } from '../security/setup.ts';

export interface ClusterOptions {
  readonly port: number;
  /** The coordinator's HTTP port for the dashboard (on 127.0.0.1); undefined: no dashboard. */
  readonly dashboardPort?: number | undefined;
  /** The built dashboard (apps/dashboard/dist) the coordinator serves. */
  readonly dashboardDir?: string;
  /** The cluster directory (absolute): nats store, logs, configs, agents' state. */
  readonly root: string;
  readonly configFile: string;
  readonly readyTimeoutMs: number;
  /** The programs to run: node, the agent and coordinator entry points, nats-server. */
  readonly node: string;
  readonly agentMain: string;
  readonly coordinatorMain: string;
  readonly natsServer: string;
  /** How the operator runs allot from here, for the hints printed once ready. */
  readonly allotCommand: string;
  /** Generated credentials and TLS (<root>/security): every process connects as its role (docs/security.md). */
  readonly secure?: boolean;
}

/** Grace before SIGKILL, per kind: an agent gets its shutdownGraceMs (10 s by default) plus time to flush. */
const GRACE_MS = { coordinator: 15_000, agent: 20_000, nats: 15_000 } as const;

type Outcome = { kind: 'stop'; signal: string } | { kind: 'died'; child: Child; exit: ChildExit };

/**
 * `allot cluster`: nats-server, one coordinator and the agents of the cluster file, on this machine. Returns when the
 * cluster has been stopped: 0 after Ctrl-C or SIGTERM, 1 when something failed to start or died.
 */
export async function runCluster(opts: ClusterOptions, ctx: CliContext): Promise<number> {
  const stopRequested = ctx.stopRequested().then((signal): Outcome => ({ kind: 'stop', signal }));
  const show = (path: string) => relative(ctx.cwd, path) || '.';

  const file = readClusterFile(opts.configFile);
  if (!file.ok) {
    ctx.err(`allot cluster: ${file.message}`);
    return EXIT.usage;
  }
  for (const [what, path] of [
    ['the agent', opts.agentMain],
    ['the coordinator', opts.coordinatorMain],
  ] as const) {
    if (!existsSync(path)) {
      ctx.err(`allot cluster: ${show(path)} does not exist: ${what} is not built yet, so there is no cluster to start.`);
      return EXIT.refused;
    }
  }
  const port = await portIsFree(opts.port);
  if (!port.free) {
    ctx.err(
      `allot cluster: port ${opts.port} on 127.0.0.1 is ${port.reason} (another nats-server or allot cluster?); choose another with --port`,
    );
    return EXIT.refused;
  }
  if (opts.dashboardPort !== undefined) {
    const dashboard = await portIsFree(opts.dashboardPort);
    if (!dashboard.free) {
      ctx.err(
        `allot cluster: dashboard port ${opts.dashboardPort} on 127.0.0.1 is ${dashboard.reason}; choose another with --dashboard-port, or --no-dashboard`,
      );
      return EXIT.refused;
    }
  }

  const layout = clusterLayout(opts.root);
  const natsUrl = `${opts.secure === true ? 'tls' : 'nats'}://127.0.0.1:${opts.port}`;
  let security: Deployment | undefined;
  if (opts.secure === true) {
    const wanted = [
      ...file.value.agents.map((a) => ({ role: 'agent' as const, name: a.nodeId })),
      { role: 'scheduler' as const, name: 'demo' },
    ];
    const made = await ensureDeployment(join(opts.root, 'security'), wanted, { servers: [natsUrl], port: opts.port });
    if (!made.ok) {
      ctx.err(`allot cluster: ${made.error.message}`);
      return EXIT.refused;
    }
    security = made.value;
  }
  writeFiles(layout, file.value, natsUrl, opts, security);
  const env = childEnv(ctx.env);
  const children: Child[] = [];
  // If the CLI itself dies, no child is left behind holding the port and the agents' ledger locks.
  const killAll = () => children.forEach((c) => c.killNow());
  process.on('exit', killAll);

  const held: { session?: Session } = {};
  let code: number = EXIT.refused;
  try {
    code = await bringUpAndServe(opts, ctx, file.value, layout, natsUrl, env, children, held, stopRequested, show, security);
  } finally {
    await held.session?.close();
    const clean = await stopAll(ctx, children);
    process.off('exit', killAll);
    if (!clean && code === EXIT.ok) code = EXIT.refused;
  }
  return code;
}

/** Starts every process, waits until the cluster is ready, then until Ctrl-C or a death; returns the exit code. */
async function bringUpAndServe(
  opts: ClusterOptions,
  ctx: CliContext,
  file: ClusterFile,
  layout: ClusterLayout,
  natsUrl: string,
  env: Record<string, string>,
  children: Child[],
  held: { session?: Session },
  stopRequested: Promise<Outcome>,
  show: (path: string) => string,
  security: Deployment | undefined,
): Promise<number> {
  const nats = startChild({
    name: 'nats-server',
    command: opts.natsServer,
    args: ['-c', layout.natsConfig],
    cwd: ctx.cwd,
    env,
    logFile: layout.logOf('nats-server'),
    stopSignal: 'SIGINT',
  });
  children.push(nats);
  // Secured, the supervisor is the admin: it makes the streams and buckets, which agents and coordinators may not.
  const connection =
    security === undefined
      ? { servers: [natsUrl], requestTimeoutMs: 2000 }
      : { ...identityOf(security, 'admin', 'admin'), requestTimeoutMs: 2000 };
  const connected = await connectWhenUp(connection, nats, stopRequested);
  if (connected.kind !== 'ok') return failed(ctx, connected, show);
  const session = connected.session;
  held.session = session;
  ctx.out(`nats-server  ${natsUrl}, JetStream in ${show(layout.natsStore)}`);
  if (security !== undefined) {
    const storage = await setupStorage(session.nc, 1);
    if (!storage.ok) {
      ctx.err(`allot cluster: ${storage.error.message}`);
      return EXIT.refused;
    }
    ctx.out(`secured: credentials and TLS in ${show(security.dir)}; streams and buckets made as admin`);
  }

  children.push(
    startChild({
      name: 'coordinator',
      command: opts.node,
      args: [opts.coordinatorMain, '--config', join(layout.configs, 'coordinator.json')],
      cwd: ctx.cwd,
      env,
      logFile: layout.logOf('coordinator'),
      readyMsg: 'coordinator ready',
    }),
  );
  for (const agent of file.agents) {
    children.push(
      startChild({
        name: agent.nodeId,
        command: opts.node,
        args: [opts.agentMain, '--config', join(layout.configs, `${agent.nodeId}.json`)],
        cwd: ctx.cwd,
        env,
        logFile: layout.logOf(agent.nodeId),
        readyMsg: 'agent ready',
      }),
    );
  }
  ctx.out(
    `started the coordinator and ${file.agents.length} agents (${file.agents.map((a) => a.nodeId).join(', ')}); logs in ${show(layout.logs)}`,
  );

  const wanted = file.agents.map((a) => a.nodeId);
  const ready = await waitUntilReady(session, wanted, children, opts.readyTimeoutMs, stopRequested);
  if (ready.kind === 'timeout') {
    ctx.err(`allot cluster: not ready after ${opts.readyTimeoutMs} ms: ${ready.why}`);
    for (const c of children) ctx.err(`  ${c.name.padEnd(12)} ${c.ready ? 'ready' : 'not ready'}  log: ${show(c.logFile)}`);
    return EXIT.refused;
  }
  if (ready.kind !== 'ready') return failed(ctx, ready, show);

  ctx.out('');
  ctx.out(renderNodes(ready.nodes, ctx.now()));
  ctx.out('');
  ctx.out(nextSteps(opts.allotCommand, natsUrl, opts.port, opts.dashboardPort));
  if (security !== undefined)
    ctx.out(
      `Secured: first 'set -a; . ${show(join(security.dir, 'identities/operator/operator/nats.env'))}; set +a' (the operator; readers and tenants have their own in ${show(join(security.dir, 'identities'))})`,
    );

  const outcome = await Promise.race([stopRequested, anyExit(children)]);
  if (outcome.kind === 'died') return failed(ctx, outcome, show);
  ctx.out(`\n${outcome.signal}: stopping the cluster`);
  return EXIT.ok;
}

function readClusterFile(path: string) {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return { ok: false as const, message: `cannot read the cluster file ${path}: ${(e as Error).message}` };
  }
  return parseClusterFile(path, text);
}

/** One identity's connection config from the deployment. */
function identityOf(security: Deployment, role: string, name: string): NatsConnectionConfig {
  const found = security.identities.find((i) => i.identity.role === role && i.identity.name === name);
  if (found === undefined) throw new Error(`the deployment has no ${role} ${name}`);
  return found.connection;
}

function writeFiles(
  layout: ClusterLayout,
  file: ClusterFile,
  natsUrl: string,
  opts: ClusterOptions,
  security: Deployment | undefined,
): void {
  const port = opts.port;
  for (const dir of [layout.root, layout.natsStore, layout.logs, layout.configs, ...file.agents.map((a) => layout.stateOf(a.nodeId))])
    mkdirSync(dir, { recursive: true });
  // Secured: the generated TLS and nkey users are appended to the server's config, and each process gets its identity.
  const auth = security === undefined ? '' : `\n${readFileSync(security.authConfig, 'utf8')}`;
  writeFileSync(layout.natsConfig, natsServerConfig(port, layout.natsStore) + auth);
  const secured = (config: Record<string, unknown>, role: string, name: string) =>
    security === undefined
      ? config
      : { ...config, nats: { ...identityOf(security, role, name), name: (config['nats'] as { name: string }).name } };
  const coordinator = coordinatorConfig(
    file.coordinator,
    natsUrl,
    opts.dashboardPort === undefined ? undefined : { port: opts.dashboardPort, dir: opts.dashboardDir },
  );
  writeFileSync(
    join(layout.configs, 'coordinator.json'),
    `${JSON.stringify(secured(coordinator, 'coordinator', 'coordinator'), null, 2)}\n`,
  );
  for (const agent of file.agents)
    writeFileSync(
      join(layout.configs, `${agent.nodeId}.json`),
      `${JSON.stringify(secured(agentConfig(agent, natsUrl, layout), 'agent', agent.nodeId), null, 2)}\n`,
    );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function anyExit(children: readonly Child[]): Promise<Outcome> {
  return Promise.race(children.map((child) => child.exited.then((exit): Outcome => ({ kind: 'died', child, exit }))));
}

type Connected = { kind: 'ok'; session: Session } | Outcome | { kind: 'timeout'; why: string };

/** nats-server takes a moment to listen: connect again until it does, it dies, or the operator gives up. */
async function connectWhenUp(connection: NatsConnectionConfig, nats: Child, stop: Promise<Outcome>): Promise<Connected> {
  const deadline = Date.now() + 20_000;
  const died = anyExit([nats]);
  const url = connection.servers.join(', ');
  while (Date.now() < deadline) {
    const session = await openSession(connection);
    if (session.ok) return { kind: 'ok', session: session.value };
    const early = await Promise.race([stop, died, sleep(200).then(() => undefined)]);
    if (early !== undefined) return early;
  }
  return { kind: 'timeout', why: `nats-server did not accept connections on ${url}` };
}

type Ready = { kind: 'ready'; nodes: NodeView[] } | Outcome | { kind: 'timeout'; why: string };

/** Ready when the coordinator reports every configured node as ready (allot.sched.nodes). */
async function waitUntilReady(
  session: Session,
  wanted: readonly string[],
  children: readonly Child[],
  timeoutMs: number,
  stop: Promise<Outcome>,
): Promise<Ready> {
  const deadline = Date.now() + timeoutMs;
  const died = anyExit(children);
  let why = 'the coordinator has not answered yet';
  while (Date.now() < deadline) {
    const reply = await session.call('nodes', {});
    if (reply.ok) {
      const ready = new Set(reply.value.nodes.filter((n) => n.liveness === 'ready').map((n) => n.nodeId));
      const missing = wanted.filter((id) => !ready.has(id));
      if (missing.length === 0) return { kind: 'ready', nodes: reply.value.nodes };
      why = `the coordinator does not report ${missing.join(', ')} as ready`;
    } else {
      why = `allot.sched.nodes: ${reply.error.code}: ${reply.error.message}`;
    }
    const early = await Promise.race([stop, died, sleep(500).then(() => undefined)]);
    if (early !== undefined) return early;
  }
  return { kind: 'timeout', why };
}

/** Reports why the cluster cannot go on; the caller's finally stops what runs. */
function failed(ctx: CliContext, outcome: Outcome | { kind: 'timeout'; why: string }, show: (p: string) => string): number {
  if (outcome.kind === 'stop') {
    ctx.out(`\n${outcome.signal}: stopping the cluster before it was ready`);
    return EXIT.ok;
  }
  if (outcome.kind === 'timeout') {
    ctx.err(`allot cluster: ${outcome.why}`);
    return EXIT.refused;
  }
  ctx.err(
    `allot cluster: ${outcome.child.name} ${describeExit(outcome.exit)} unexpectedly; stopping the cluster. Last lines of ${show(outcome.child.logFile)}:`,
  );
  for (const line of tailOf(outcome.child.logFile, 12)) ctx.err(`  ${line}`);
  return EXIT.refused;
}

/**
 * Stops in dependency order: the coordinator first (no new placements), then the agents together (each flushes its
 * ledger), then nats-server last (the agents publish their final state through it). Returns whether every process
 * stopped by itself.
 */
async function stopAll(ctx: CliContext, children: readonly Child[]): Promise<boolean> {
  const nats = children.filter((c) => c.name === 'nats-server');
  const coordinator = children.filter((c) => c.name === 'coordinator');
  const agents = children.filter((c) => c.name !== 'nats-server' && c.name !== 'coordinator');
  let clean = true;
  const stopGroup = async (group: readonly Child[], graceMs: number) => {
    await Promise.all(
      group.map(async (c) => {
        if (!c.running) return;
        const { exit, killed } = await c.stop(graceMs);
        const ok = !killed && (exit.code === 0 || exit.signal === 'SIGTERM' || exit.signal === 'SIGINT');
        if (!ok) clean = false;
        ctx.out(`stopped ${c.name}${killed ? ` (killed after ${graceMs} ms)` : ok ? '' : ` (${describeExit(exit)})`}`);
      }),
    );
  };
  // A second Ctrl-C while stopping kills what is left at once.
  const force = () => children.forEach((c) => c.killNow());
  process.on('SIGINT', force);
  process.on('SIGTERM', force);
  try {
    await stopGroup(coordinator, GRACE_MS.coordinator);
    await stopGroup(agents, GRACE_MS.agent);
    await stopGroup(nats, GRACE_MS.nats);
  } finally {
    process.off('SIGINT', force);
    process.off('SIGTERM', force);
  }
  return clean;
}

function nextSteps(allot: string, natsUrl: string, port: number, dashboardPort: number | undefined): string {
  const server = port === 4222 ? '' : ` -s ${natsUrl}`;
  return [
    ...(dashboardPort === undefined ? [] : [`Dashboard: http://127.0.0.1:${dashboardPort}/`]),
    `The cluster is up. In another terminal, from the repository root:`,
    `  ${allot} nodes${server}`,
    `  ${allot} place${server} --tenant demo --memory 2048 --vcpus 2`,
    `  ${allot} usage${server} --node sim-large --cores`,
    `  ${allot} events${server} --follow`,
    `  ${allot} watch${server}`,
    `Ctrl-C stops everything (coordinator, agents, then nats-server).`,
  ].join('\n');
}
