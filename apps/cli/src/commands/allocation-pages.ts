import { err, type Result } from '@allot/core';
import type { ClusterAllocationsReply } from '@allot/protocol';
import type { Session } from '../session.ts';

/**
 * `allot allocations` pages: the coordinator answers one page and a `next` cursor. This wraps the session so the
 * command's one `allocations` call either says where the next page starts (on stderr: the table stays clean) or, with
 * --all, follows the cursors to the end and answers every page as one reply. Nodes that did not answer are named.
 */
export interface PagingOptions {
  readonly all: boolean;
  /** Lines for stderr: the next cursor, the nodes left out. */
  readonly note: (line: string) => void;
}

export function pagedAllocations(session: Session, opts: PagingOptions): Session {
  const callPage = (payload: unknown) => session.call('allocations', payload);
  const noteFailed = (r: ClusterAllocationsReply) => {
    for (const f of r.nodesFailed ?? []) opts.note(`not listed: ${f.nodeId}: ${f.error}`);
  };
  const walk = async (payload: unknown): Promise<Result<ClusterAllocationsReply>> => {
    const base = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
    const all: ClusterAllocationsReply['allocations'] = [];
    const failed: NonNullable<ClusterAllocationsReply['nodesFailed']> = [];
    const seen = new Set<string>();
    let cursor = base['cursor'] as string | undefined;
    for (;;) {
      const page = await callPage(cursor === undefined ? base : { ...base, cursor });
      if (!page.ok) return page;
      all.push(...page.value.allocations);
      failed.push(...(page.value.nodesFailed ?? []));
      if (page.value.next === undefined) break;
      // A cursor seen before would loop forever (a broken or hostile coordinator).
      if (seen.has(page.value.next))
        return err('internal', 'allocations: the coordinator answered a cursor it had answered before', { cursor: page.value.next });
      seen.add(page.value.next);
      cursor = page.value.next;
    }
    const merged: ClusterAllocationsReply = { allocations: all, ...(failed.length === 0 ? {} : { nodesFailed: failed }) };
    noteFailed(merged);
    return { ok: true, value: merged };
  };
  const call = async (verb: string, payload: unknown): Promise<Result<unknown>> => {
    if (verb !== 'allocations') return session.call(verb as 'allocations', payload);
    if (opts.all) return walk(payload);
    const page = await callPage(payload);
    if (page.ok) {
      noteFailed(page.value);
      if (page.value.next !== undefined) opts.note(`more: --cursor ${page.value.next} (or --all)`);
    }
    return page;
  };
  return { nc: session.nc, close: () => session.close(), call: call as Session['call'] };
}
