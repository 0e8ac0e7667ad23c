import { err, NodeIdSchema, ok, type Allocation, type Result } from '@allot/core';
import type { AgentCaller } from './agents.ts';
import type { AllocationFilter } from './allocation-pages.ts';
import type { ClusterView } from './view.ts';

/**
 * A listing of allocations across nodes, one page at a time: nodes are walked in node-id order, and within a node in
 * allocation-id-counter order (the agent's own `after` cursor), so every allocation is listed once however the pages
 * are cut. The cursor is `{node, after}` sent as an opaque string: the next page starts at that node, above that
 * counter. A node that left the listing since (gone, not ready) is skipped: the walk resumes at the next id after it.
 */

/** Where the next page starts: this node, allocations whose id counter is above `after` (absent: all of them). */
export interface ListingCursor {
  readonly nodeId: string;
  readonly after?: number;
}

export function encodeCursor(c: ListingCursor): string {
  return Buffer.from(JSON.stringify(c.after === undefined ? { n: c.nodeId } : { n: c.nodeId, a: c.after })).toString('base64url');
}

/** Hostile input is a value: anything not made by encodeCursor is invalid_request. */
export function decodeCursor(text: string): Result<ListingCursor> {
  const bad = err('invalid_request', 'cursor: not a cursor this listing returned (pass the reply\'s "next" unchanged)', {
    field: 'cursor',
  });
  if (text.length > 200 || !/^[A-Za-z0-9_-]+$/.test(text)) return bad;
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return bad;
  }
  if (typeof raw !== 'object' || raw === null) return bad;
  const { n, a } = raw as { n?: unknown; a?: unknown };
  if (!NodeIdSchema.safeParse(n).success) return bad;
  if (a !== undefined && !(Number.isSafeInteger(a) && (a as number) >= 0)) return bad;
  return ok(a === undefined ? { nodeId: n as string } : { nodeId: n as string, after: a as number });
}

/** The nodes still to walk from the cursor, in order: those at or after its node id (sorted input). */
export function nodesFrom(sortedNodeIds: readonly string[], cursor: ListingCursor | undefined): string[] {
  if (cursor === undefined) return [...sortedNodeIds];
  return sortedNodeIds.filter((id) => id >= cursor.nodeId);
}

/**
 * The nodes a listing asks: the named node alone (whatever its liveness; not_found if it never reported), else the
 * ready nodes carrying every one of `labels` (the view knows them: the others are not asked), else every ready node.
 */
export function listingNodes(
  view: Pick<ClusterView, 'get' | 'nodes'>,
  q: { nodeId?: string | undefined; labels?: Record<string, string> | undefined },
): Result<string[]> {
  if (q.nodeId !== undefined)
    return view.get(q.nodeId) === undefined ? err('not_found', `node ${q.nodeId} has not reported`, { nodeId: q.nodeId }) : ok([q.nodeId]);
  return ok(view.nodes({ liveness: 'ready', ...(q.labels === undefined ? {} : { labels: q.labels }) }).map((n) => n.nodeId));
}

export interface ListingPage {
  readonly allocations: Allocation[];
  /** Absent: the listing is complete. */
  readonly next?: string;
  /** Nodes asked that did not answer; their allocations are not in this page (and the walk went past them). */
  readonly nodesFailed: { nodeId: string; error: string }[];
}

export interface ListingOptions {
  readonly limit: number;
  readonly cursor?: ListingCursor;
  readonly timeoutMs?: number;
  /** Nodes asked at once (first pages); later pages of one node are asked one after another. */
  readonly concurrency?: number;
}

function counterOf(allocationId: string): number {
  return Number(allocationId.slice(allocationId.lastIndexOf(':') + 1));
}

/**
 * One page of at most `limit` allocations from `nodeIds` (any order; walked sorted). Each window of nodes is asked at
 * once with the room left, then taken in order; a node's page that does not fit is cut and the cursor points inside it.
 */
export async function listAllocationsPage(
  agents: AgentCaller,
  nodeIds: readonly string[],
  filter: AllocationFilter,
  opts: ListingOptions,
): Promise<Result<ListingPage>> {
  const todo = nodesFrom([...nodeIds].sort(), opts.cursor);
  const window = Math.max(1, opts.concurrency ?? 8);
  const out: Allocation[] = [];
  const nodesFailed: { nodeId: string; error: string }[] = [];
  const call = (nodeId: string, limit: number, after: number | undefined) =>
    agents.call(
      nodeId,
      'allocations',
      {
        status: filter.status ?? 'live',
        limit,
        ...(filter.tenantId === undefined ? {} : { tenantId: filter.tenantId }),
        ...(filter.requestId === undefined ? {} : { requestId: filter.requestId }),
        ...(after === undefined ? {} : { after }),
      },
      opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs },
    );
  const startAfter = (nodeId: string) => (opts.cursor !== undefined && opts.cursor.nodeId === nodeId ? opts.cursor.after : undefined);

  for (let i = 0; i < todo.length; i += window) {
    const batch = todo.slice(i, i + window);
    const room = opts.limit - out.length;
    const firsts = await Promise.all(batch.map((id) => call(id, room, startAfter(id))));
    for (let j = 0; j < batch.length; j++) {
      const nodeId = batch[j] as string;
      let page = firsts[j] as Awaited<ReturnType<typeof call>>;
      let after = startAfter(nodeId);
      for (;;) {
        if (!page.ok) {
          nodesFailed.push({ nodeId, error: page.error.message });
          break;
        }
        const need = opts.limit - out.length;
        const taken = page.value.allocations.slice(0, need);
        out.push(...taken);
        const last = taken.at(-1);
        if (taken.length < page.value.allocations.length && last !== undefined)
          return ok({ allocations: out, next: encodeCursor({ nodeId, after: counterOf(last.id) }), nodesFailed });
        if (!page.value.truncated) break;
        const next = page.value.next;
        // A cursor that does not move would loop forever: a broken or hostile agent.
        if (next === undefined || (after !== undefined && next <= after)) {
          nodesFailed.push({ nodeId, error: 'allocations page without a usable next cursor' });
          break;
        }
        if (out.length >= opts.limit) return ok({ allocations: out, next: encodeCursor({ nodeId, after: next }), nodesFailed });
        after = next;
        page = await call(nodeId, opts.limit - out.length, after);
      }
      if (out.length >= opts.limit) {
        const following = todo[i + j + 1];
        return ok(
          following === undefined
            ? { allocations: out, nodesFailed }
            : { allocations: out, next: encodeCursor({ nodeId: following }), nodesFailed },
        );
      }
    }
  }
  return ok({ allocations: out, nodesFailed });
}
