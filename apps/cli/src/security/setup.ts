import { err, ok, type Result } from '@allot/core';
import { KV_NODES, KV_PLACEMENTS, NODE_LEASE_TTL_MS } from '@allot/protocol';
import { ensureKv, ensureStreams } from '@allot/nats';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

/**
 * The bucket settings the agents and coordinators open their buckets with: made here with exactly those, so that the
 * processes, which may not create or change streams when secured, find nothing to change.
 * allot_nodes: apps/agent/src/agent.ts (NODE_LEASE_TTL_MS 15 s); allot_placements: apps/coordinator/src/coordinator.ts.
 */
// denyRollup: an agent may write its own lease, and a `Nats-Rollup: all` header on it would erase every node's.
const NODES_BUCKET = { history: 1, ttlMs: NODE_LEASE_TTL_MS, denyRollup: true } as const;
const PLACEMENTS_BUCKET = { history: 1, allowAtomic: true, allowMsgTtl: true, expiryMarkerTtlMs: 60 * 60_000 } as const;

/**
 * Creates (or brings to the managed settings) the usage and events streams and the two KV buckets: a deploy-time step
 * run with administrative credentials, as agents and coordinators of a secured deployment have no right to.
 */
export async function setupStorage(nc: NatsConnection, replicas: number): Promise<Result<string[]>> {
  let jsm;
  try {
    jsm = await jetstreamManager(nc);
  } catch (e) {
    return err('unavailable', `JetStream is not available: ${(e as Error).message}`);
  }
  const streams = await ensureStreams(jsm, { replicas });
  if (!streams.ok) return streams;
  const js = jetstream(nc);
  const nodes = await ensureKv(js, KV_NODES, { ...NODES_BUCKET, replicas });
  if (!nodes.ok) return nodes;
  const placements = await ensureKv(js, KV_PLACEMENTS, { ...PLACEMENTS_BUCKET, replicas });
  if (!placements.ok) return placements;
  return ok([...streams.value.map((s) => s.config.name), `KV_${KV_NODES}`, `KV_${KV_PLACEMENTS}`]);
}
