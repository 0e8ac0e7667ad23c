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
  tempDir,
  waitFor,
  type LocalCluster,
} from '../harness/index.ts';

/*
 * Two sites on NATS itself (docs/architecture.md, "Sites and regions"): site A on the hub server (JetStream domain
 * `hub`), site B on a leaf node server (domain `siteb`) whose leaf connection to the hub goes through a TCP proxy the
 * test can cut. Each site is its own NATS account with its own agents, coordinators, streams and buckets; the link
 * carries only site B's usage snapshots, into the hub's VIEW account, where a read-only coordinator builds the combined
 * view. The config the servers get here is the sample in infra/sites/.
 */

const HEARTBEAT_MS = 500;
const LIVENESS = { suspectAfterMs: 3 * HEARTBEAT_MS, lostAfterMs: 60_000, checkEveryMs: 100 };

/** The hub: site A's account, the link's account for site B, and the read-only VIEW account that imports both usage feeds. */
const hubConfig = (leafPort: number) => `
leafnodes { listen: "127.0.0.1:${leafPort}" }
accounts {
  SITEA: { jetstream: enabled, users: [{ user: sitea, password: sitea }], exports: [{ stream: "allot.usage.>" }] }
  SITEB: {
    users: [{ user: linkb, password: linkb, permissions: { publish: ["allot.usage.>"], subscribe: ["allot.usage.>"] } }]
    exports: [{ stream: "allot.usage.>" }]
  }
  VIEW: {
    jetstream: enabled
    users: [{ user: view, password: view }]
    imports: [
      { stream: { account: SITEA, subject: "allot.usage.>" } }
      { stream: { account: SITEB, subject: "allot.usage.>" } }
    ]
  }
}
no_auth_user: sitea
`;

/**
 * The leaf: site B's account, bound to the hub's SITEB account through the link user. The hub advertises its own leaf
 * port; ignoring it keeps the link on the proxy, as a WAN address would be the only way between two sites.
 */
const leafConfig = (linkPort: number) => `
leafnodes { remotes: [{ url: "nats-leaf://linkb:linkb@127.0.0.1:${linkPort}", account: SITEB, ignore_discovered_servers: true }] }
accounts { SITEB: { jetstream: enabled, users: [{ user: siteb, password: siteb }] } }
no_auth_user: siteb
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
let viewClient: NatsConnection;

beforeAll(async () => {
  const leafPort = await freePort();
  const linkPort = await freePort();
  const coordinatorConfig = { liveness: LIVENESS };
  siteA = await startLocalCluster({
    agents: [
      { nodeId: 'a1', labels: { site: 'a' } },
      { nodeId: 'a2', labels: { site: 'a' } },
    ],
    natsOptions: { serverName: 'hub', jetstreamDomain: 'hub', extraConfig: hubConfig(leafPort) },
    heartbeatMs: HEARTBEAT_MS,
    coordinatorConfig,
    readyTimeoutMs: 30_000,
  });
  link = await startLink(linkPort, leafPort);
  siteB = await startLocalCluster({
    agents: [
      { nodeId: 'b1', labels: { site: 'b' } },
      { nodeId: 'b2', labels: { site: 'b' } },
    ],
    natsOptions: { serverName: 'leafb', jetstreamDomain: 'siteb', extraConfig: leafConfig(linkPort) },
    heartbeatMs: HEARTBEAT_MS,
    coordinatorConfig,
    readyTimeoutMs: 30_000,
  });

  // The combined view: an ordinary coordinator in the VIEW account, which reaches no agent and so can only read.
  const dir = await tempDir('view-coordinator');
  const file = join(dir, 'view.json');
  await writeFile(
    file,
    JSON.stringify({
      coordinatorId: 'view',
      nats: { servers: [siteA.server.url], user: 'view', password: 'view' },
      logLevel: 'info',
      liveness: LIVENESS,
    }),
  );
  const view = spawnProcess({
    name: 'coordinator view',
    script: COORDINATOR_MAIN,
    args: ['--config', file],
    env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
  });
  await view.waitForLine(isLogMsg('coordinator ready'), 30_000);
  viewClient = await connect({ servers: siteA.server.url, user: 'view', pass: 'view', maxReconnectAttempts: -1, reconnectTimeWait: 50 });
  registerCleanup('view client', async () => {
    if (!viewClient.isClosed()) await viewClient.close();
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

  it('shows both sites in the combined view, with the sites own figures', async () => {
    await waitFor(
      async () => {
        const rows = await nodesOf(viewClient);
        return rows.length === 4 && rows.every((r) => r.liveness === 'ready') && rows.reduce((s, r) => s + r.committedMiB, 0) === 2048;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'the combined view to list a1, a2, b1, b2 ready with 2 GiB committed' },
    );
    const rows = await nodesOf(viewClient);
    expect(rows.map((r) => [r.nodeId, r.site])).toEqual([
      ['a1', 'a'],
      ['a2', 'a'],
      ['b1', 'b'],
      ['b2', 'b'],
    ]);
  });

  it('keeps placing in each site while the link is cut, and converges with nothing lost once it heals', async () => {
    await link.cut();
    // The view stops hearing site B: its nodes turn suspect there, and only there.
    await waitFor(async () => {
      const l = liveness(await nodesOf(viewClient));
      return l['b1'] === 'suspect' && l['b2'] === 'suspect' && l['a1'] === 'ready' && l['a2'] === 'ready';
    }, { timeoutMs: 10_000, intervalMs: 100, message: 'site B suspect in the combined view while the link is cut' });

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
        const combined = await nodesOf(viewClient);
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
});
