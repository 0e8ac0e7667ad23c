import { CLUSTER_EVENT_NODE, eventSubject, type AllotEvent } from '@allot/core';
import { publishDurable } from '@allot/nats';
import type { Logger } from 'pino';
import type { DroppedInput } from './dropped-input.ts';
import type { JetStreamClient } from './nats-deps.ts';
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
export function startLivenessSweep(view: ClusterView, opts: { everyMs: number; onTransition: (t: LivenessTransition) => void; onRemovable?: (nodeIds: string[]) => void; dropped?: DroppedInput }): () => void {
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
