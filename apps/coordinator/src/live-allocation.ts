import { err, ok, type Allocation, type Result } from '@allot/core';
import type { AgentCaller } from './agents.ts';
import { UNHEARD_RETRY_MS } from './unheard-node.ts';

export interface LiveAllocationDeps {
  readonly agents: AgentCaller;
  /** Whether the view knows the node (an id naming an unknown node is not_found without asking anyone). */
  readonly knowsNode: (nodeId: string) => boolean;
  /** A node the view has not heard from that is known to exist (unheard-node.ts): `unavailable`, not `not_found`. */
  readonly knownUnheard?: (nodeId: string) => boolean;
  readonly agentTimeoutMs?: number;
}

/**
 * The live allocation `allocationId` (`<nodeId>:<counter>`) of `tenantId`, read from its node's agent with one
 * one-item page, or not_found (another tenant's is not_found too). Resize and move both start from it.
 */
export async function liveAllocation(d: LiveAllocationDeps, allocationId: string, tenantId: string): Promise<Result<Allocation>> {
  const at = allocationId.lastIndexOf(':');
  const nodeId = allocationId.slice(0, Math.max(at, 0));
  const counter = Number(allocationId.slice(at + 1));
  const notFound = err('not_found', `tenant ${tenantId} has no live allocation ${allocationId}`, { allocationId, tenantId });
  if (nodeId === '' || !Number.isSafeInteger(counter) || counter < 1) return notFound;
  if (!d.knowsNode(nodeId)) {
    if (d.knownUnheard?.(nodeId) !== true) return notFound;
    return err('unavailable', `node ${nodeId} has not reported to this coordinator yet; retry`, {
      allocationId,
      nodeId,
      reason: 'node_unheard',
      retryAfterMs: UNHEARD_RETRY_MS,
    });
  }
  const page = await d.agents.call(
    nodeId,
    'allocations',
    { status: 'live', tenantId, after: counter - 1, limit: 1 },
    d.agentTimeoutMs === undefined ? {} : { timeoutMs: d.agentTimeoutMs },
  );
  if (!page.ok) return page;
  const found = page.value.allocations[0];
  return found?.id === allocationId ? ok(found) : notFound;
}
