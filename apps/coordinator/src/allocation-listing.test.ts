import { describe, expect, it } from 'vitest';
import type { AgentCaller } from './agents.ts';
import { decodeCursor, encodeCursor, listAllocationsPage, listingNodes, nodesFrom } from './allocation-listing.ts';
import type { ClusterView } from './view.ts';
import { inProcessCluster } from './testing/fake-agents.ts';

describe('allocation listing cursor', () => {
  it('round-trips and refuses what it did not make', () => {
    for (const c of [{ nodeId: 'n-1' }, { nodeId: 'n_2', after: 0 }, { nodeId: 'x', after: 9_007_199_254_740_991 }])
      expect(decodeCursor(encodeCursor(c))).toEqual({ ok: true, value: c });
    const hostile = [
      '',
      'not base64!',
      Buffer.from('[]').toString('base64url'),
      Buffer.from('{"n":"a.b"}').toString('base64url'),
      Buffer.from('{"n":"a","a":-1}').toString('base64url'),
      Buffer.from('{"n":"a","a":1.5}').toString('base64url'),
      'A'.repeat(201),
    ];
    for (const h of hostile) expect(decodeCursor(h)).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
  });

  it('resumes at the cursor node, or the next one when that node left', () => {
    expect(nodesFrom(['a', 'b', 'c'], undefined)).toEqual(['a', 'b', 'c']);
    expect(nodesFrom(['a', 'b', 'c'], { nodeId: 'b', after: 3 })).toEqual(['b', 'c']);
    expect(nodesFrom(['a', 'c'], { nodeId: 'b' })).toEqual(['c']);
    expect(nodesFrom(['a', 'c'], { nodeId: 'd' })).toEqual([]);
  });
});

describe('listAllocationsPage', () => {
  async function setup(counts: Record<string, number>) {
    const cluster = inProcessCluster(Object.fromEntries(Object.keys(counts).map((n) => [n, { memoryMiB: 65_536, cores: 64 }])));
    const caller = cluster.agents.caller();
    for (const [nodeId, n] of Object.entries(counts))
      for (let i = 0; i < n; i++) {
        const r = await caller.call(nodeId, 'allocate', {
          requestId: `${nodeId}-r${i}`,
          tenantId: i % 2 === 0 ? 'even' : 'odd',
          resources: { memoryMiB: 64, vcpus: 1 },
          fence: 1,
        });
        if (!r.ok) throw new Error(r.error.message);
      }
    return caller;
  }

  async function walk(agents: AgentCaller, nodes: string[], limit: number, filter = {}, concurrency = 8) {
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const decoded = cursor === undefined ? undefined : decodeCursor(cursor);
      if (decoded !== undefined && !decoded.ok) throw new Error(decoded.error.message);
      const r = await listAllocationsPage(agents, nodes, filter, {
        limit,
        concurrency,
        ...(decoded === undefined ? {} : { cursor: decoded.value }),
      });
      if (!r.ok) throw new Error(r.error.message);
      pages.push(r.value.allocations.map((a) => a.id));
      cursor = r.value.next;
    } while (cursor !== undefined && pages.length < 100);
    return pages;
  }

  it('walks every node in node-id order, each allocation once, no page above the limit', async () => {
    const agents = await setup({ c: 3, a: 5, b: 0, d: 1 });
    const all = ['a:1', 'a:2', 'a:3', 'a:4', 'a:5', 'c:1', 'c:2', 'c:3', 'd:1'];
    for (const limit of [1, 2, 3, 4, 9, 10])
      for (const concurrency of [1, 2, 8]) {
        const pages = await walk(agents, ['d', 'c', 'b', 'a'], limit, {}, concurrency);
        expect(pages.flat()).toEqual(all);
        for (const p of pages) expect(p.length).toBeLessThanOrEqual(limit);
      }
  });

  it('filters by tenant inside each node, the cursor still walking them all', async () => {
    const agents = await setup({ a: 5, b: 4 });
    expect((await walk(agents, ['a', 'b'], 2, { tenantId: 'odd' })).flat()).toEqual(['a:2', 'a:4', 'b:2', 'b:4']);
  });

  it('goes past a node that does not answer and says which', async () => {
    const real = await setup({ a: 2, c: 2 });
    const agents: AgentCaller = {
      call: ((nodeId: string, ...rest: unknown[]) =>
        nodeId === 'b'
          ? Promise.resolve({ ok: false, error: { code: 'timeout', message: 'request to allot.agent.b.allocations timed out' } })
          : (real.call as (...a: unknown[]) => unknown)(nodeId, ...rest)) as AgentCaller['call'],
    };
    const r = await listAllocationsPage(agents, ['a', 'b', 'c'], {}, { limit: 10 });
    expect(r).toMatchObject({
      ok: true,
      value: { nodesFailed: [{ nodeId: 'b', error: 'request to allot.agent.b.allocations timed out' }] },
    });
    expect(r.ok && r.value.allocations.map((a) => a.id)).toEqual(['a:1', 'a:2', 'c:1', 'c:2']);
    expect(r.ok && r.value.next).toBeUndefined();
  });
});

describe('listingNodes', () => {
  // A view of three nodes: n1 and n2 ready in zone z1 and z2, n3 in z1 but suspect.
  const rows = [
    { nodeId: 'n1', liveness: 'ready', labels: { zone: 'z1', rack: 'r1' } },
    { nodeId: 'n2', liveness: 'ready', labels: { zone: 'z2' } },
    { nodeId: 'n3', liveness: 'suspect', labels: { zone: 'z1' } },
  ];
  const view = {
    get: (id: string) => rows.find((r) => r.nodeId === id),
    nodes: (f: { liveness?: string; labels?: Record<string, string> }) =>
      rows
        .filter(
          (r) =>
            (f.liveness === undefined || r.liveness === f.liveness) &&
            Object.entries(f.labels ?? {}).every(([k, v]) => (r.labels as Record<string, string>)[k] === v),
        )
        .map((r) => ({ nodeId: r.nodeId })),
  } as unknown as Pick<ClusterView, 'get' | 'nodes'>;

  it('asks the named node alone whatever its liveness, the ready nodes with the labels, or every ready node', () => {
    expect(listingNodes(view, { nodeId: 'n3' })).toEqual({ ok: true, value: ['n3'] });
    expect(listingNodes(view, { nodeId: 'n9' })).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(listingNodes(view, { labels: { zone: 'z1' } })).toEqual({ ok: true, value: ['n1'] });
    expect(listingNodes(view, { labels: { zone: 'z1', rack: 'r2' } })).toEqual({ ok: true, value: [] });
    expect(listingNodes(view, {})).toEqual({ ok: true, value: ['n1', 'n2'] });
  });
});
