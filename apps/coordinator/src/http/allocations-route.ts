import { AllocationStatusSchema, err, NodeIdSchema, RequestIdSchema, TenantIdSchema, type Result } from '@allot/core';
import { MAX_ALLOCATIONS_PAGE, type ClusterAllocationsReply } from '@allot/protocol';
import type { ClusterManager } from '../cluster-manager.ts';

/**
 * GET /api/allocations?tenant=&node=&label=k=v&status=&request=&cursor=&limit=: one page of the cluster's allocations,
 * the same listing as allot.op.allocations (ClusterManager.getAllocations). `label` is repeatable; a node must carry all.
 */
export async function listAllocationsFromQuery(
  manager: Pick<ClusterManager, 'getAllocations'>,
  query: URLSearchParams,
  timeoutMs: number,
): Promise<Result<ClusterAllocationsReply>> {
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
  const cursor = query.get('cursor');
  return manager.getAllocations({
    status: status as 'live',
    limit,
    timeoutMs,
    labels,
    ...(tenant === null ? {} : { tenantId: tenant }),
    ...(request === null ? {} : { requestId: request }),
    ...(node === null ? {} : { nodeId: node }),
    ...(cursor === null ? {} : { cursor }),
  });
}
