import { getJson, MovesResponseSchema, type MovesResponse } from './api.ts';
import { el } from './format.ts';

/** One move in flight: the source allocation on its node, the held destination, the tenant and the move's id. */
function line(m: MovesResponse['moves'][number]): HTMLElement {
  const li = el('li', 'event');
  li.dataset['state'] = m.state;
  const dest =
    m.destination.allocation === undefined
      ? m.destination.nodeId
      : `${m.destination.nodeId} (${m.destination.allocation.id} ${m.destination.allocation.status})`;
  // The event line's layout: pill, node, a short `what`, then the long `why` on its own line (both halves there).
  const halves = `${m.source.allocationId} → ${dest}`;
  const why = el('span', 'why', halves);
  why.title = halves;
  li.append(el('span', 'pill info', m.state), el('span', 'mono node', m.source.nodeId), el('span', 'what', m.tenantId), why);
  li.title = `move ${m.moveRequestId}\ndestination request ${m.destination.requestId}`;
  return li;
}

export function renderMoves(list: HTMLElement, count: HTMLElement, r: MovesResponse): void {
  list.replaceChildren(...r.moves.map(line));
  if (r.count === 0) list.append(el('li', 'muted', 'none: a move holds its destination here until it is confirmed or aborted'));
  count.textContent = r.count > r.moves.length ? `${r.moves.length} of ${r.count}` : `${r.count}`;
}

/** How long the coordinator answers /api/moves from one scan of the intents (CACHE_MS in moves-route.ts). */
const COORDINATOR_CACHE_MS = 2_000;

/**
 * Polls /api/moves every few seconds and redraws the list. `refresh()` (called when a move event arrives) polls at once
 * and again once the coordinator's cached scan has surely been redone, so a started, confirmed or aborted move shows
 * within about two seconds of its event rather than a whole polling period later.
 */
export function followMoves(list: HTMLElement, count: HTMLElement, everyMs = 3_000): { refresh(): void } {
  const poll = async () => {
    try {
      renderMoves(list, count, await getJson('/api/moves', MovesResponseSchema));
    } catch {
      count.textContent = 'unavailable';
    }
  };
  void poll();
  setInterval(() => void poll(), everyMs);
  let again: ReturnType<typeof setTimeout> | undefined;
  return {
    refresh() {
      void poll();
      // One follow-up per burst of move events: a burst restarts the wait instead of stacking polls.
      clearTimeout(again);
      again = setTimeout(() => void poll(), COORDINATOR_CACHE_MS + 200);
    },
  };
}
