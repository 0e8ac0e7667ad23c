import type { FeedEvent } from './api.ts';
import { clock, coreList, el, mib } from './format.ts';

const KIND_CLASS: Record<string, string> = {
  allocated: 'ok',
  activated: 'ok',
  reserved: 'info',
  released: 'plain',
  expired: 'plain',
  refused: 'bad',
  preempted: 'warn',
  cordoned: 'warn',
  uncordoned: 'plain',
  limits_updated: 'info',
  node_lost: 'bad',
  node_suspect: 'warn',
  node_returned: 'ok',
  node_decommissioned: 'plain',
  node_recommissioned: 'info',
  node_refused: 'bad',
  agent_started: 'info',
  // A move's two halves (coordinator events; the reason names the source and the destination).
  move_started: 'info',
  move_confirmed: 'ok',
  move_aborted: 'plain',
};

/** Kinds too long for the pill, as people say them. */
const KIND_TEXT: Record<string, string> = {
  allocated: 'placed',
  node_decommissioned: 'decommission',
  node_recommissioned: 'recommission',
  node_refused: 'node refused',
};

/** The kind as people say it. */
function kindText(kind: string): string {
  return KIND_TEXT[kind] ?? kind.replace('_', ' ');
}

function line(e: FeedEvent): HTMLElement {
  const li = el('li', 'event');
  li.dataset['kind'] = e.kind;
  li.dataset['seq'] = String(e.seq);
  li.append(
    el('span', 'time', clock(e.at)),
    el('span', `pill ${KIND_CLASS[e.kind] ?? 'plain'}`, kindText(e.kind)),
    el('span', 'mono node', e.nodeId),
  );
  const parts: string[] = [];
  if (e.tenantId !== undefined) parts.push(e.tenantId);
  if (e.resources !== undefined) parts.push(`${e.resources.vcpus} vCPU · ${mib(e.resources.memoryMiB)}`);
  if (e.cpuset !== undefined && e.cpuset.length > 0) parts.push(`cores ${coreList(e.cpuset)}`);
  const what = el('span', 'what', parts.join(' · '));
  li.append(what);
  const why = e.error !== undefined ? `${e.error.code}: ${e.error.message}` : e.reason;
  if (why !== undefined) {
    const r = el('span', 'why', why);
    r.title = why;
    li.append(r);
  }
  if (e.requestId !== undefined) li.title = `request ${e.requestId}${e.allocationId === undefined ? '' : `\nallocation ${e.allocationId}`}`;
  return li;
}

/**
 * The event feed, newest first (at most 200 short lines, once per frame when events came). Lines are kept by their
 * sequence: new events are inserted and those past the last 200 removed, so a delta's few events cost a few elements,
 * not 200 lines rebuilt and laid out again (at 100 changes a second that was the page's largest cost).
 */
export function renderEvents(list: HTMLElement, count: HTMLElement, events: readonly FeedEvent[], dropped: number): void {
  const have = new Map<number, Element>();
  for (const li of [...list.children]) {
    const seq = (li as HTMLElement).dataset['seq'];
    if (seq === undefined) li.remove();
    else have.set(Number(seq), li);
  }
  const wanted = new Set(events.map((e) => e.seq));
  for (const [seq, li] of have) if (!wanted.has(seq)) li.remove();
  let cursor = list.firstElementChild;
  for (const e of events) {
    const li = have.get(e.seq) ?? line(e);
    if (li === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(li, cursor);
  }
  if (events.length === 0) list.append(el('li', 'muted', 'nothing yet: placements, releases, refusals and node changes show up here'));
  count.textContent = `${events.length} latest${dropped > 0 ? ` · ${dropped} skipped in bursts` : ''}`;
}
