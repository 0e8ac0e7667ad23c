import { err, ok, type Allocation, type AllocationStatus, type Result } from '@allot/core';
import { MAX_ALLOCATIONS_PAGE } from '@allot/protocol';
import type { AgentCaller } from './agents.ts';

/**
 * One node's allocations through the paged `allocations` verb (finding 11: one reply for a node with more than ~2,300
 * allocations exceeded the NATS payload limit). Pages are asked one after another with the `after` cursor the agent
 * returns (`next`), in allocation-id-counter order, so a node's list is never one big reply.
 */

export interface AllocationFilter {
  readonly status?: AllocationStatus | 'live' | 'all';
  readonly tenantId?: string;
  /** Only the allocation made by this request id. */
  readonly requestId?: string;
}

export interface PageOptions {
  /** Allocations per page (at most MAX_ALLOCATIONS_PAGE). */
  readonly pageSize?: number;
  /** Stop after this many allocations (a listing for a human); absent: all of them. */
  readonly max?: number;
  readonly timeoutMs?: number;
}

/** Calls `onPage` with each page of the node's allocations; an error of any page ends the walk with that error. */
export async function forEachAllocationPage(
  agents: AgentCaller,
  nodeId: string,
  filter: AllocationFilter,
  onPage: (page: readonly Allocation[]) => void | Promise<void>,
  opts: PageOptions = {},
): Promise<Result<{ count: number; truncated: boolean }>> {
  const limit = Math.min(Math.max(1, opts.pageSize ?? 500), MAX_ALLOCATIONS_PAGE);
  const max = opts.max ?? Number.POSITIVE_INFINITY;
  let after: number | undefined;
  let count = 0;
  for (;;) {
    const page = await agents.call(
      nodeId,
      'allocations',
      {
        status: filter.status ?? 'live',
        limit: Math.min(limit, Math.max(1, max - count)),
        ...(filter.tenantId === undefined ? {} : { tenantId: filter.tenantId }),
        ...(filter.requestId === undefined ? {} : { requestId: filter.requestId }),
        ...(after === undefined ? {} : { after }),
      },
      opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs },
    );
    if (!page.ok) return page;
    count += page.value.allocations.length;
    await onPage(page.value.allocations);
    if (!page.value.truncated) return ok({ count, truncated: false });
    if (count >= max) return ok({ count, truncated: true });
    const next = page.value.next;
    // A cursor that does not move would loop forever: a broken or hostile agent.
    if (next === undefined || (after !== undefined && next <= after))
      return err('internal', `node ${nodeId}: allocations page without a usable next cursor`, {
        nodeId,
        after: after ?? null,
        next: next ?? null,
      });
    after = next;
  }
}

/** Every allocation of the node matching the filter (up to opts.max), gathered page by page. */
export async function allAllocations(
  agents: AgentCaller,
  nodeId: string,
  filter: AllocationFilter,
  opts: PageOptions = {},
): Promise<Result<{ allocations: Allocation[]; truncated: boolean }>> {
  const all: Allocation[] = [];
  const walked = await forEachAllocationPage(agents, nodeId, filter, (page) => void all.push(...page), opts);
  if (!walked.ok) return walked;
  return ok({ allocations: all, truncated: walked.value.truncated });
}
