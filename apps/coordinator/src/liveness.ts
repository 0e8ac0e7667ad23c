import { CLUSTER_EVENT_NODE, eventSubject, KV_NODES, type AllotEvent } from '@allot/protocol';
import { publishDurable } from '@allot/nats';
import { Kvm, type KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { DroppedInput } from './dropped-input.ts';
import type { JetStreamClient } from './nats-deps.ts';
import type { CoordinatorClock } from './store/clock.ts';
import type { ClusterView, LivenessTransition } from './view.ts';

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
 * The node leases (KV allot_nodes, apps/agent/src/node-lease.ts), read on demand for the nodes the view asks about:
 * those silent past lostAfterMs. A node is lost once its lease is gone too (expired 15 s after its agent's last
 * renewal, or released at a clean stop), as Nomad and the kubelet judge a node by its heartbeat lease. Each node is
 * read at most once per `refreshMs`; the answer is cached. Until the first one arrives, and while reads fail (no
 * bucket yet, JetStream away or slow), the answer is undefined: the view keeps the node suspect up to twice
 * lostAfterMs, then silence alone decides (a failed read once made a node lost 10 s before its lease expired).
 */
export class NodeLeases {
  readonly #read: (nodeId: string) => Promise<boolean | undefined>;
  readonly #clock: CoordinatorClock;
  readonly #refreshMs: number;
  readonly #known = new Map<string, { held: boolean | undefined; at: number }>();
  readonly #reading = new Set<string>();

  constructor(read: (nodeId: string) => Promise<boolean | undefined>, clock: CoordinatorClock, refreshMs = 1_000) {
    this.#read = read;
    this.#clock = clock;
    this.#refreshMs = refreshMs;
  }

  /** The last answer for the node (undefined: none yet); asks again when it is older than refreshMs. */
  held(nodeId: string): boolean | undefined {
    const known = this.#known.get(nodeId);
    if ((known === undefined || this.#clock.monotonic() - known.at >= this.#refreshMs) && !this.#reading.has(nodeId)) {
      this.#reading.add(nodeId);
      void this.#read(nodeId)
        .catch(() => undefined)
        .then((held) => this.#known.set(nodeId, { held, at: this.#clock.monotonic() }))
        .finally(() => this.#reading.delete(nodeId));
    }
    return known?.held;
  }
}

/** Reads a node's lease from KV allot_nodes: true while a lease is stored (any holder), false when none, undefined on error. */
export function natsLeaseReader(js: JetStreamClient): (nodeId: string) => Promise<boolean | undefined> {
  let kv: Promise<KV> | undefined;
  return async (nodeId) => {
    kv ??= new Kvm(js).open(KV_NODES);
    try {
      const entry = await (await kv).get(nodeId);
      return entry !== null && entry.operation === 'PUT';
    } catch {
      kv = undefined; // opened again next time: the bucket may not have existed yet
      return undefined;
    }
  };
}
