import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCHED_ENDPOINTS, schedSubject, schedSubjectFor, type SchedVerb } from '@allot/protocol';
import type { Result } from '@allot/core';
import { requestTyped, type Output } from '@allot/nats';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { isLogMsg, startAgent, type AgentHandle, type AgentHostSize } from './agent.ts';
import { registerCleanup } from './cleanup.ts';
import { startNatsServer, type NatsServerHandle, type NatsServerOptions } from './nats-server.ts';
import { spawnProcess, type ProcessHandle } from './process.ts';
import { tempDir } from './temp.ts';
import { waitFor } from './wait.ts';

/** The coordinator's entry point, run with this Node as the real process would be. */
export const COORDINATOR_MAIN = fileURLToPath(new URL('../../apps/coordinator/src/main.ts', import.meta.url));

export type ClusterAgentSpec = {
  nodeId: string;
  /** Simulated host size; default 16 cores, 65536 MiB. */
  simulatedHost?: AgentHostSize;
  labels?: Record<string, string>;
  memoryOvercommit?: number;
  cpuOvercommit?: number;
  /** More ALLOT_* variables for this agent. */
  env?: Record<string, string>;
};

export type LocalClusterOptions = {
  agents: ClusterAgentSpec[];
  /** Coordinator processes; default 1. */
  coordinators?: number;
  natsOptions?: NatsServerOptions;
  /** Agent heartbeat (default 500 ms) and change-coalescing interval (default 50 ms). */
  heartbeatMs?: number;
  usagePublishMinIntervalMs?: number;
  /** Merged into every coordinator's config file (liveness, place...). */
  coordinatorConfig?: Record<string, unknown>;
  /** How long to wait for processes to be ready and for the view to show every node. */
  readyTimeoutMs?: number;
};

export type SchedReply<V extends SchedVerb> = Output<(typeof SCHED_ENDPOINTS)[V]['reply']>;

export type LocalCluster = {
  readonly server: NatsServerHandle;
  /** A client connection for the test (reconnects forever). */
  readonly nc: NatsConnection;
  readonly agents: Map<string, AgentHandle>;
  readonly coordinators: ProcessHandle[];
  /** One request to a scheduler verb (any coordinator of the queue group answers), reply validated. */
  sched<V extends SchedVerb>(verb: V, payload: unknown, timeoutMs?: number): Promise<Result<SchedReply<V>>>;
  /** Starts one more coordinator process and waits until it is ready. */
  addCoordinator(): Promise<ProcessHandle>;
  /** Restarts a stopped/killed agent on its state dir and waits for `agent ready`. */
  restartAgent(nodeId: string): Promise<AgentHandle>;
  /** Waits until `allot.sched.nodes` shows every listed node with that liveness (default: every agent ready). */
  waitForNodes(nodeIds?: string[], liveness?: 'ready' | 'suspect' | 'lost', timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
};

/**
 * A real local cluster: one nats-server (JetStream), agent processes on simulated hosts (each with its own ledger dir)
 * and coordinator processes, all with JSON logs. Resolves once every coordinator logged `coordinator ready` and the
 * scheduler API lists every agent as ready. cleanupAll() tears everything down.
 */
export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const server = await startNatsServer(options.natsOptions ?? {});
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const heartbeatMs = options.heartbeatMs ?? 500;
  const publishMin = options.usagePublishMinIntervalMs ?? 50;
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50, name: 'test-client' });
  registerCleanup('cluster test client', async () => {
    if (!nc.isClosed()) await nc.close();
  });

  const stateDirs = new Map<string, string>();
  const specs = new Map(options.agents.map((a) => [a.nodeId, a]));
  const agents = new Map<string, AgentHandle>();
  const launchAgent = async (spec: ClusterAgentSpec): Promise<AgentHandle> => {
    let stateDir = stateDirs.get(spec.nodeId);
    if (stateDir === undefined) {
      stateDir = await tempDir(`agent-${spec.nodeId}`);
      stateDirs.set(spec.nodeId, stateDir);
    }
    const env: Record<string, string> = {
      ALLOT_HEARTBEAT_MS: String(heartbeatMs),
      ALLOT_USAGE_PUBLISH_MIN_INTERVAL_MS: String(publishMin),
      ALLOT_LOG_LEVEL: 'info',
      ...(spec.labels === undefined
        ? {}
        : {
            ALLOT_LABELS: Object.entries(spec.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          }),
      ...spec.env,
    };
    const handle = await startAgent({
      natsUrl: server.url,
      nodeId: spec.nodeId,
      stateDir,
      ...(spec.simulatedHost === undefined ? {} : { host: spec.simulatedHost }),
      ...(spec.memoryOvercommit === undefined ? {} : { memoryOvercommit: spec.memoryOvercommit }),
      ...(spec.cpuOvercommit === undefined ? {} : { cpuOvercommit: spec.cpuOvercommit }),
      env,
      readyTimeoutMs: readyTimeoutMs,
    });
    agents.set(spec.nodeId, handle);
    return handle;
  };
  await Promise.all(options.agents.map(launchAgent));

  const configDir = await tempDir('coordinators');
  const coordinators: ProcessHandle[] = [];
  let coordinatorCounter = 0;
  const addCoordinator = async (): Promise<ProcessHandle> => {
    coordinatorCounter += 1;
    const id = `c${coordinatorCounter}`;
    const file = join(configDir, `${id}.json`);
    const base: Record<string, unknown> = {
      coordinatorId: id,
      nats: { servers: [server.url] },
      logLevel: 'info',
      liveness: { suspectAfterMs: 3 * heartbeatMs, lostAfterMs: 60_000, checkEveryMs: 100 },
    };
    await writeFile(file, JSON.stringify({ ...base, ...options.coordinatorConfig }));
    const child = spawnProcess({
      name: `coordinator ${id}`,
      script: COORDINATOR_MAIN,
      args: ['--config', file],
      env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
    });
    await child.waitForLine(isLogMsg('coordinator ready'), readyTimeoutMs);
    coordinators.push(child);
    return child;
  };
  await Promise.all(Array.from({ length: options.coordinators ?? 1 }, addCoordinator));

  const sched = <V extends SchedVerb>(verb: V, payload: unknown, timeoutMs = 10_000) =>
    // A tenant verb goes to the tenant its body names; a body naming none (a malformed-request test) to tenant `unnamed`.
    requestTyped(nc, schedSubjectFor(verb, payload) ?? schedSubject(verb, 'unnamed'), payload, SCHED_ENDPOINTS[verb].reply, {
      timeoutMs,
    }) as Promise<Result<SchedReply<V>>>;

  const waitForNodes = async (
    nodeIds = [...specs.keys()],
    liveness: 'ready' | 'suspect' | 'lost' = 'ready',
    timeoutMs = readyTimeoutMs,
  ) => {
    // Requests are spread over the coordinators by the queue group: several agreeing answers in a row cover them all.
    let agreeing = 0;
    const needed = Math.max(1, coordinators.length * 3);
    await waitFor(
      async () => {
        const r = await sched('nodes', {}, 2_000);
        const all = r.ok && nodeIds.every((id) => r.value.nodes.some((n) => n.nodeId === id && n.liveness === liveness));
        agreeing = all ? agreeing + 1 : 0;
        return agreeing >= needed;
      },
      { timeoutMs, intervalMs: 50, message: `nodes ${nodeIds.join(', ')} ${liveness} in the coordinators' view` },
    );
  };
  await waitForNodes();

  return {
    server,
    nc,
    agents,
    coordinators,
    sched,
    addCoordinator,
    restartAgent: async (nodeId) => {
      const spec = specs.get(nodeId);
      if (spec === undefined) throw new Error(`no agent ${nodeId} in this cluster`);
      return launchAgent(spec);
    },
    waitForNodes,
    stop: async () => {
      for (const c of coordinators) await c.stop('SIGTERM', 5_000);
      await Promise.all([...agents.values()].map((a) => a.stop('SIGTERM', 5_000)));
      if (!nc.isClosed()) await nc.close();
      await server.stop();
    },
  };
}
