import { fileURLToPath } from 'node:url';
import { AGENT_ENDPOINTS, agentSubject, decode, EVENTS_STREAM, AllotEventSchema, type AgentVerb, type AllotEvent } from '@allot/protocol';
import type { Result } from '@allot/core';
import { requestTyped, type Output } from '@allot/nats';
import { jetstreamManager, type MsgRequest } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { spawnProcess, type OutputLine, type ProcessHandle } from './process.ts';

/** The agent's entry point, run with this Node as the real process would be. */
export const AGENT_MAIN = fileURLToPath(new URL('../../apps/agent/src/main.ts', import.meta.url));

export type AgentHostSize = {
  cores: number;
  memoryMiB: number;
  sockets?: number;
  numaNodes?: number;
  threadsPerCore?: number;
  hugepages2MiPerNode?: number;
  hugepages1GiPerNode?: number;
};

export type StartAgentOptions = {
  natsUrl: string;
  nodeId: string;
  stateDir: string;
  /** A simulated host of this size (deterministic usage); default 16 cores, 65536 MiB. */
  host?: AgentHostSize;
  memoryOvercommit?: number;
  cpuOvercommit?: number;
  /** More ALLOT_* variables (they win over the ones above). */
  env?: Record<string, string>;
  /** Wait for `agent ready`; default true. */
  waitReady?: boolean;
  readyTimeoutMs?: number;
};

export type AgentHandle = ProcessHandle & { readonly nodeId: string; readonly stateDir: string };

/** `ALLOT_SIMULATED_HOST` text for a host size. */
export function simulatedHostEnv(size: AgentHostSize): string {
  return Object.entries(size)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
}

export const isLogMsg =
  (msg: string) =>
  (line: OutputLine): line is Record<string, unknown> =>
    typeof line === 'object' && line['msg'] === msg;

/**
 * Starts `apps/agent/src/main.ts` as a child process (JSON logs, simulated host, its ledger in stateDir) and waits
 * until it logs `agent ready`. cleanupAll() kills it if the test does not stop it.
 */
export async function startAgent(options: StartAgentOptions): Promise<AgentHandle> {
  const env: Record<string, string> = {
    ALLOT_LOG_FORMAT: 'json',
    ALLOT_LOG_LEVEL: 'info',
    ALLOT_NODE_ID: options.nodeId,
    ALLOT_NATS_SERVERS: options.natsUrl,
    ALLOT_STATE_DIR: options.stateDir,
    ALLOT_SIMULATED_HOST: simulatedHostEnv(options.host ?? { cores: 16, memoryMiB: 65_536 }),
    ALLOT_MEMORY_OVERCOMMIT: String(options.memoryOvercommit ?? 1),
    ALLOT_CPU_OVERCOMMIT: String(options.cpuOvercommit ?? 1),
    NODE_ENV: 'test',
    ...options.env,
  };
  const child = spawnProcess({ name: `agent ${options.nodeId}`, script: AGENT_MAIN, env });
  const handle: AgentHandle = Object.assign(child, { nodeId: options.nodeId, stateDir: options.stateDir });
  if (options.waitReady ?? true) await child.waitForLine(isLogMsg('agent ready'), options.readyTimeoutMs ?? 30_000);
  return handle;
}

/** The value an agent verb's ok reply carries. */
export type AgentReply<V extends AgentVerb> = Output<(typeof AGENT_ENDPOINTS)[V]['reply']>;

/** One request to an agent verb over NATS, its reply validated against the verb's reply schema. Never throws. */
export function agentRequest<V extends AgentVerb>(
  nc: NatsConnection,
  nodeId: string,
  verb: V,
  payload: unknown,
  timeoutMs = 10_000,
): Promise<Result<AgentReply<V>>> {
  return requestTyped(nc, agentSubject(nodeId, verb), payload, AGENT_ENDPOINTS[verb].reply, { timeoutMs }) as Promise<
    Result<AgentReply<V>>
  >;
}

/**
 * Every event stored in ALLOT_EVENTS under `subjectFilter` (e.g. `allot.events.n1.>`), decoded and validated, read
 * with direct gets by sequence (bounded by the stream's last sequence and `max`).
 */
export async function readEvents(nc: NatsConnection, subjectFilter: string, max = 20_000): Promise<AllotEvent[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(EVENTS_STREAM);
  const events: AllotEvent[] = [];
  const last = info.state.last_seq;
  let seq = info.state.first_seq;
  while (seq <= last && events.length < max) {
    // next_by_subj (server 2.9+) is missing from the client's MsgRequest type, though the API takes it.
    const query = { seq, next_by_subj: subjectFilter } as unknown as MsgRequest;
    const msg = await jsm.streams.getMessage(EVENTS_STREAM, query);
    if (msg === null) break;
    const decoded = decode(AllotEventSchema, msg.data, Number.POSITIVE_INFINITY);
    if (!decoded.ok) throw new Error(`event ${msg.seq} on ${msg.subject} does not match the event schema: ${decoded.error.message}`);
    events.push(decoded.value);
    seq = msg.seq + 1;
  }
  return events;
}
