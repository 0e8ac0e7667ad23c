import { writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { SCHED_ENDPOINTS, schedSubject } from '@allot/protocol';
import { requestTyped } from '@allot/nats';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentRequest,
  cleanupAll,
  COORDINATOR_MAIN,
  freePort,
  isLogMsg,
  registerCleanup,
  spawnProcess,
  startLocalCluster,
  startNatsServer,
  tempDir,
  waitFor,
  type LocalCluster,
  type NatsServerHandle,
  type ProcessHandle,
} from '../harness/index.ts';

/*
 * Two sites on NATS itself (docs/architecture.md, "Sites and regions"; the production form of these configs is in
 * infra/sites/). Each site is a whole allot deployment on its own nats-server with its own JetStream domain (sitea,
 * siteb): its agents, its coordinators, its streams and buckets. Each site's server is a leaf node of a small hub whose
 * link account for that site (LINKA, LINKB) lets only usage snapshots cross; the hub's VIEW account imports both feeds,
 * and an ordinary coordinator there builds the combined, read-only view. Site B's link goes through a TCP proxy the
 * test cuts and heals.
 */

const HEARTBEAT_MS = 500;
const LIVENESS = { suspectAfterMs: 3 * HEARTBEAT_MS, lostAfterMs: 60_000, checkEveryMs: 100 };

/** A site's link user on the hub: usage snapshots, and nothing else, in either direction (interest must cross too). */
const linkUser = (name: string) =>
  `users: [{ user: ${name}, password: ${name}, permissions: { publish: ["allot.usage.>"], subscribe: ["allot.usage.>"] } }]`;

/** The hub: one link account per site (so the sites never share a subject) and the VIEW account importing their usage. */
const hubConfig = (leafPort: number) => `
leafnodes { listen: "127.0.0.1:${leafPort}" }
accounts {
  LINKA: { ${linkUser('linka')}, exports: [{ stream: "allot.usage.>" }] }
  LINKB: { ${linkUser('linkb')}, exports: [{ stream: "allot.usage.>" }] }
  VIEW: {
    jetstream: enabled
    users: [
      { user: view, password: view, permissions: { publish: { deny: ["allot.agent.>", "allot.sched.>", "allot.op.>"] } } }
      { user: reader, password: reader, permissions: { publish: ["allot.read.>"], subscribe: ["_INBOX.>"] } }
      { user: unrestricted, password: unrestricted }
    ]
    imports: [
      { stream: { account: LINKA, subject: "allot.usage.>" } }
      { stream: { account: LINKB, subject: "allot.usage.>" } }
    ]
  }
}
`;

/** What infra/sites/site-leaf.conf keeps from crossing whatever the hub allows. */
const NOT_ACROSS = JSON.stringify(['allot.agent.>', 'allot.sched.>', 'allot.op.>', 'allot.read.>', 'allot.events.>', '$KV.>']);

/**
 * A site's server as a leaf of the hub, as its link user. The hub advertises its own leaf port; ignoring it keeps site
 * B's link on the proxy, as a WAN address would be the only way between two sites.
 */
const leafConfig = (port: number, user: string) => `
leafnodes {
  remotes: [{
    url: "nats-leaf://${user}:${user}@127.0.0.1:${port}"
    ignore_discovered_servers: true
    deny_exports: ${NOT_ACROSS}
    deny_imports: ${NOT_ACROSS}
  }]
}
`;
/** A TCP proxy standing for the WAN between the sites: cut() drops every connection and refuses new ones, heal() listens again. */
async function startLink(listenPort: number, targetPort: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((inbound) => {
        const outbound = createConnection({ port: targetPort, host: '127.0.0.1' });
        for (const sock of [inbound, outbound]) {
          sockets.add(sock);
          sock.on('close', () => sockets.delete(sock));
          sock.on('error', () => sock.destroy());
        }
        inbound.pipe(outbound).pipe(inbound);
      });
      s.once('error', reject);
      s.listen(listenPort, '127.0.0.1', () => resolve());
      server = s;
    });
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await listen();
  registerCleanup('site link proxy', cut);
  return { cut, heal: listen, connections: () => sockets.size };
}

let siteA: LocalCluster;
let siteB: LocalCluster;
let link: Awaited<ReturnType<typeof startLink>>;
let reader: NatsConnection;
let hub: NatsServerHandle;
let viewCoordinator: ProcessHandle;

beforeAll(async () => {
  const leafPort = await freePort();
  const linkPort = await freePort();
  hub = await startNatsServer({ serverName: 'hub', jetstreamDomain: 'hub', extraConfig: hubConfig(leafPort) });
  link = await startLink(linkPort, leafPort);
  const site = (name: 'a' | 'b', port: number) =>
    startLocalCluster({
      agents: [1, 2].map((i) => ({ nodeId: `${name}${i}`, labels: { site: name } })),
      natsOptions: { serverName: `site${name}`, jetstreamDomain: `site${name}`, extraConfig: leafConfig(port, `link${name}`) },
      heartbeatMs: HEARTBEAT_MS,
      coordinatorConfig: { liveness: LIVENESS },
      readyTimeoutMs: 30_000,
    });
  [siteA, siteB] = await Promise.all([site('a', leafPort), site('b', linkPort)]);

  // The combined view: an ordinary coordinator in the VIEW account, which reaches no agent and so can only read.
  const dir = await tempDir('view-coordinator');
  const file = join(dir, 'view.json');
  await writeFile(
    file,
    JSON.stringify({
      coordinatorId: 'view',
      nats: { servers: [hub.url], user: 'view', password: 'view' },
      logLevel: 'info',
      liveness: LIVENESS,
      readOnly: true,
      // Were it to sweep (every second here), it would meet the agents it cannot reach.
      sweep: { everyMs: 1_000, graceMs: 0 },
    }),
  );
  const view = spawnProcess({
    name: 'coordinator view',
    script: COORDINATOR_MAIN,
    args: ['--config', file],
    env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
  });
  viewCoordinator = view;
  await view.waitForLine(isLogMsg('coordinator ready'), 30_000);
  reader = await connect({ servers: hub.url, user: 'reader', pass: 'reader', maxReconnectAttempts: -1, reconnectTimeWait: 50 });
  registerCleanup('view reader', async () => {
    if (!reader.isClosed()) await reader.close();
  });
}, 60_000);

afterAll(cleanupAll);

type NodeRow = { nodeId: string; liveness: string; committedMiB: number; site: string | undefined };

async function nodesOf(nc: NatsConnection): Promise<NodeRow[]> {
  const r = await requestTyped(nc, schedSubject('nodes'), {}, SCHED_ENDPOINTS.nodes.reply, { timeoutMs: 3_000 });
  if (!r.ok) throw new Error(r.error.message);
  return r.value.nodes
    .map((n) => ({ nodeId: n.nodeId, liveness: n.liveness, committedMiB: n.snapshot.memory.committed, site: n.snapshot.labels['site'] }))
    .sort((x, y) => x.nodeId.localeCompare(y.nodeId));
}

const liveness = (rows: NodeRow[]) => Object.fromEntries(rows.map((r) => [r.nodeId, r.liveness]));

/** Places one 1 GiB, 1 vCPU VM of tenant acme through the site's coordinators; the node it landed on. */
async function placeIn(site: LocalCluster, requestId: string): Promise<string> {
  const r = await site.sched('place', { request: { requestId, tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 } } }, 10_000);
  if (!r.ok) throw new Error(`${requestId}: ${r.error.code} ${r.error.message}`);
  return r.value.nodeId;
}

/** Every placement the site's agents hold, request id -> node (asked of the agents, the authority). */
async function heldBy(site: LocalCluster): Promise<Map<string, string>> {
  const held = new Map<string, string>();
  for (const nodeId of site.agents.keys()) {
    const r = await agentRequest(site.nc, nodeId, 'allocations', { status: 'live', limit: 1_000 });
    if (!r.ok) throw new Error(`${nodeId}: ${r.error.message}`);
    for (const a of r.value.allocations) held.set(a.requestId, nodeId);
  }
  return held;
}

/** Placements each site acknowledged: request id -> node its reply named. */
const acknowledged = { a: new Map<string, string>(), b: new Map<string, string>() };

describe('two sites joined by a leaf node', () => {
  it('places each site on its own hosts, and each site sees only its own', async () => {
    acknowledged.a.set('a-0', await placeIn(siteA, 'a-0'));
    acknowledged.b.set('b-0', await placeIn(siteB, 'b-0'));
    expect(['a1', 'a2']).toContain(acknowledged.a.get('a-0'));
    expect(['b1', 'b2']).toContain(acknowledged.b.get('b-0'));
    expect((await nodesOf(siteA.nc)).map((n) => n.nodeId)).toEqual(['a1', 'a2']);
    expect((await nodesOf(siteB.nc)).map((n) => n.nodeId)).toEqual(['b1', 'b2']);
  });

  it('shows both sites in the combined view, which nobody can place through', async () => {
    await waitFor(
      async () => {
        const rows = await nodesOf(reader);
        return rows.length === 4 && rows.every((r) => r.liveness === 'ready') && rows.reduce((s, r) => s + r.committedMiB, 0) === 2048;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'the combined view to list a1, a2, b1, b2 ready with 2 GiB committed' },
    );
    const rows = await nodesOf(reader);
    expect(rows.map((r) => [r.nodeId, r.site])).toEqual([
      ['a1', 'a'],
      ['a2', 'a'],
      ['b1', 'b'],
      ['b2', 'b'],
    ]);
    // The hub refuses a reader's place (it may publish only allot.read.>), and no agent is reachable from VIEW anyway.
    const place = await requestTyped(
      reader,
      schedSubject('place', 'acme'),
      { request: { requestId: 'via-view', tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 } } },
      SCHED_ENDPOINTS.place.reply,
      { timeoutMs: 1_000 },
    );
    expect(place.ok).toBe(false);
    // Nor does the view's coordinator serve a place, whoever sends it: it is read-only.
    const anyone = await connect({ servers: hub.url, user: 'unrestricted', pass: 'unrestricted' });
    const served = await requestTyped(
      anyone,
      schedSubject('place', 'acme'),
      { request: { requestId: 'via-view-2', tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 } } },
      SCHED_ENDPOINTS.place.reply,
      { timeoutMs: 1_000 },
    );
    await anyone.close();
    expect(served.ok ? 'placed' : served.error.message).toMatch(/^no responders on allot\.sched\.acme\.place/);
    expect([...(await heldBy(siteA)).keys(), ...(await heldBy(siteB)).keys()].sort()).toEqual(['a-0', 'b-0']);
  });

  it('keeps placing in each site while the link is cut, and converges with nothing lost once it heals', async () => {
    await link.cut();
    // The view stops hearing site B: its nodes turn suspect there, and only there.
    await waitFor(
      async () => {
        const l = liveness(await nodesOf(reader));
        return l['b1'] === 'suspect' && l['b2'] === 'suspect' && l['a1'] === 'ready' && l['a2'] === 'ready';
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'site B suspect in the combined view while the link is cut' },
    );

    for (let i = 1; i <= 3; i++) {
      acknowledged.a.set(`a-${i}`, await placeIn(siteA, `a-${i}`));
      acknowledged.b.set(`b-${i}`, await placeIn(siteB, `b-${i}`));
    }
    for (const node of acknowledged.a.values()) expect(['a1', 'a2']).toContain(node);
    for (const node of acknowledged.b.values()) expect(['b1', 'b2']).toContain(node);
    expect(liveness(await nodesOf(siteB.nc))).toEqual({ b1: 'ready', b2: 'ready' });
    expect(link.connections()).toBe(0);

    await link.heal();
    const committed = (rows: NodeRow[]) => Object.fromEntries(rows.map((r) => [r.nodeId, r.committedMiB]));
    let expected: Record<string, number> = {};
    await waitFor(
      async () => {
        const own = [...(await nodesOf(siteA.nc)), ...(await nodesOf(siteB.nc))];
        const combined = await nodesOf(reader);
        expected = committed(own);
        return combined.every((r) => r.liveness === 'ready') && JSON.stringify(committed(combined)) === JSON.stringify(expected);
      },
      { timeoutMs: 15_000, intervalMs: 100, message: 'the combined view to agree with both sites after the link healed' },
    );
    expect(Object.values(expected).reduce((s, m) => s + m, 0)).toBe(8 * 1024);

    // Nothing acknowledged is lost: each site's agents hold every placement their site acknowledged, where it said.
    const heldA = await heldBy(siteA);
    const heldB = await heldBy(siteB);
    for (const [requestId, node] of acknowledged.a) expect(heldA.get(requestId)).toBe(node);
    for (const [requestId, node] of acknowledged.b) expect(heldB.get(requestId)).toBe(node);
    expect(heldA.size + heldB.size).toBe(8);
  });

  it('runs the view without calling any agent: nothing in its log above a warning', () => {
    const errors = viewCoordinator.lines.filter((l) => typeof l === 'object' && Number(l['level']) >= 50);
    expect(errors.map((l) => (typeof l === 'object' ? l['msg'] : l))).toEqual([]);
  });
});
