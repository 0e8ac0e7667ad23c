import { AllocationStatusSchema, err, NodeIdSchema, ok, RequestIdSchema, TenantIdSchema, type Result } from '@allot/core';
import { MAX_ALLOCATIONS_PAGE } from '@allot/protocol';
import type { AgentCaller } from '../agents.ts';
import { decodeCursor, listAllocationsPage, listingNodes, type ListingPage } from '../allocation-listing.ts';
import type { ClusterView } from '../view.ts';

/**
 * GET /api/allocations?tenant=&node=&label=k=v&status=&request=&cursor=&limit=: one page of the cluster's allocations,
 * the same listing as allot.op.allocations (allocation-listing.ts). `label` is repeatable; a node must carry all.
 */
export async function listAllocationsFromQuery(
  view: ClusterView,
  agents: AgentCaller,
  query: URLSearchParams,
  timeoutMs: number,
): Promise<Result<ListingPage>> {
  const bad = (field: string, message: string) => err('invalid_request', `${field}: ${message}`, { field });
  const tenant = query.get('tenant');
  if (tenant !== null && !TenantIdSchema.safeParse(tenant).success) return bad('tenant', 'letters, digits, "_" and "-" only');
  const request = query.get('request');
  if (request !== null && !RequestIdSchema.safeParse(request).success) return bad('request', 'not a request id');
  const node = query.get('node');
  if (node !== null && !NodeIdSchema.safeParse(node).success) return bad('node', 'letters, digits, "_" and "-" only');
  const status = query.get('status') ?? 'live';
  if (status !== 'live' && !AllocationStatusSchema.safeParse(status).success)
    return bad('status', `live or one of ${AllocationStatusSchema.options.join(', ')}`);
  const limitText = query.get('limit') ?? '500';
  const limit = /^\d{1,4}$/.test(limitText) ? Number(limitText) : 0;
  if (limit < 1 || limit > MAX_ALLOCATIONS_PAGE) return bad('limit', `1 to ${MAX_ALLOCATIONS_PAGE}`);
  const labels: Record<string, string> = {};
  for (const l of query.getAll('label')) {
    const i = l.indexOf('=');
    if (i <= 0) return bad('label', `key=value, not "${l}"`);
    labels[l.slice(0, i)] = l.slice(i + 1);
  }
  const cursorText = query.get('cursor');
  const cursor = cursorText === null ? undefined : decodeCursor(cursorText);
  if (cursor !== undefined && !cursor.ok) return cursor;
  const nodes = listingNodes(view, { nodeId: node ?? undefined, labels });
  if (!nodes.ok) return nodes;
  const filter = {
    status: status as 'live',
    ...(tenant === null ? {} : { tenantId: tenant }),
    ...(request === null ? {} : { requestId: request }),
  };
  const page = await listAllocationsPage(agents, nodes.value, filter, {
    limit,
    timeoutMs,
    ...(cursor === undefined ? {} : { cursor: cursor.value }),
  });
  return page.ok ? ok(page.value) : page;
}
