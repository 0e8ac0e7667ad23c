import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Allocation } from '@allot/core';
import { ClusterAllocationsResponseSchema } from '@allot/protocol/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, freePort, startLocalCluster, type LocalCluster } from '../harness/index.ts';

/*
 * Reading the fleet (issue 16) with real processes: a nats-server, two agents on simulated hosts labelled by zone, one
 * coordinator with its HTTP API. Allocations on both nodes are listed by node (only that agent asked), by label, by
 * tenant, page by page with the cursor, through allot.op.allocations, the CLI and GET /api/allocations; the events of
 * the same places are read by tenant, request id and time, page by page with --after-seq.
 */
const CLI = fileURLToPath(new URL('../../apps/cli/src/main.ts', import.meta.url));
const TOKEN = 'fleet-reading-token-0123';
let cluster: LocalCluster;
let api: string;

beforeAll(async () => {
  const port = await freePort();
  cluster = await startLocalCluster({
    agents: [
      { nodeId: 'a1', simulatedHost: { cores: 16, memoryMiB: 65_536 }, labels: { zone: 'z1' } },
      { nodeId: 'a2', simulatedHost: { cores: 16, memoryMiB: 65_536 }, labels: { zone: 'z2' } },
    ],
    coordinatorConfig: { http: { host: '127.0.0.1', port, token: TOKEN } },
  });
  api = `http://127.0.0.1:${port}`;
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

function value<T>(r: { ok: true; value: T } | { ok: false; error: { code: string; message: string } }): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}

function allot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '-s', cluster.server.url], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

const place = async (requestId: string, tenantId: string, nodeId: string): Promise<Allocation> =>
  value(
    await cluster.sched('place', {
      request: { requestId, tenantId, resources: { memoryMiB: 512, vcpus: 1 } },
      placement: { strategy: 'manual', nodeId },
    }),
  ).allocation;

const ids = (as: readonly { requestId: string }[]) => as.map((a) => a.requestId);

describe('reading the fleet', () => {
  let beforeLate = 0;

  it('places on both nodes', async () => {
    for (const [r, t, n] of [
      ['a1-acme-1', 'acme', 'a1'],
      ['a1-beta-1', 'beta', 'a1'],
      ['a1-acme-2', 'acme', 'a1'],
      ['a2-acme-1', 'acme', 'a2'],
      ['a2-acme-2', 'acme', 'a2'],
    ] as const)
      await place(r, t, n);
    await new Promise((r) => setTimeout(r, 1_100));
    beforeLate = Date.now();
    await new Promise((r) => setTimeout(r, 1_100));
    await place('a2-beta-late', 'beta', 'a2');
  });

  it('allot.op.allocations by node, by label, by tenant, and walked page by page', async () => {
    expect(ids(value(await cluster.sched('allocations', { nodeId: 'a2' })).allocations)).toEqual([
      'a2-acme-1',
      'a2-acme-2',
      'a2-beta-late',
    ]);
    expect(ids(value(await cluster.sched('allocations', { labels: { zone: 'z1' } })).allocations)).toEqual([
      'a1-acme-1',
      'a1-beta-1',
      'a1-acme-2',
    ]);
    expect(await cluster.sched('allocations', { nodeId: 'nowhere' })).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(await cluster.sched('allocations', { cursor: 'not-a-cursor' })).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = value(await cluster.sched('allocations', { tenantId: 'acme', limit: 1, ...(cursor === undefined ? {} : { cursor }) }));
      pages.push(ids(page.allocations));
      cursor = page.next;
    } while (cursor !== undefined && pages.length < 20);
    expect(pages.flat()).toEqual(['a1-acme-1', 'a1-acme-2', 'a2-acme-1', 'a2-acme-2']);
    expect(Math.max(...pages.map((p) => p.length))).toBe(1);
  });

  it('allot allocations --all walks every page; one page says where the next starts', async () => {
    const all = await allot('allocations', '--tenant', 'acme', '--limit', '3', '--all', '--json');
    expect(all.code).toBe(0);
    expect(ids((JSON.parse(all.stdout) as { allocations: Allocation[] }).allocations)).toEqual([
      'a1-acme-1',
      'a1-acme-2',
      'a2-acme-1',
      'a2-acme-2',
    ]);
    const first = await allot('allocations', '--limit', '2', '--json');
    expect(ids((JSON.parse(first.stdout) as { allocations: Allocation[] }).allocations)).toEqual(['a1-acme-1', 'a1-beta-1']);
    const cursor = /^more: --cursor (\S+)/.exec(first.stderr)?.[1];
    expect(cursor).toBeDefined();
    const second = await allot('allocations', '--limit', '2', '--cursor', cursor as string, '--json');
    expect(ids((JSON.parse(second.stdout) as { allocations: Allocation[] }).allocations)).toEqual(['a1-acme-2', 'a2-acme-1']);
    const byLabel = await allot('allocations', '--label', 'zone=z2', '--tenant', 'beta', '--json');
    expect(ids((JSON.parse(byLabel.stdout) as { allocations: Allocation[] }).allocations)).toEqual(['a2-beta-late']);
  });

  it('GET /api/allocations: the same listing, under the token', async () => {
    const get = (q: string, auth = true) =>
      fetch(`${api}/api/allocations${q}`, auth ? { headers: { authorization: `Bearer ${TOKEN}` } } : {});
    expect((await get('?node=a1', false)).status).toBe(401);
    const z2 = await get('?label=zone=z2&tenant=acme');
    expect(z2.status).toBe(200);
    expect(ids(((await z2.json()) as { allocations: Allocation[] }).allocations)).toEqual(['a2-acme-1', 'a2-acme-2']);
    const page = ClusterAllocationsResponseSchema.parse(await (await get('?limit=4')).json());
    expect(ids(page.allocations)).toEqual(['a1-acme-1', 'a1-beta-1', 'a1-acme-2', 'a2-acme-1']);
    const rest = (await (await get(`?limit=4&cursor=${page.next}`)).json()) as { allocations: Allocation[]; next?: string };
    expect(ids(rest.allocations)).toEqual(['a2-acme-2', 'a2-beta-late']);
    expect(rest.next).toBeUndefined();
    expect((await get('?cursor=bogus!')).status).toBe(400);
    expect((await get('?status=gone')).status).toBe(400);
    expect((await get('?node=nowhere')).status).toBe(404);
  });

  it('allot events by tenant, request id and time, page by page', async () => {
    const lines = (out: string) =>
      out
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { kind: string; requestId?: string; tenantId?: string });
    const beta = await allot('events', '--tenant', 'beta', '--kind', 'allocated', '--json');
    expect(beta.code).toBe(0);
    expect(lines(beta.stdout).map((e) => e.requestId)).toEqual(['a1-beta-1', 'a2-beta-late']);
    const one = await allot('events', '--request', 'a2-acme-1', '--kind', 'allocated', '--json');
    expect(lines(one.stdout).map((e) => e.requestId)).toEqual(['a2-acme-1']);
    const since = await allot('events', '--kind', 'allocated', '--since', new Date(beforeLate).toISOString(), '--json');
    expect(lines(since.stdout).map((e) => e.requestId)).toEqual(['a2-beta-late']);
    const until = await allot('events', '--kind', 'allocated', '--until', new Date(beforeLate).toISOString(), '--json');
    expect(lines(until.stdout).map((e) => e.requestId)).toEqual(['a1-acme-1', 'a1-beta-1', 'a1-acme-2', 'a2-acme-1', 'a2-acme-2']);
    const recent = await allot('events', '--kind', 'allocated', '--since', '10m', '--tenant', 'acme', '--json');
    expect(lines(recent.stdout)).toHaveLength(4);
    // Pages of two, following the cursor printed on stderr: every allocated event once, in order.
    const seen: string[] = [];
    let after: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await allot(
        'events',
        '--kind',
        'allocated',
        '--limit',
        '2',
        '--json',
        ...(after === undefined ? [] : ['--after-seq', after]),
      );
      expect(page.code).toBe(0);
      const got = lines(page.stdout);
      expect(got.length).toBeLessThanOrEqual(2);
      seen.push(...got.map((e) => e.requestId ?? ''));
      after = /more: --after-seq (\d+)/.exec(page.stderr)?.[1];
      if (after === undefined) break;
    }
    expect(seen).toEqual(['a1-acme-1', 'a1-beta-1', 'a1-acme-2', 'a2-acme-1', 'a2-acme-2', 'a2-beta-late']);
    expect((await allot('events', '--since', 'yesterday')).code).toBe(2);
  });
});
