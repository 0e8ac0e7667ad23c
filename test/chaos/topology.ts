/**
 * The chaos topology, every process in its own container on one Docker network: a three-node NATS cluster with
 * JetStream (streams and KV R3), two coordinators, five agents on simulated hosts, all secured (security.ts): TLS
 * everywhere, routes included, and each process and client with its own identity and only its role's permissions.
 * The test process is the schedulers (one identity per tenant), the operator, the reader and the auditor: it connects
 * to the NATS cluster through the mapped client ports. Faults are applied through the engine's API.
 */
import { chown, cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AGENT_ENDPOINTS,
  AGENT_SERVICE_NAME,
  agentSubject,
  COORDINATOR_SERVICE_NAME,
  isTenantVerb,
  OPERATOR_VERBS,
  SCHED_ENDPOINTS,
  schedSubject,
  schedSubjectFor,
  tenantOfBody,
  type AgentVerb,
  type SchedVerb,
} from '@allot/protocol';
import { err, ok, type Allocation, type NatsConnectionConfig, type Result } from '@allot/core';
import { connectOptionsFrom, requestTyped, type Output } from '@allot/nats';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { GenericContainer, Wait } from 'testcontainers';
import { setupStorage } from '../../apps/cli/src/security/setup.ts';
import type { Role } from '../../apps/cli/src/security/roles.ts';
import { freePort } from '../harness/net.ts';
import { waitFor } from '../harness/wait.ts';
import { CHAOS_LABEL, containerLogLines, docker, type Docker } from './docker.ts';
import type { AppImages, ChaosImages } from './images.ts';
import { CREDENTIALS_DIR, NATS_CONFIG_DIR, TENANTS, type ChaosSecurity } from './security.ts';

export type HostSpec = { nodeId: string; cores: number; memoryMiB: number; cpuOvercommit: number; memoryOvercommit: number };
export type MemberKind = 'nats' | 'agent' | 'coordinator';
export type Member = { name: string; kind: MemberKind; short: string; id: string; image: string };
/** A process as it answers the NATS services ping: its id (node or coordinator) and the release it announces. */
export type ServiceSeen = { member: string; version: string };
export type ExitSeen = { member: string; at: number; status: string; exitCode: number; expected: boolean };

export const HEARTBEAT_MS = 500;
export const SUSPECT_AFTER_MS = 1_500;
export const LOST_AFTER_MS = 5_000;
export const STATE_DIR = '/var/lib/allot';

export const HOSTS: HostSpec[] = [
  { nodeId: 'a1', cores: 8, memoryMiB: 16_384, cpuOvercommit: 2, memoryOvercommit: 1 },
  { nodeId: 'a2', cores: 8, memoryMiB: 16_384, cpuOvercommit: 2, memoryOvercommit: 1 },
  { nodeId: 'a3', cores: 16, memoryMiB: 24_576, cpuOvercommit: 1.5, memoryOvercommit: 1.25 },
  { nodeId: 'a4', cores: 4, memoryMiB: 8_192, cpuOvercommit: 4, memoryOvercommit: 1 },
  { nodeId: 'a5', cores: 8, memoryMiB: 12_288, cpuOvercommit: 1, memoryOvercommit: 1.5 },
];
/**
 * The coordinators' reconciler and sweep, short enough that a tenant's usage settles to its live placements well within
 * the auditor's bound (QUOTA_SETTLE_BOUND_MS): a pending intent nobody drives is settled after 3 s, an orphan is
 * released once seen in two sweeps 2 s apart. Passed as `--config <file>` (there are no ALLOT_* variables for them).
 */
export const COORDINATOR_CONFIG = {
  reconcile: { everyMs: 1_000, pendingOlderThanMs: 3_000 },
  sweep: { everyMs: 2_000, graceMs: 2_000 },
};
const COORDINATOR_CONFIG_PATH = '/etc/allot/coordinator.json';
/** Allocations per `allocations` page when the auditor lists a node (small, so a listing really pages). */
export const LIST_PAGE_SIZE = 100;
const NATS = ['n1', 'n2', 'n3'];
export const COORDINATORS = ['c1', 'c2'];

export type SchedReply<V extends SchedVerb> = Output<(typeof SCHED_ENDPOINTS)[V]['reply']>;
export type AgentReplyOf<V extends AgentVerb> = Output<(typeof AGENT_ENDPOINTS)[V]['reply']>;

/** The exit code in a listing's status text, "Exited (137) 2 seconds ago". */
function exitCodeOf(status: string): number {
  return Number(/Exited \((-?\d+)\)/.exec(status)?.[1] ?? -1);
}

export class ChaosCluster {
  readonly runId: string;
  readonly network: string;
  readonly members = new Map<string, Member>();
  readonly exits: ExitSeen[] = [];
  /** Exits a scenario caused on purpose (kill, graceful stop) per member; more exits seen than these are crashes. */
  readonly #intendedExits = new Map<string, number>();
  readonly #seenExits = new Map<string, number>();
  /** Members the scenario killed at some point (their kill is not a crash; their logs are still read). */
  readonly killed = new Set<string>();
  /** The auditor (an admin identity): calls agents directly and pings the coordinators, which only admins may. */
  nc!: NatsConnection;
  /** One scheduler connection per tenant, the operator's and the reader's. */
  readonly #tenants = new Map<string, NatsConnection>();
  #operator!: NatsConnection;
  #reader!: NatsConnection;
  #docker!: Docker;
  #images: ChaosImages;
  readonly #security: ChaosSecurity;
  /** Host directories of this run's credential mounts. */
  readonly #runDir: string;
  #natsPorts: number[] = [];
  #monitor: NodeJS.Timeout | undefined;
  #lastStatus = new Map<string, string>();
  /** The log lines of containers an upgrade replaced (read before removing them), for the crash check. */
  readonly #retiredLogs: { member: string; lines: string[] }[] = [];

  private constructor(runId: string, images: ChaosImages, security: ChaosSecurity, runDir: string) {
    this.runId = runId;
    this.network = `allot-chaos-${runId}`;
    this.#images = images;
    this.#security = security;
    this.#runDir = runDir;
  }

  /** `runDir`: a private host directory for this run's credential mounts (removed by the caller). */
  static async start(images: ChaosImages, runId: string, security: ChaosSecurity, runDir: string): Promise<ChaosCluster> {
    const c = new ChaosCluster(runId, images, security, runDir);
    c.#docker = await docker();
    await c.#docker.createNetwork({ Name: c.network, Driver: 'bridge', Labels: { [CHAOS_LABEL]: runId } });
    c.#natsPorts = await Promise.all(NATS.map(() => freePort()));
    const natsConfig = await security.mountNatsConfig(
      runDir,
      NATS.map((n) => c.#name(n)),
    );
    await Promise.all(NATS.map((n, i) => c.#startNats(n, c.#natsPorts[i] as number, natsConfig)));
    // Deploy time: the admin identity makes the streams and buckets (R3), which agents and coordinators may not.
    // JetStream needs its meta leader first.
    const admin = await c.connectAs('admin', 'admin');
    try {
      await waitFor(
        async () => {
          try {
            const jsm = await jetstreamManager(admin, { timeout: 2_000 });
            await jsm.getAccountInfo();
            return true;
          } catch {
            return false;
          }
        },
        { timeoutMs: 60_000, intervalMs: 250, message: 'JetStream meta leader of the NATS cluster' },
      );
      let made: Result<string[]> = err('unavailable', 'not tried');
      await waitFor(
        async () => {
          made = await setupStorage(admin, 3);
          return made.ok;
        },
        { timeoutMs: 60_000, intervalMs: 500, message: 'allot security setup (streams and buckets, R3)' },
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}: ${made.ok ? '' : made.error.message}`, { cause: e });
      });
    } finally {
      await admin.close().catch(() => undefined);
    }
    c.nc = await c.connectAs('admin', 'auditor');
    for (const t of TENANTS) c.#tenants.set(t, await c.connectAs('scheduler', t));
    c.#operator = await c.connectAs('operator', 'operator');
    c.#reader = await c.connectAs('reader', 'reader');
    await Promise.all(HOSTS.map((h) => c.#startAgent(h)));
    await Promise.all(COORDINATORS.map((id) => c.#startCoordinator(id)));
    c.#monitor = setInterval(() => void c.#poll(), 500);
    await c.waitAllReady(60_000);
    return c;
  }

  #name(short: string): string {
    return `allot-chaos-${this.runId}-${short}`;
  }

  /** The client URLs inside the network (TLS: the server certificate names the containers). */
  get natsUrls(): string[] {
    return NATS.map((n) => `tls://${this.#name(n)}:4222`);
  }

  /** The client URLs the test process connects through, one per server (the mapped ports). */
  get clientUrls(): string[] {
    return this.#natsPorts.map((p) => `tls://127.0.0.1:${p}`);
  }

  /** The test's connection config as `role`/`name` to the given servers (default: all three). */
  clientConfig(role: Role, name: string, servers = this.clientUrls): NatsConnectionConfig {
    return this.#security.client(role, name, servers);
  }

  /** Connects the test process as `role`/`name`: its nkey, client certificate and private reply inbox. */
  async connectAs(role: Role, name: string): Promise<NatsConnection> {
    const options = await connectOptionsFrom(this.clientConfig(role, name), `chaos-${role}-${name}`);
    if (!options.ok) throw new Error(`chaos: ${role} ${name}: ${options.error.message}`);
    // Reconnect as quickly as the unsecured suite did (nats.js waits up to 1 s more on TLS otherwise).
    return connect({ ...options.value, reconnectTimeWait: 200, reconnectJitter: 100, reconnectJitterTLS: 100, ignoreClusterUpdates: true });
  }

  /** The scheduler connection of a tenant (the workers of one tenant share it). */
  tenant(tenantId: string): NatsConnection {
    const nc = this.#tenants.get(tenantId);
    if (nc === undefined) throw new Error(`chaos: no scheduler identity for tenant ${tenantId}`);
    return nc;
  }

  async #run(short: string, kind: MemberKind, container: GenericContainer, image: string): Promise<void> {
    const name = this.#name(short);
    const started = await container
      .withName(name)
      .withNetworkMode(this.network)
      .withLabels({ [CHAOS_LABEL]: this.runId, 'allot.chaos.member': short })
      .withStartupTimeout(90_000)
      .start();
    this.members.set(short, { name, kind, short, id: started.getId(), image });
  }

  async #startNats(short: string, port: number, configDir: string): Promise<void> {
    const c = new GenericContainer(this.#images.nats)
      .withBindMounts([{ source: configDir, target: NATS_CONFIG_DIR, mode: 'ro' }])
      .withCommand(['-c', `${NATS_CONFIG_DIR}/nats.conf`, '--name', short])
      .withExposedPorts({ container: 4222, host: port })
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/));
    await this.#run(short, 'nats', c, this.#images.nats);
  }

  /**
   * An agent's state directory on the host, bind-mounted at STATE_DIR: it outlives the container, as a host's disk
   * outlives an upgrade (owned by the images' user, 1000, 0700, as the unit's StateDirectory would make it).
   */
  stateDir(nodeId: string): string {
    return join(this.#runDir, 'agent-state', nodeId);
  }

  async #startAgent(h: HostSpec, image = this.#images.agent): Promise<void> {
    const credentials = await this.#security.mountIdentity(this.#runDir, 'agent', h.nodeId, this.natsUrls);
    const state = this.stateDir(h.nodeId);
    await mkdir(state, { recursive: true, mode: 0o700 });
    if (process.getuid?.() === 0) await chown(state, 1000, 1000);
    const c = new GenericContainer(image)
      .withBindMounts([
        { source: credentials.hostDir, target: CREDENTIALS_DIR, mode: 'ro' },
        { source: state, target: STATE_DIR, mode: 'rw' },
      ])
      .withEnvironment({
        ...credentials.env,
        ALLOT_NODE_ID: h.nodeId,
        ALLOT_SIMULATED_HOST: `cores=${h.cores},memoryMiB=${h.memoryMiB}`,
        ALLOT_CPU_OVERCOMMIT: String(h.cpuOvercommit),
        ALLOT_MEMORY_OVERCOMMIT: String(h.memoryOvercommit),
        ALLOT_JETSTREAM_REPLICAS: '3',
        ALLOT_HEARTBEAT_MS: String(HEARTBEAT_MS),
        ALLOT_USAGE_PUBLISH_MIN_INTERVAL_MS: '50',
        ALLOT_LOG_LEVEL: 'info',
      })
      .withWaitStrategy(Wait.forLogMessage(/"msg":"agent ready"/));
    await this.#run(h.nodeId, 'agent', c, image);
  }

  async #startCoordinator(id: string, image = this.#images.coordinator): Promise<void> {
    const credentials = await this.#security.mountIdentity(this.#runDir, 'coordinator', id, this.natsUrls);
    const c = new GenericContainer(image)
      .withBindMounts([{ source: credentials.hostDir, target: CREDENTIALS_DIR, mode: 'ro' }])
      .withEnvironment({
        ...credentials.env,
        ALLOT_COORDINATOR_ID: id,
        ALLOT_REPLICAS: '3',
        ALLOT_SUSPECT_AFTER_MS: String(SUSPECT_AFTER_MS),
        ALLOT_LOST_AFTER_MS: String(LOST_AFTER_MS),
        ALLOT_AGENT_TIMEOUT_MS: '2000',
        ALLOT_LOG_LEVEL: 'info',
      })
      .withCopyContentToContainer([{ content: JSON.stringify(COORDINATOR_CONFIG), target: COORDINATOR_CONFIG_PATH, mode: 0o644 }])
      .withCommand(['--config', COORDINATOR_CONFIG_PATH])
      .withWaitStrategy(Wait.forLogMessage(/"msg":"coordinator ready"/));
    await this.#run(id, 'coordinator', c, image);
  }

  member(short: string): Member {
    const m = this.members.get(short);
    if (m === undefined) throw new Error(`no member ${short}`);
    return m;
  }

  agents(): string[] {
    return HOSTS.map((h) => h.nodeId);
  }

  all(): string[] {
    return [...NATS, ...COORDINATORS, ...HOSTS.map((h) => h.nodeId)];
  }

  /** Per healed member: ms from its heal until the coordinators' view showed it ready again (6 answers in a row). */
  readonly recoveries: { member: string; ms: number | undefined }[] = [];
  readonly #recoveryWatches: Promise<void>[] = [];

  /** Starts timing, in the background, how long after now the given agents are back `ready` in the view. */
  noteHeal(...nodeIds: string[]): void {
    const from = Date.now();
    for (const nodeId of nodeIds) {
      this.#recoveryWatches.push(
        (async () => {
          let streak = 0;
          let streakStart = 0;
          while (Date.now() - from < 60_000) {
            const askedAt = Date.now();
            const r = await this.sched('nodes', {}, 2_000);
            const ready = r.ok && r.value.nodes.some((n) => n.nodeId === nodeId && n.liveness === 'ready' && n.lastSeen >= from);
            if (ready) {
              if (streak === 0) streakStart = askedAt;
              streak += 1;
              if (streak >= 6) {
                this.recoveries.push({ member: nodeId, ms: streakStart - from });
                return;
              }
            } else streak = 0;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          this.recoveries.push({ member: nodeId, ms: undefined });
        })(),
      );
    }
  }

  async recoveriesDone(): Promise<void> {
    await Promise.all(this.#recoveryWatches);
  }

  // ---------- faults ----------

  async kill(short: string): Promise<void> {
    this.#intendedExits.set(short, (this.#intendedExits.get(short) ?? 0) + 1);
    this.killed.add(short);
    await this.#docker.getContainer(this.member(short).id).kill({ signal: 'SIGKILL' });
  }

  /** Starts a stopped or killed member again (same container: same state dir, same JetStream store). */
  async restart(short: string): Promise<void> {
    await this.#docker.getContainer(this.member(short).id).start();
  }

  async pause(short: string): Promise<void> {
    // The cgroup v1 freezer sometimes gives up while a task is in the kernel (an fsync, say): runc answers "unable to
    // freeze". That is the engine's flake, not a fault of the system under test: try again a few times.
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#docker.getContainer(this.member(short).id).pause();
        return;
      } catch (e) {
        if (attempt >= 5 || !/unable to freeze/i.test((e as Error).message)) throw e;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  async unpause(short: string): Promise<void> {
    await this.#docker.getContainer(this.member(short).id).unpause();
  }

  async disconnect(short: string): Promise<void> {
    await this.#docker.getNetwork(this.network).disconnect({ Container: this.member(short).id, Force: true });
  }

  async reconnect(short: string): Promise<void> {
    await this.#docker.getNetwork(this.network).connect({ Container: this.member(short).id });
  }

  /** SIGTERM, then wait for the exit (the agent closes its ledger: flush + sync). */
  async stopGracefully(short: string): Promise<number> {
    this.#intendedExits.set(short, (this.#intendedExits.get(short) ?? 0) + 1);
    const c = this.#docker.getContainer(this.member(short).id);
    await c.stop({ t: 15 }).catch((e: unknown) => {
      if (!/not running|already stopped|304/i.test(String(e))) throw e;
    });
    const info = await c.inspect();
    return info.State.ExitCode;
  }

  /**
   * A rolling upgrade's step for one agent or coordinator: graceful stop (SIGTERM, as for a restart), then a new
   * container from `to`'s image in its place, with the same identity and, for an agent, the same state directory.
   * Resolves once the new process said it is ready (its log line); serving is waitServing's to check.
   */
  async upgrade(short: string, to: AppImages): Promise<number> {
    const old = this.member(short);
    if (old.kind === 'nats') throw new Error(`chaos: ${short} is a NATS server, not an allot process`);
    const code = await this.stopGracefully(short);
    this.#retiredLogs.push({ member: short, lines: await containerLogLines(this.#docker, old.id) });
    await this.#docker.getContainer(old.id).remove({ v: true });
    this.members.delete(short);
    const host = HOSTS.find((h) => h.nodeId === short);
    if (host !== undefined) await this.#startAgent(host, to.agent);
    else await this.#startCoordinator(short, to.coordinator);
    return code;
  }

  /**
   * Waits until `short` serves again: a coordinator answers the services ping; an agent answers `health` to the
   * auditor and the coordinators' view shows it ready, heard from since `since`, three answers in a row.
   */
  async waitServing(short: string, since: number, timeoutMs = 60_000): Promise<void> {
    const m = this.member(short);
    let streak = 0;
    await waitFor(
      async () => {
        if (m.kind === 'coordinator') return (await this.servingCoordinators(500)).includes(short);
        const health = await this.agent(short, 'health', {}, 1_000);
        const view = await this.sched('nodes', {}, 2_000);
        const ready =
          health.ok && view.ok && view.value.nodes.some((n) => n.nodeId === short && n.liveness === 'ready' && n.lastSeen >= since);
        streak = ready ? streak + 1 : 0;
        return streak >= 3;
      },
      { timeoutMs, intervalMs: 100, message: `${short} serving again` },
    );
  }

  /** Every agent and coordinator answering the services ping within `waitMs`, with the release each announces. */
  async servicesSeen(waitMs = 1_000): Promise<ServiceSeen[]> {
    const ping = async (service: string): Promise<ServiceSeen[]> => {
      const seen: ServiceSeen[] = [];
      try {
        const replies = await this.nc.requestMany(`$SRV.PING.${service}`, new Uint8Array(0), { maxWait: waitMs, strategy: 'timer' });
        for await (const m of replies) {
          const info = m.json() as { version?: string; metadata?: Record<string, string> };
          const member = info.metadata?.['nodeId'] ?? info.metadata?.['coordinatorId'];
          if (member !== undefined) seen.push({ member, version: info.version ?? '?' });
        }
      } catch {
        // nobody answered this round
      }
      return seen;
    };
    const seen = (await Promise.all([ping(AGENT_SERVICE_NAME), ping(COORDINATOR_SERVICE_NAME)])).flat();
    return seen.sort((a, b) => a.member.localeCompare(b.member));
  }

  // ---------- observation ----------

  async #poll(): Promise<void> {
    try {
      const listed = await this.#docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${CHAOS_LABEL}=${this.runId}`] }) });
      for (const info of listed) {
        const short = info.Labels['allot.chaos.member'];
        if (short === undefined) continue;
        const prev = this.#lastStatus.get(short);
        this.#lastStatus.set(short, info.State);
        if (info.State === 'exited' && prev !== 'exited') {
          // A kill restarted at once may be missed by the poll; an exit seen is expected while it does not
          // outnumber the exits the scenario caused.
          const seen = (this.#seenExits.get(short) ?? 0) + 1;
          this.#seenExits.set(short, seen);
          this.exits.push({
            member: short,
            at: Date.now(),
            status: info.Status,
            exitCode: exitCodeOf(info.Status),
            expected: seen <= (this.#intendedExits.get(short) ?? 0),
          });
        }
      }
    } catch {
      // the engine is busy (a fault in progress): the next poll sees it
    }
  }

  /** Containers that exited without the scenario taking them down, and log lines that say a process crashed. */
  async crashes(): Promise<string[]> {
    await this.#poll();
    const found = this.exits.filter((e) => !e.expected).map((e) => `${e.member} exited (${e.status}) without a fault taking it down`);
    const logs = [...this.#retiredLogs];
    for (const m of this.members.values()) {
      const info = await this.#docker.getContainer(m.id).inspect();
      if (info.RestartCount > 0) found.push(`${m.short} restarted ${info.RestartCount} times by the engine`);
      if (info.State.OOMKilled) found.push(`${m.short} was OOM-killed`);
      if (m.kind !== 'nats') logs.push({ member: m.short, lines: await containerLogLines(this.#docker, m.id) });
    }
    for (const { member, lines } of logs)
      for (const line of lines) {
        // A stack frame of the sources (.ts) or of the release bundle (the module the executable loads from itself,
        // file:///usr/bin/allot-*, or from a data: URL in earlier builds), or Node's last words.
        if (
          /uncaught|unhandled/i.test(line) ||
          /"level":60\b/.test(line) ||
          /^\s*at .*(\.ts|data:text\/javascript[^)]*|\/usr\/bin\/allot-\w+):\d+/.test(line) ||
          /^Node\.js v\d+/.test(line)
        ) {
          found.push(`${member}: ${line.slice(0, 300)}`);
        }
      }
    return found;
  }

  async logs(short: string): Promise<string[]> {
    return containerLogLines(this.#docker, this.member(short).id);
  }

  /** A coordinator request as the identity whose role it is: the body's tenant for tenant verbs, else operator or reader. */
  sched<V extends SchedVerb>(verb: V, payload: unknown, timeoutMs = 5_000): Promise<Result<SchedReply<V>>> {
    const nc = isTenantVerb(verb)
      ? this.tenant(tenantOfBody(verb, payload) ?? 'unnamed')
      : (OPERATOR_VERBS as readonly string[]).includes(verb)
        ? this.#operator
        : this.#reader;
    return requestTyped(nc, schedSubjectFor(verb, payload) ?? schedSubject(verb, 'unnamed'), payload, SCHED_ENDPOINTS[verb].reply, {
      timeoutMs,
    }) as Promise<Result<SchedReply<V>>>;
  }

  agent<V extends AgentVerb>(nodeId: string, verb: V, payload: unknown, timeoutMs = 5_000): Promise<Result<AgentReplyOf<V>>> {
    return requestTyped(this.nc, agentSubject(nodeId, verb), payload, AGENT_ENDPOINTS[verb].reply, { timeoutMs }) as Promise<
      Result<AgentReplyOf<V>>
    >;
  }

  /** Every allocation of a node with the given status, page by page (`after` = the reply's `next`). */
  async listAllocations(nodeId: string, status: 'live' | 'all' = 'live'): Promise<Result<Allocation[]>> {
    const all: Allocation[] = [];
    let after: number | undefined;
    for (;;) {
      const page = await this.agent(nodeId, 'allocations', { status, limit: LIST_PAGE_SIZE, ...(after === undefined ? {} : { after }) });
      if (!page.ok) return page;
      all.push(...page.value.allocations);
      if (!page.value.truncated) return ok(all);
      const next = page.value.next;
      if (next === undefined || (after !== undefined && next <= after))
        return err('internal', `${nodeId}: a truncated page without a cursor that moves (after ${after}, next ${next})`);
      after = next;
    }
  }

  /** Coordinators whose containers are running now. */
  async runningCoordinators(): Promise<string[]> {
    const running: string[] = [];
    for (const id of COORDINATORS) if ((await this.#docker.getContainer(this.member(id).id).inspect()).State.Running) running.push(id);
    return running;
  }

  /** Coordinator ids answering the NATS services ping ($SRV.PING.allot-coordinator) within `waitMs`. */
  async servingCoordinators(waitMs = 1_000): Promise<string[]> {
    const ids = new Set<string>();
    try {
      const replies = await this.nc.requestMany(`$SRV.PING.${COORDINATOR_SERVICE_NAME}`, new Uint8Array(0), {
        maxWait: waitMs,
        strategy: 'timer',
      });
      for await (const m of replies) {
        const id = (m.json() as { metadata?: Record<string, string> }).metadata?.['coordinatorId'];
        if (id !== undefined) ids.add(id);
      }
    } catch {
      // No responders, or the connection is between servers: nobody counted this round.
    }
    return [...ids].sort();
  }

  /** Waits until every agent answers health and the scheduler API lists every node ready, six answers in a row. */
  async waitAllReady(timeoutMs: number): Promise<void> {
    let agreeing = 0;
    await waitFor(
      async () => {
        const r = await this.sched('nodes', {}, 2_000);
        const ok = r.ok && this.agents().every((id) => r.value.nodes.some((n) => n.nodeId === id && n.liveness === 'ready'));
        agreeing = ok ? agreeing + 1 : 0;
        return agreeing >= 6;
      },
      { timeoutMs, intervalMs: 100, message: 'every agent ready in the coordinators view' },
    );
  }

  /** Copies an agent's state dir (its host directory, bind-mounted) into `dest`; the agent should be stopped. */
  async copyStateDir(nodeId: string, dest: string): Promise<void> {
    await mkdir(dest, { recursive: true });
    await cp(this.stateDir(nodeId), dest, { recursive: true });
  }

  async close(): Promise<void> {
    if (this.#monitor !== undefined) clearInterval(this.#monitor);
    for (const nc of [this.nc, this.#operator, this.#reader, ...this.#tenants.values()]) {
      if (nc !== undefined && !nc.isClosed()) await nc.close().catch(() => undefined);
    }
  }
}
