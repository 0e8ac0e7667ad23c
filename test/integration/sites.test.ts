import { readFile, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { AGENT_ENDPOINTS, agentSubject, encode, SCHED_ENDPOINTS, schedSubject, usageSubject } from '@allot/protocol';
import type { NatsConnectionConfig } from '@allot/core';
import { connectNats, requestTyped, silentLogger } from '@allot/nats';
import { nkeys, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployment } from '../../apps/cli/src/security/deployment.ts';
import { setupStorage } from '../../apps/cli/src/security/setup.ts';
import { ensureSites, type Sites } from '../../apps/cli/src/security/sites.ts';
import {
  agentRequest,
  cleanupAll,
  COORDINATOR_MAIN,
  freePort,
  isLogMsg,
  registerCleanup,
  spawnProcess,
  startAgent,
  startNatsServer,
  tempDir,
  waitFor,
  type NatsServerHandle,
  type ProcessHandle,
} from '../harness/index.ts';

/*
 * Two sites on NATS itself, secured end to end (docs/architecture.md, "Sites and regions"; docs/security.md, "Sites").
 * Every server configuration is what `allot security add-site` generates (apps/cli/src/security/sites.ts): each site is
 * a secured allot deployment with its own JetStream domain (a, b) whose nats-server is a leaf node of the hub, dialled
 * with the site's link nkey and a client certificate of the shared CA; the hub's link account for each site takes only
 * the usage of that site's own nodes, and its VIEW account imports both feeds for a read-only coordinator that may
 * neither schedule nor reach an agent. Site B's link goes through a TCP proxy the test cuts and heals.
 */

const HEARTBEAT_MS = 500;
const LIVENESS = { suspectAfterMs: 3 * HEARTBEAT_MS, lostAfterMs: 60_000, checkEveryMs: 100 };
const SHORT = { timeoutMs: 1_500 };

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

type Site = { name: 'a' | 'b'; server: NatsServerHandle; deployment: Deployment };

let sites: Sites;
let siteA: Site;
let siteB: Site;
let link: Awaited<ReturnType<typeof startLink>>;
let hub: NatsServerHandle;
let viewCoordinator: ProcessHandle;
const clients = new Map<string, NatsConnection>();

/** An identity's connection block, pointed at the test's server (the generated one names the deployment's URLs). */
function connectionOf(where: Site | 'hub', role: string, name: string): NatsConnectionConfig {
  const identities = where === 'hub' ? sites.hubIdentities : where.deployment.identities;
  const found = identities.find((i) => i.identity.role === role && i.identity.name === name);
  if (found === undefined) throw new Error(`no identity ${role}/${name}`);
  return { ...found.connection, servers: [where === 'hub' ? hub.url : where.server.url] };
}

/** A connection as that identity (kept open, closed at the end), or the server's refusal. */
async function tryConnect(config: NatsConnectionConfig, name: string) {
  return connectNats(config, { name, logger: silentLogger });
}

async function client(where: Site | 'hub', role: string, name: string): Promise<NatsConnection> {
  const key = `${where === 'hub' ? 'hub' : where.name}/${role}/${name}`;
  const open = clients.get(key);
  if (open !== undefined) return open;
  const connected = await tryConnect(connectionOf(where, role, name), `test-${key}`);
  if (!connected.ok) throw new Error(`${key}: ${connected.error.message}`);
  clients.set(key, connected.value);
  return connected.value;
}

const envOf = (c: NatsConnectionConfig): Record<string, string> => ({
  ALLOT_NATS_SERVERS: c.servers.join(','),
  ALLOT_NATS_NKEY_SEED_FILE: c.nkeySeedFile ?? '',
  ALLOT_NATS_TLS_CA: c.tls?.caFile ?? '',
  ALLOT_NATS_TLS_CERT: c.tls?.certFile ?? '',
  ALLOT_NATS_TLS_KEY: c.tls?.keyFile ?? '',
});

async function startCoordinator(dir: string, id: string, nats: NatsConnectionConfig, extra: object = {}): Promise<ProcessHandle> {
  const file = join(dir, `${id}.json`);
  await writeFile(file, JSON.stringify({ coordinatorId: id, nats, logLevel: 'info', liveness: LIVENESS, ...extra }));
  const proc = spawnProcess({
    name: `coordinator ${id}`,
    script: COORDINATOR_MAIN,
    args: ['--config', file],
    env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
  });
  await proc.waitForLine(isLogMsg('coordinator ready'), 30_000);
  return proc;
}

/** A site as its generated files describe it: the server (allot-auth.conf and site-link.conf), storage, a coordinator, two agents. */
async function startSite(name: 'a' | 'b', dir: string): Promise<Site> {
  const deployment = sites.sites.get(name);
  if (deployment === undefined) throw new Error(`no site ${name}`);
  const generated = await Promise.all(['allot-auth.conf', 'site-link.conf'].map((f) => readFile(join(deployment.dir, 'nats', f), 'utf8')));
  const server = await startNatsServer({ serverName: `site${name}`, jetstreamDomain: name, extraConfig: generated.join('\n') });
  const site: Site = { name, server, deployment };
  expect((await setupStorage(await client(site, 'admin', 'admin'), 1)).ok).toBe(true);
  await startCoordinator(dir, `coord-${name}`, connectionOf(site, 'coordinator', 'coordinator'));
  await Promise.all(
    [1, 2].map((i) =>
      startAgent({
        natsUrl: server.url,
        nodeId: `${name}${i}`,
        stateDir: join(dir, `${name}${i}`),
        env: {
          ...envOf(connectionOf(site, 'agent', `${name}${i}`)),
          ALLOT_HEARTBEAT_MS: String(HEARTBEAT_MS),
          ALLOT_LABELS: `site=${name}`,
        },
      }),
    ),
  );
  return site;
}

beforeAll(async () => {
  const dir = await tempDir('sites');
  const leafPort = await freePort();
  const linkPort = await freePort();
  const made = await ensureSites(
    join(dir, 'deploy'),
    [
      { site: 'a', nodes: ['a1', 'a2'], tenants: ['acme'] },
      // Site B dials the hub through the proxy standing for the WAN.
      { site: 'b', nodes: ['b1', 'b2'], tenants: ['acme'], leafUrls: [`nats-leaf://127.0.0.1:${linkPort}`] },
    ],
    { leafPort, leafUrls: [`nats-leaf://127.0.0.1:${leafPort}`] },
  );
  if (!made.ok) throw new Error(made.error.message);
  sites = made.value;
  hub = await startNatsServer({ serverName: 'hub', jetstreamDomain: 'hub', extraConfig: await readFile(sites.hubAuthConfig, 'utf8') });
  link = await startLink(linkPort, leafPort);
  [siteA, siteB] = await Promise.all([startSite('a', dir), startSite('b', dir)]);

  // The combined view: VIEW's streams made by the hub's admin, then the read-only coordinator as the hub's `view`.
  expect((await setupStorage(await client('hub', 'admin', 'admin'), 1)).ok).toBe(true);
  // Its generated config file says readOnly; the test points it at its hub. Were it to sweep (every second here), it
  // would meet the agents it cannot reach.
  const view = sites.hubIdentities.find((i) => i.identity.role === 'coordinator');
  const generated = JSON.parse(await readFile(join(view?.dir ?? '', 'coordinator.json'), 'utf8')) as {
    coordinatorId: string;
    readOnly: boolean;
  };
  expect(generated.readOnly).toBe(true);
  viewCoordinator = await startCoordinator(dir, generated.coordinatorId, connectionOf('hub', 'coordinator', 'view'), {
    readOnly: generated.readOnly,
    sweep: { everyMs: 1_000, graceMs: 0 },
  });
  registerCleanup('test clients', async () => {
    for (const nc of clients.values()) if (!nc.isClosed()) await nc.close().catch(() => undefined);
  });
}, 90_000);

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

const placeBody = (requestId: string) => ({ request: { requestId, tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 } } });

/** Places one 1 GiB, 1 vCPU VM of tenant acme through the site's coordinators, as the site's acme; the node it landed on. */
async function placeIn(site: Site, requestId: string): Promise<string> {
  const acme = await client(site, 'scheduler', 'acme');
  const r = await requestTyped(acme, schedSubject('place', 'acme'), placeBody(requestId), SCHED_ENDPOINTS.place.reply, {
    timeoutMs: 10_000,
  });
  if (!r.ok) throw new Error(`${requestId}: ${r.error.code} ${r.error.message}`);
  return r.value.nodeId;
}

/** Every placement the site's agents hold, request id -> node (asked of the agents, the authority). */
async function heldBy(site: Site): Promise<Map<string, string>> {
  const held = new Map<string, string>();
  for (const nodeId of [`${site.name}1`, `${site.name}2`]) {
    const r = await agentRequest(await client(site, 'admin', 'admin'), nodeId, 'allocations', { status: 'live', limit: 1_000 });
    if (!r.ok) throw new Error(`${nodeId}: ${r.error.message}`);
    for (const a of r.value.allocations) held.set(a.requestId, nodeId);
  }
  return held;
}

/** The payloads `sub` hears on `subject` while `act` runs (and 300 ms after). */
async function heardAt(nc: NatsConnection, subject: string, act: () => Promise<void>): Promise<Uint8Array[]> {
  const heard: Uint8Array[] = [];
  const sub = nc.subscribe(subject, { callback: (e, m) => void (e === null ? heard.push(m.data) : undefined) });
  await nc.flush();
  await act();
  await new Promise((r) => setTimeout(r, 300));
  sub.unsubscribe();
  return heard;
}

/** Placements each site acknowledged: request id -> node its reply named. */
const acknowledged = { a: new Map<string, string>(), b: new Map<string, string>() };

describe('two sites joined by a leaf node', () => {
  it('places each site on its own hosts, and each site sees only its own', async () => {
    acknowledged.a.set('a-0', await placeIn(siteA, 'a-0'));
    acknowledged.b.set('b-0', await placeIn(siteB, 'b-0'));
    expect(['a1', 'a2']).toContain(acknowledged.a.get('a-0'));
    expect(['b1', 'b2']).toContain(acknowledged.b.get('b-0'));
    expect((await nodesOf(await client(siteA, 'reader', 'reader'))).map((n) => n.nodeId)).toEqual(['a1', 'a2']);
    expect((await nodesOf(await client(siteB, 'reader', 'reader'))).map((n) => n.nodeId)).toEqual(['b1', 'b2']);
  });

  it('shows both sites in the combined view, which nobody can place through', async () => {
    await waitFor(
      async () => {
        const rows = await nodesOf(await client('hub', 'reader', 'reader'));
        return rows.length === 4 && rows.every((r) => r.liveness === 'ready') && rows.reduce((s, r) => s + r.committedMiB, 0) === 2048;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'the combined view to list a1, a2, b1, b2 ready with 2 GiB committed' },
    );
    const rows = await nodesOf(await client('hub', 'reader', 'reader'));
    expect(rows.map((r) => [r.nodeId, r.site])).toEqual([
      ['a1', 'a'],
      ['a2', 'a'],
      ['b1', 'b'],
      ['b2', 'b'],
    ]);
    // The hub refuses a reader's place (it may publish only allot.read.>), and the view's own coordinator may not send
    // one either (it publishes JetStream API requests alone); nothing in VIEW serves it, and no agent is reachable.
    for (const who of [await client('hub', 'reader', 'reader'), await client('hub', 'coordinator', 'view')]) {
      const place = await requestTyped(who, schedSubject('place', 'acme'), placeBody('via-view'), SCHED_ENDPOINTS.place.reply, SHORT);
      expect(place.ok ? 'placed' : place.error.message).toMatch(/permission/i);
    }
    expect([...(await heldBy(siteA)).keys(), ...(await heldBy(siteB)).keys()].sort()).toEqual(['a-0', 'b-0']);
  });

  it("site A's tenant cannot place through site B: B's servers and the hub refuse its credentials, and its requests never cross", async () => {
    for (const where of [siteB.server.url, hub.url]) {
      const refused = await tryConnect({ ...connectionOf(siteA, 'scheduler', 'acme'), servers: [where] }, 'acme of site a elsewhere');
      if (refused.ok) await refused.value.close();
      expect(refused.ok).toBe(false);
    }
    // On its own site's server, its place is served by its site alone: site B's admin hears no sched subject from it.
    const heard = await heardAt(await client(siteB, 'admin', 'admin'), 'allot.sched.>', async () => {
      const placed = await placeIn(siteA, 'a-only');
      expect(['a1', 'a2']).toContain(placed);
      acknowledged.a.set('a-only', placed);
    });
    expect(heard).toEqual([]);
  });

  it("site A's tenant cannot reach site A's agents", async () => {
    const acme = await client(siteA, 'scheduler', 'acme');
    const direct = await agentRequest(acme, 'a1', 'allocations', { status: 'live', limit: 10 }, 1_500);
    expect(direct.ok ? 'answered' : direct.error.message).toMatch(/permission/i);
    const allocate = await requestTyped(acme, agentSubject('a1', 'allocate'), {}, AGENT_ENDPOINTS.allocate.reply, SHORT);
    expect(allocate.ok).toBe(false);
  });

  it("nothing in site A publishes usage as site B's node: not its agent (its server), not its admin (the hub's link account)", async () => {
    const hubAdmin = await client('hub', 'admin', 'admin');
    const forged = encode({ forged: true });
    const asB1 = await heardAt(hubAdmin, usageSubject('b1'), async () => {
      for (const who of [await client(siteA, 'agent', 'a1'), await client(siteA, 'admin', 'admin')]) {
        who.publish(usageSubject('b1'), forged);
        await who.flush().catch(() => undefined);
      }
    });
    expect(asB1.filter((m) => Buffer.from(forged).equals(m))).toEqual([]);
    // The control: site A's admin speaking for a node of site A does reach the hub, so the drop above is the hub's.
    const asA1 = await heardAt(hubAdmin, usageSubject('a1'), async () => {
      const admin = await client(siteA, 'admin', 'admin');
      admin.publish(usageSubject('a1'), forged);
      await admin.flush();
    });
    expect(asA1.filter((m) => Buffer.from(forged).equals(m))).toHaveLength(1);
  });

  it('the hub refuses a leaf connection without the link nkey or without a client certificate', async () => {
    const generated = await readFile(join(siteA.deployment.dir, 'nats', 'site-link.conf'), 'utf8');
    const seed = /nkey: "(S[A-Z0-9]+)"/.exec(generated)?.[1] ?? '';
    expect(seed).not.toBe('');
    const variants = {
      'another nkey': generated.replace(seed, new TextDecoder().decode(nkeys.createUser().getSeed())),
      'no client certificate': generated.replace(/cert_file: "[^"]*", key_file: "[^"]*", /, ''),
    };
    const rogues = await Promise.all(
      Object.entries(variants).map(async ([name, config]) => {
        const server = await startNatsServer({ serverName: `rogue-${name.replace(/ /g, '-')}`, jetstream: false, extraConfig: config });
        return { name, server };
      }),
    );
    // Long enough for several attempts (a leaf remote retries every second).
    await new Promise((r) => setTimeout(r, 2_500));
    for (const { name, server } of rogues) {
      const leafz = (await server.monitor('/leafz')) as { leafnodes: number };
      expect({ name, leafnodes: leafz.leafnodes }).toEqual({ name, leafnodes: 0 });
      await server.kill();
    }
    const hubLeafz = (await hub.monitor('/leafz')) as { leafnodes: number };
    expect(hubLeafz.leafnodes).toBe(2);
  });

  it('keeps placing in each site while the link is cut, and converges with nothing lost once it heals', async () => {
    await link.cut();
    // The view stops hearing site B: its nodes turn suspect there, and only there.
    await waitFor(
      async () => {
        const l = liveness(await nodesOf(await client('hub', 'reader', 'reader')));
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
    expect(liveness(await nodesOf(await client(siteB, 'reader', 'reader')))).toEqual({ b1: 'ready', b2: 'ready' });
    expect(link.connections()).toBe(0);

    await link.heal();
    const committed = (rows: NodeRow[]) => Object.fromEntries(rows.map((r) => [r.nodeId, r.committedMiB]));
    let expected: Record<string, number> = {};
    await waitFor(
      async () => {
        const own = [
          ...(await nodesOf(await client(siteA, 'reader', 'reader'))),
          ...(await nodesOf(await client(siteB, 'reader', 'reader'))),
        ];
        const combined = await nodesOf(await client('hub', 'reader', 'reader'));
        expected = committed(own);
        return combined.every((r) => r.liveness === 'ready') && JSON.stringify(committed(combined)) === JSON.stringify(expected);
      },
      { timeoutMs: 15_000, intervalMs: 100, message: 'the combined view to agree with both sites after the link healed' },
    );
    expect(Object.values(expected).reduce((s, m) => s + m, 0)).toBe(9 * 1024);

    // Nothing acknowledged is lost: each site's agents hold every placement their site acknowledged, where it said.
    const heldA = await heldBy(siteA);
    const heldB = await heldBy(siteB);
    for (const [requestId, node] of acknowledged.a) expect(heldA.get(requestId)).toBe(node);
    for (const [requestId, node] of acknowledged.b) expect(heldB.get(requestId)).toBe(node);
    expect(heldA.size + heldB.size).toBe(9);
  });

  it('a node added to a site later reaches the view once the regenerated hub config is reloaded, not before', async () => {
    const authA = join(siteA.deployment.dir, 'nats', 'allot-auth.conf');
    const [hubBefore, siteBefore] = await Promise.all([readFile(sites.hubAuthConfig, 'utf8'), readFile(authA, 'utf8')]);
    const again = await ensureSites(sites.dir, [{ site: 'a', nodes: ['a3'] }]);
    if (!again.ok) throw new Error(again.error.message);
    sites = again.value;
    siteA = { ...siteA, deployment: again.value.sites.get('a') ?? siteA.deployment };
    /** Swaps the generated part of a running server's config for its new version and reloads it (SIGHUP). */
    const reload = async (server: NatsServerHandle, before: string, file: string) => {
      const config = await readFile(server.configFile, 'utf8');
      expect(config).toContain(before);
      await writeFile(server.configFile, config.replace(before, await readFile(file, 'utf8')));
      process.kill(server.pid ?? 0, 'SIGHUP');
    };
    await reload(siteA.server, siteBefore, authA);
    const dir = join(siteA.deployment.dir, '..', '..', '..');
    await startAgent({
      natsUrl: siteA.server.url,
      nodeId: 'a3',
      stateDir: join(dir, 'a3'),
      env: { ...envOf(connectionOf(siteA, 'agent', 'a3')), ALLOT_HEARTBEAT_MS: String(HEARTBEAT_MS), ALLOT_LABELS: 'site=a' },
    });
    const ids = (rows: NodeRow[]) => rows.map((r) => r.nodeId);
    await waitFor(async () => ids(await nodesOf(await client(siteA, 'reader', 'reader'))).includes('a3'), {
      timeoutMs: 10_000,
      intervalMs: 100,
      message: 'site A to list a3',
    });
    // The hub still runs the link account that lists a1 and a2 only: a3's snapshots stop there.
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    expect(ids(await nodesOf(await client('hub', 'reader', 'reader')))).not.toContain('a3');
    await reload(hub, hubBefore, sites.hubAuthConfig);
    // A reload does not change the permissions of a leaf connection already up (nats-server 2.15.1: a3 stayed out for
    // as long as we waited); the link must connect again, here by restarting the hub.
    await hub.restart();
    await waitFor(
      async () => (await nodesOf(await client('hub', 'reader', 'reader'))).some((r) => r.nodeId === 'a3' && r.liveness === 'ready'),
      { timeoutMs: 10_000, intervalMs: 100, message: 'the combined view to list a3 ready after the hub reloaded' },
    );
  });

  it('runs the view without calling any agent: nothing in its log above a warning', () => {
    const errors = viewCoordinator.lines.filter((l) => typeof l === 'object' && Number(l['level']) >= 50);
    expect(errors.map((l) => (typeof l === 'object' ? l['msg'] : l))).toEqual([]);
  });
});
