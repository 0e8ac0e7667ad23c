import { type AllotEvent, CLUSTER_EVENT_NODE, eventSubject, KV_NODES, NODE_LEASE_RENEW_MS, NODE_LEASE_TTL_MS } from '@allot/protocol';
import { publishDurable } from '@allot/nats';
import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { DroppedInput } from './dropped-input.ts';
import { followLatest, type LatestFeed } from './latest-feed.ts';
import type { JetStreamClient } from './nats-deps.ts';
import type { CoordinatorClock } from './store/clock.ts';
import { MAX_VIEW_NODES, type ClusterView, type LeaseSeen, type LivenessTransition, type NodeLeaseSource } from './view.ts';

/**
 * The dedupe id of a liveness event: the same node, kind and last snapshot give the same id on every coordinator, so
 * JetStream stores the event once however many coordinators notice it (within the stream's duplicate window).
 */
export function livenessMsgId(t: LivenessTransition): string {
  return `${t.nodeId}:${t.kind}:${t.bootId}:${t.snapshotSeq}`;
}

/** Publishes a liveness change to allot.events.cluster.<kind>; failures are logged (the view is already right). */
export async function publishTransition(js: JetStreamClient, t: LivenessTransition, logger: Logger): Promise<void> {
  const event: AllotEvent = { kind: t.kind, nodeId: t.nodeId, at: t.at, reason: `${t.from} -> ${t.to}; silent for ${t.silentMs} ms` };
  const ack = await publishDurable(js, eventSubject(CLUSTER_EVENT_NODE, t.kind), event, { msgId: livenessMsgId(t), timeoutMs: 5_000 });
  if (!ack.ok) logger.warn({ node: t.nodeId, kind: t.kind, error: ack.error.message }, 'liveness event not published');
}

/** Decommissioned nodes are looked at every this many sweeps (countingOn reads every tenant's usage record). */
const REMOVABLE_EVERY_SWEEPS = 10;

/**
 * Sweeps the view every `everyMs` (silence is judged on the view's monotonic clock) and reports every transition;
 * every REMOVABLE_EVERY_SWEEPS sweeps, the decommissioned nodes of which nothing remains go to `onRemovable` (which
 * marks them removed in KV). Returns the stop function.
 */
export function startLivenessSweep(
  view: ClusterView,
  opts: {
    everyMs: number;
    onTransition: (t: LivenessTransition) => void;
    onRemovable?: (nodeIds: string[]) => void;
    dropped?: DroppedInput;
  },
): () => void {
  let sweeps = 0;
  const sweep = () => {
    for (const t of view.sweep()) opts.onTransition(t);
    if (opts.onRemovable === undefined || ++sweeps % REMOVABLE_EVERY_SWEEPS !== 0) return;
    const removable = view.removable();
    if (removable.length > 0) opts.onRemovable(removable);
  };
  // A throw in a timer callback would take the coordinator down: counted and dropped instead (next sweep retries).
  const timer = setInterval(() => (opts.dropped === undefined ? sweep() : opts.dropped.guard('liveness_sweep', sweep)), opts.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * A lease names its holder in a few hundred bytes (identity, boot, host name, pid, since). An agent may write anything
 * up to NATS's payload limit to its own key, and every coordinator would parse and hold it: larger values are dropped.
 */
const MAX_LEASE_BYTES = 1_024;

/** What a lease's value must hold to count: the holder's boot (the rest names it for operators). */
function holderBoot(value: Uint8Array): string | undefined {
  try {
    const h = JSON.parse(new TextDecoder().decode(value)) as unknown;
    if (typeof h !== 'object' || h === null) return undefined;
    const { identity, bootId } = h as { identity?: unknown; bootId?: unknown };
    if (typeof identity !== 'string' || typeof bootId !== 'string' || bootId === '' || bootId.length > 64) return undefined;
    return bootId;
  } catch {
    return undefined;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface Held extends LeaseSeen {
  /** The value last stored, so a renewal (the same bytes again) is not decoded again. */
  readonly value: Uint8Array | undefined;
}

/**
 * The node leases (KV allot_nodes, apps/agent/src/node-lease.ts) as this coordinator receives them: each key's last
 * renewal or deletion on its own monotonic clock. The view counts a renewal by the boot whose reports it holds as that
 * node's liveness (the kubelet's Lease, Nomad's heartbeat TTL): a node's status may come seldom while its agent renews
 * every 5 s. A value that is not a lease (bad JSON, wrong shape) is dropped and counted, never decoded into liveness:
 * the key keeps what was seen before, which expires as any unrenewed lease does. Bounded at `maxKeys` ids.
 */
export class NodeLeaseTable implements NodeLeaseSource {
  readonly ttlMs = NODE_LEASE_TTL_MS;
  readonly renewEveryMs = NODE_LEASE_RENEW_MS;
  readonly #leases = new Map<string, Held>();
  readonly #clock: CoordinatorClock;
  readonly #dropped: DroppedInput | undefined;
  readonly #maxKeys: number;
  #current = false;
  /** When the feed went blind (heartbeats missed), until its next message. */
  #blindSince: number | undefined;

  constructor(clock: CoordinatorClock, opts: { dropped?: DroppedInput; maxKeys?: number } = {}) {
    this.#clock = clock;
    this.#dropped = opts.dropped;
    this.#maxKeys = opts.maxKeys ?? 2 * MAX_VIEW_NODES;
  }

  /** Node ids whose lease (or its deletion) was seen. */
  get size(): number {
    return this.#leases.size;
  }

  seen(nodeId: string): LeaseSeen | undefined {
    return this.#leases.get(nodeId);
  }

  current(): boolean {
    return this.#current;
  }

  /** The leases stored at start have all been taken in: the view may judge by them. */
  caughtUp(): void {
    this.#current = true;
  }

  /**
   * Renewals are known up to now, or up to when the feed went blind: for at most one TTL, so a coordinator cut off from
   * the leases for longer judges by its reports again rather than keep every node alive on what it last saw.
   */
  asOf(): number {
    const now = this.#clock.monotonic();
    const since = this.#blindSince;
    return since === undefined || now - since >= this.ttlMs ? now : since;
  }

  /** The feed missed its heartbeats (a server went away): what it last delivered is all that is known. */
  blind(): void {
    this.#blindSince ??= this.#clock.monotonic();
  }

  /** The feed delivers again. */
  sighted(): void {
    this.#blindSince = undefined;
  }

  /** A lease written (created or renewed) `ageMs` ago (0: now; a replayed one on a cold start is older). */
  renewed(nodeId: string, value: Uint8Array, ageMs = 0): void {
    const at = this.#clock.monotonic() - Math.max(0, ageMs);
    const held = this.#leases.get(nodeId);
    if (held?.value !== undefined && !held.deleted && sameBytes(held.value, value)) {
      this.#leases.set(nodeId, { ...held, at: Math.max(held.at, at) });
      return;
    }
    if (value.length > MAX_LEASE_BYTES) {
      this.#dropped?.drop('node_lease', 'too_large', { nodeId, bytes: value.length });
      return;
    }
    const bootId = holderBoot(value);
    if (bootId === undefined) {
      this.#dropped?.drop('node_lease', 'invalid', { nodeId, bytes: value.length });
      return;
    }
    if (!this.#room(nodeId)) return;
    this.#leases.set(nodeId, { bootId, at, deleted: false, value: value.slice() });
  }

  /** A lease deleted (its agent stopped cleanly) or purged `ageMs` ago: it ends the lease of whoever held it. */
  deleted(nodeId: string, ageMs = 0): void {
    if (!this.#room(nodeId)) return;
    const at = this.#clock.monotonic() - Math.max(0, ageMs);
    this.#leases.set(nodeId, { bootId: this.#leases.get(nodeId)?.bootId, at, deleted: true, value: undefined });
  }

  /** Room for one more id: leases past their TTL are forgotten when the table is full; else the new id is dropped. */
  #room(nodeId: string): boolean {
    if (this.#leases.size < this.#maxKeys || this.#leases.has(nodeId)) return true;
    const expired = this.#clock.monotonic() - this.ttlMs;
    for (const [id, held] of this.#leases) if (held.at < expired) this.#leases.delete(id);
    if (this.#leases.size < this.#maxKeys) return true;
    this.#dropped?.drop('node_lease', 'table_full', { nodeId });
    return false;
  }
}

/**
 * Follows KV allot_nodes into `table` from the last message per key, then live (`followLatest`, as the usage feed; what
 * a KV watch does), a replayed lease aged by server times as a replayed snapshot is. With 10,000 agents this is 2,000
 * small messages a second, each a map write (a renewal stores the same bytes again, which are compared, not decoded).
 */
export async function followNodeLeases(
  js: JetStreamClient,
  table: NodeLeaseTable,
  opts: { logger: Logger; dropped?: DroppedInput },
): Promise<LatestFeed> {
  const dropped = opts.dropped ?? new DroppedInput(opts.logger);
  const prefix = `$KV.${KV_NODES}.`;
  const onMessage = (m: JsMsg, age: () => number) => {
    const nodeId = m.subject.startsWith(prefix) ? m.subject.slice(prefix.length) : '';
    if (nodeId === '' || nodeId.length > 128) {
      dropped.drop('node_lease', 'bad_key', { subject: m.subject.slice(0, 200) });
      return;
    }
    const ageMs = age();
    const op = m.headers?.get('KV-Operation');
    if (op === 'DEL' || op === 'PURGE') table.deleted(nodeId, ageMs);
    else table.renewed(nodeId, m.data, ageMs);
  };
  return followLatest(js, `KV_${KV_NODES}`, {
    onMessage,
    onCaughtUp: () => table.caughtUp(),
    onDelivered: () => table.sighted(),
    // Missed heartbeats: the renewals are not arriving, which is not the agents' doing (the ordered consumer recreates
    // itself elsewhere meanwhile); the view holds each lease as it was until the feed delivers again.
    onHeartbeatsMissed: () => table.blind(),
    guard: (handle) => dropped.guard('node_lease', handle),
  });
}

/**
 * Follows the leases from now on, whenever the bucket can be followed: it is made by the first agent (or `allot security
 * setup`), so a coordinator that starts first retries every `retryMs` instead of waiting; the table stays not current
 * (no lease judged) until then. `started` resolves once the stored leases are taken in, or the first try failed.
 */
export function startNodeLeaseFeed(
  js: JetStreamClient,
  table: NodeLeaseTable,
  opts: { logger: Logger; dropped?: DroppedInput; retryMs?: number },
): { readonly started: Promise<void>; stop(): Promise<void> } {
  let feed: LatestFeed | undefined;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let resolveStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => (resolveStarted = resolve));
  const attempt = () => {
    followNodeLeases(js, table, opts).then(
      (f) => {
        if (stopped) return void f.stop();
        feed = f;
        void f.caughtUp.then(resolveStarted);
      },
      (e: unknown) => {
        resolveStarted();
        if (stopped) return;
        opts.logger.info({ err: (e as Error).message }, 'node leases not followed yet (no bucket, or JetStream away); retrying');
        timer = setTimeout(attempt, opts.retryMs ?? 2_000);
        timer.unref();
      },
    );
  };
  attempt();
  return {
    started,
    stop: async () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await feed?.stop();
    },
  };
}
