import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MovesResponse } from '@allot/protocol/http';
import type { IntentStore } from '../intents/intent-store.ts';
import { movesInFlight } from './evacuate.ts';

/**
 * How long one scan of the intents answers every dashboard. Each polls every few seconds, and again this long after a
 * move event (COORDINATOR_CACHE_MS in apps/dashboard/src/moves.ts).
 */
const CACHE_MS = 2_000;

/** GET /api/moves for the dashboard: the moves in flight, from one scan of the placement intents per CACHE_MS. */
export function movesRoute(store: IntentStore, now: () => number): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  let cached: { at: number; body: MovesResponse } | undefined;
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    const t = now();
    if (cached === undefined || t - cached.at >= CACHE_MS) {
      const listed = await movesInFlight({ store }, {});
      if (!listed.ok) {
        res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: listed.error }));
        return;
      }
      cached = { at: t, body: { now: t, ...listed.value } };
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(cached.body));
  };
}
