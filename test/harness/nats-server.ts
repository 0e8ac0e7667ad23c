import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerCleanup } from './cleanup.ts';
import { freePort, portAccepts } from './net.ts';
import { tempDir } from './temp.ts';
import { waitFor } from './wait.ts';

const BOOTSTRAPPED_NATS_SERVER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.tools', 'nats', 'nats-server');

/**
 * Where the nats-server binary is: NATS_SERVER_BIN, else the one scripts/bootstrap.sh installs into .tools/nats (2.12 or
 * later is needed: atomic batch publish, per-message TTL), else the OS package's.
 */
export const NATS_SERVER_BIN =
  process.env['NATS_SERVER_BIN'] ?? (existsSync(BOOTSTRAPPED_NATS_SERVER) ? BOOTSTRAPPED_NATS_SERVER : '/usr/sbin/nats-server');

export type NatsServerOptions = {
  /** Enable JetStream (file store under storeDir). Default true: allot needs it. */
  jetstream?: boolean;
  /** The JetStream domain (a site behind a leaf node connection keeps its own); default none. */
  jetstreamDomain?: string;
  /** Client port; default a free port. */
  port?: number;
  /** JetStream store and the config/log files; default a new temp dir removed by cleanupAll(). */
  storeDir?: string;
  /** Largest message the server accepts, in bytes; default the server's (1 MB). */
  maxPayload?: number;
  /** Server name (needed by JetStream clustering); default `n<port>`. */
  serverName?: string;
  /** Join a cluster: its name, this server's route port (default free), and the route URLs of the others. */
  cluster?: { name: string; port?: number; routes: string[] };
  /** Lines appended verbatim to the config file (accounts, TLS, authorization blocks...). */
  extraConfig?: string;
  /** How long start and restart wait for the server to accept connections. */
  startTimeoutMs?: number;
};

/** A running (or stopped) nats-server the test owns. */
export type NatsServerHandle = {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  /** HTTP monitoring port (/varz, /jsz, /healthz). */
  readonly monitorPort: number;
  readonly storeDir: string;
  readonly configFile: string;
  /** The server's stdout and stderr, appended across restarts. */
  readonly logFile: string;
  /** Process id of the current incarnation, undefined while stopped. */
  readonly pid: number | undefined;
  /** SIGTERM (graceful: flushes JetStream) and waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL and waits for the exit: a crash. */
  kill(): Promise<void>;
  /** Starts again with the same config: same port, same store. Stops it first if it runs. */
  restart(): Promise<void>;
  /** GET on the monitoring endpoint (`/jsz`, `/varz`...), parsed JSON. */
  monitor(path: string): Promise<unknown>;
};

/** Renders the server config. Only options nats-server 2.9.10 knows. */
export function natsServerConfig(o: {
  serverName: string;
  port: number;
  monitorPort: number;
  storeDir: string;
  jetstream: boolean;
  jetstreamDomain?: string | undefined;
  maxPayload?: number | undefined;
  cluster?: { name: string; port: number; routes: string[] } | undefined;
  extraConfig?: string | undefined;
}): string {
  const lines = [`server_name: ${JSON.stringify(o.serverName)}`, `listen: "127.0.0.1:${o.port}"`, `http: "127.0.0.1:${o.monitorPort}"`];
  if (o.maxPayload !== undefined) lines.push(`max_payload: ${o.maxPayload}`);
  if (o.jetstream) {
    lines.push(
      `jetstream {`,
      `  store_dir: ${JSON.stringify(o.storeDir)}`,
      `  max_memory_store: 268435456`,
      `  max_file_store: 4294967296`,
      ...(o.jetstreamDomain === undefined ? [] : [`  domain: ${JSON.stringify(o.jetstreamDomain)}`]),
      `}`,
    );
  }
  if (o.cluster) {
    lines.push(
      `cluster {`,
      `  name: ${JSON.stringify(o.cluster.name)}`,
      `  listen: "127.0.0.1:${o.cluster.port}"`,
      `  routes: [${o.cluster.routes.map((r) => JSON.stringify(r)).join(', ')}]`,
      `}`,
    );
  }
  if (o.extraConfig) lines.push(o.extraConfig);
  return `${lines.join('\n')}\n`;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null };

/** Starts a nats-server and waits until it accepts client connections (and, with JetStream, until /healthz is ok). */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const server = await prepareNatsServer(options);
  await server.launch();
  await server.waitReady(options.cluster === undefined);
  return server.handle;
}

/** Config written, process not started yet: a cluster starts all of its servers before waiting for any. */
async function prepareNatsServer(options: NatsServerOptions) {
  const jetstream = options.jetstream ?? true;
  const port = options.port ?? (await freePort());
  const monitorPort = await freePort();
  const storeDir = options.storeDir ?? (await tempDir('nats'));
  const serverName = options.serverName ?? `n${port}`;
  const cluster = options.cluster
    ? { name: options.cluster.name, port: options.cluster.port ?? (await freePort()), routes: options.cluster.routes }
    : undefined;
  await mkdir(storeDir, { recursive: true });
  const configFile = join(storeDir, `${serverName}.conf`);
  const logFile = join(storeDir, `${serverName}.log`);
  await writeFile(
    configFile,
    natsServerConfig({
      serverName,
      port,
      monitorPort,
      storeDir,
      jetstream,
      jetstreamDomain: options.jetstreamDomain,
      maxPayload: options.maxPayload,
      cluster,
      extraConfig: options.extraConfig,
    }),
  );
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;

  let child: ChildProcess | undefined;
  let exited: Promise<Exit> | undefined;

  const launch = async (): Promise<void> => {
    const log = openSync(logFile, 'a');
    try {
      child = spawn(NATS_SERVER_BIN, ['-c', configFile], { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    const proc = child;
    exited = new Promise<Exit>((resolve) => {
      proc.once('exit', (code, signal) => resolve({ code, signal }));
      proc.once('error', () => resolve({ code: -1, signal: null }));
    });
  };

  const signalAndWait = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    const proc = child;
    const done = exited;
    if (!proc || !done) return;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await done;
    clearTimeout(timer);
    child = undefined;
    exited = undefined;
  };

  const monitor = async (path: string): Promise<unknown> => {
    const res = await fetch(`http://127.0.0.1:${monitorPort}${path}`);
    return res.json();
  };

  const waitReady = async (checkHealth: boolean): Promise<void> => {
    await waitFor(
      async () => {
        if (!child || child.exitCode !== null || child.signalCode !== null) throw new Error(`nats-server exited; see ${logFile}`);
        return portAccepts(port);
      },
      { timeoutMs: startTimeoutMs, message: `nats-server ${serverName} to accept connections on ${port} (log: ${logFile})` },
    );
    if (jetstream && checkHealth) {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${monitorPort}/healthz`)).ok, {
        timeoutMs: startTimeoutMs,
        message: `nats-server ${serverName} /healthz (log: ${logFile})`,
      });
    }
  };

  const stop = () => signalAndWait('SIGTERM', 10_000);
  const kill = () => signalAndWait('SIGKILL', 10_000);
  registerCleanup(`nats-server ${serverName}`, kill, () => child?.kill('SIGKILL'));

  const handle: NatsServerHandle = {
    name: serverName,
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    storeDir,
    configFile,
    logFile,
    get pid() {
      return child?.pid;
    },
    stop,
    kill,
    restart: async () => {
      await stop();
      await launch();
      await waitReady(cluster === undefined);
    },
    monitor,
  };
  return { handle, launch, waitReady };
}

/** A cluster of JetStream servers with full-mesh routes, able to host R3 streams. */
export type NatsClusterHandle = {
  readonly servers: NatsServerHandle[];
  /** Every client URL, for a connection that fails over. */
  readonly urls: string[];
  /** Name of the current JetStream meta leader, waiting until there is one. */
  metaLeader(timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
};

type JszMeta = { meta_cluster?: { leader?: string; cluster_size?: number; replicas?: { name: string; current?: boolean }[] } };

/**
 * Starts `size` servers routed to each other with JetStream, and waits until a meta leader is elected and sees every
 * peer (so an R`size` stream can be created at once).
 */
export async function startNatsCluster(
  size = 3,
  options: Omit<NatsServerOptions, 'port' | 'cluster' | 'serverName' | 'storeDir'> & { name?: string } = {},
): Promise<NatsClusterHandle> {
  const clusterName = options.name ?? 'allot-test';
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`);
  const root = await tempDir('nats-cluster');
  const prepared = [];
  for (let i = 0; i < size; i++) {
    prepared.push(
      await prepareNatsServer({
        ...options,
        jetstream: true,
        serverName: `s${i + 1}`,
        storeDir: join(root, `s${i + 1}`),
        cluster: { name: clusterName, port: routePorts[i] as number, routes: routes.filter((_, j) => j !== i) },
      }),
    );
  }
  await Promise.all(prepared.map((p) => p.launch()));
  await Promise.all(prepared.map((p) => p.waitReady(false)));
  const servers = prepared.map((p) => p.handle);

  const metaLeader = async (timeoutMs = 30_000): Promise<string> =>
    waitFor(
      async () => {
        for (const s of servers) {
          if (s.pid === undefined) continue;
          const jsz = (await s.monitor('/jsz').catch(() => ({}))) as JszMeta;
          const meta = jsz.meta_cluster;
          // The leader lists the other peers as replicas; all of them current means R`size` streams can be placed.
          if (meta?.leader && meta.leader === s.name) {
            const peers = (meta.replicas ?? []).filter((r) => r.current !== false).length + 1;
            const alive = servers.filter((x) => x.pid !== undefined).length;
            if (peers >= alive) return meta.leader;
          }
        }
        return '';
      },
      { timeoutMs, intervalMs: 100, message: `a JetStream meta leader in cluster ${clusterName}` },
    );

  await metaLeader();
  return {
    servers,
    urls: servers.map((s) => s.url),
    metaLeader,
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}
