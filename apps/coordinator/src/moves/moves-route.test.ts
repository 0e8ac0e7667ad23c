import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MovesResponseSchema } from '@allot/protocol/http';
import { inProcessCluster } from '../testing/fake-agents.ts';
import { moveAllocation } from './move.ts';
import { movesRoute } from './moves-route.ts';

let server: Server | undefined;
afterEach(() => new Promise<void>((done) => (server === undefined ? done() : server.close(() => done()))));

describe('GET /api/moves', () => {
  it('lists a held move for the dashboard with both halves, and drops it once aborted (after the 2 s cache)', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 }, b: { memoryMiB: 8192, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const placed = await c.place({
      request: { requestId: 'vm-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
      placement: { strategy: 'manual', nodeId: 'a' },
    });
    if (!placed.ok) throw new Error(placed.error.message);
    const deps = { store: c.store, flow: c.flow, agents: cluster.agents.caller(), knowsNode: () => true, holdMs: 60_000 };
    const held = await moveAllocation(deps, { requestId: 'mv-1', allocationId: placed.value.allocation.id }, 't');
    expect(held.ok).toBe(true);

    let t = 1_000;
    const route = movesRoute(c.store, () => t);
    server = createServer((req, res) => void route(req, res));
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/moves`;
    const first = MovesResponseSchema.parse(await (await fetch(url)).json());
    expect(first).toMatchObject({
      now: 1_000,
      count: 1,
      moves: [
        { state: 'held', source: { allocationId: 'a:1', nodeId: 'a' }, destination: { nodeId: 'b', allocation: { status: 'reserved' } } },
      ],
    });

    const dest = first.moves[0]?.destination.requestId ?? '';
    const at = await c.store.get(dest);
    if (!at.ok || at.value === null) throw new Error('no destination intent');
    expect((await c.store.released(at.value, 'tenant')).ok).toBe(true);
    expect(MovesResponseSchema.parse(await (await fetch(url)).json()).count).toBe(1); // cached
    t += 2_000;
    expect(MovesResponseSchema.parse(await (await fetch(url)).json())).toMatchObject({ count: 0, moves: [] });
    expect((await fetch(url, { method: 'POST' })).status).toBe(405);
  });
});
