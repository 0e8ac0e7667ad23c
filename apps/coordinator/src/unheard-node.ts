import type { NodeLeaseSource } from './view.ts';

/** How soon a client may retry a resize or move of a node this coordinator has not heard from (it reports every few s). */
export const UNHEARD_RETRY_MS = 1_000;

/**
 * Whether a node this coordinator's view has not heard from is known to exist anyway: it holds a live node lease (KV
 * allot_nodes, renewed within the lease's TTL and not deleted) or placements count on it (the tenants' usage records).
 * A coordinator rebuilds its view from one report per node before it serves, but the rebuild may time out and a
 * node's report may be slow to come (a coordinator just started, an agent just restarted): an allocation there is
 * then `unavailable` to a resize or a move (retry), never `not_found`, which only a node nobody knows gets.
 */
export function knownUnheard(
  d: { readonly leases?: NodeLeaseSource; readonly countingOn: (nodeId: string) => number; readonly clock: { monotonic(): number } },
  nodeId: string,
): boolean {
  const lease = d.leases?.seen(nodeId);
  if (d.leases !== undefined && lease !== undefined && !lease.deleted && d.clock.monotonic() - lease.at < d.leases.ttlMs) return true;
  return d.countingOn(nodeId) > 0;
}
