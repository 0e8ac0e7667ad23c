import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  agentSubject,
  AGENT_ENDPOINTS,
  ClusterAllocationsReplySchema,
  coordinatorSubject,
  encode,
  EvacuateReplySchema,
  eventSubject,
  HostLimitsSchema,
  KV_NODES,
  MoveSchema,
  NodesReplySchema,
  PlaceBatchReplySchema,
  PlaceReplySchema,
  tenantSubject,
  TenantQuotaViewSchema,
  usageSubject,
} from '@allot/protocol';
import { AllocationSchema, HealthSchema, type NatsConnectionConfig } from '@allot/core';
import { connectNats, requestTyped, silentLogger } from '@allot/nats';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Packr } from 'msgpackr';
import { followNodeLeases, NodeLeaseTable } from '../../apps/coordinator/src/liveness.ts';
import { jetstream } from '../../apps/coordinator/src/nats-deps.ts';
import { quietLogger } from '../../apps/coordinator/src/testing/cluster.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDeployment, type Deployment } from '../../apps/cli/src/security/deployment.ts';
import { setupStorage } from '../../apps/cli/src/security/setup.ts';
import {
  cleanupAll,
  COORDINATOR_MAIN,
  isLogMsg,
  spawnProcess,
  startAgent,
  startNatsServer,
  tempDir,
  type AgentHandle,
  type NatsServerHandle,
  type ProcessHandle,
} from '../harness/index.ts';

/*
 * The roles of docs/security.md, enforced by a real nats-server with the configuration `allot security` generates:
 * each identity connects with its nkey and client certificate and can do only what its role allows.
 */

let server: NatsServerHandle;
let deployment: Deployment;
let coordinator: ProcessHandle;
const agents: AgentHandle[] = [];
const clients = new Map<string, NatsConnection>();

const SHORT = { timeoutMs: 1_500 };

function connectionOf(role: string, name: string): NatsConnectionConfig {
  const found = deployment.identities.find((i) => i.identity.role === role && i.identity.name === name);
  if (found === undefined) throw new Error(`no identity ${role}/${name}`);
  return { ...found.connection, servers: [server.url] };
}

async function client(role: string, name: string): Promise<NatsConnection> {
  const key = `${role}/${name}`;
  const open = clients.get(key);
  if (open !== undefined) return open;
  const connected = await connectNats(connectionOf(role, name), { name: `test-${role}-${name}`, logger: silentLogger });
  if (!connected.ok) throw new Error(connected.error.message);
  clients.set(key, connected.value);
  return connected.value;
}

function envOf(c: NatsConnectionConfig): Record<string, string> {
  return {
    ALLOT_NATS_SERVERS: c.servers.join(','),
    ALLOT_NATS_NKEY_SEED_FILE: c.nkeySeedFile ?? '',
    ALLOT_NATS_TLS_CA: c.tls?.caFile ?? '',
    ALLOT_NATS_TLS_CERT: c.tls?.certFile ?? '',
    ALLOT_NATS_TLS_KEY: c.tls?.keyFile ?? '',
  };
}

/** How many times `payload`, published by `from` on `subject`, reaches a subscriber (the admin identity). */
async function delivered(from: NatsConnection, subject: string, payload: unknown): Promise<number> {
  const admin = await client('admin', 'admin');
  const bytes = Buffer.from(encode(payload));
  let seen = 0;
  // Only the forged message counts: the real agent of that node publishes on the same subject.
  const sub = admin.subscribe(subject, { callback: (e, m) => void (e === null && bytes.equals(m.data) ? (seen += 1) : undefined) });
  await admin.flush();
  from.publish(subject, encode(payload));
  await from.flush().catch(() => undefined);
  await new Promise((r) => setTimeout(r, 300));
  sub.unsubscribe();
  return seen;
}

const place = (tenant: string, requestId: string, bodyTenant = tenant) => ({
  request: { requestId, tenantId: bodyTenant, resources: { memoryMiB: 256, vcpus: 1 } },
});

beforeAll(async () => {
  const dir = await tempDir('security');
  const made = await ensureDeployment(join(dir, 'deploy'), [
    { role: 'agent', name: 'a' },
    { role: 'agent', name: 'b' },
    { role: 'scheduler', name: 't' },
    { role: 'scheduler', name: 'u' },
  ]);
  if (!made.ok) throw new Error(made.error.message);
  deployment = made.value;
  server = await startNatsServer({ extraConfig: await readFile(deployment.authConfig, 'utf8') });

  // Deploy time: the admin makes the streams and buckets; nobody else may.
  const storage = await setupStorage(await client('admin', 'admin'), 1);
  expect(storage.ok).toBe(true);

  const file = join(dir, 'coordinator.json');
  await writeFile(
    file,
    JSON.stringify({
      coordinatorId: 'c1',
      nats: connectionOf('coordinator', 'coordinator'),
      logLevel: 'info',
      liveness: { suspectAfterMs: 3_000, lostAfterMs: 60_000, checkEveryMs: 100 },
    }),
  );
  coordinator = spawnProcess({
    name: 'coordinator c1',
    script: COORDINATOR_MAIN,
    args: ['--config', file],
    env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
  });
  await coordinator.waitForLine(isLogMsg('coordinator ready'), 30_000);
  for (const nodeId of ['a', 'b']) {
    agents.push(
      await startAgent({
        natsUrl: server.url,
        nodeId,
        stateDir: join(dir, nodeId),
        env: { ...envOf(connectionOf('agent', nodeId)), ALLOT_HEARTBEAT_MS: '500' },
      }),
    );
  }
  const reader = await client('reader', 'reader');
  for (let i = 0; ; i++) {
    const nodes = await requestTyped(reader, coordinatorSubject('nodes'), {}, NodesReplySchema, SHORT);
    if (nodes.ok && nodes.value.nodes.filter((n) => n.liveness === 'ready').length === 2) break;
    if (i > 100) throw new Error(`the agents never became ready: ${JSON.stringify(nodes)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 90_000);

afterAll(async () => {
  for (const nc of clients.values()) await nc.close().catch(() => undefined);
  await cleanupAll();
});

describe('a secured deployment (allot security, nats-server with the generated permissions)', () => {
  it('refuses a client without an nkey, even with a client certificate, and one without a certificate', async () => {
    const { nkeySeedFile: _seed, ...certOnly } = connectionOf('reader', 'reader');
    const noKey = await connectNats(certOnly, { name: 'anonymous', logger: silentLogger });
    expect(noKey.ok).toBe(false);
    const { tls: _tls, ...keyOnly } = connectionOf('reader', 'reader');
    const noCert = await connectNats(
      { ...keyOnly, tls: { caFile: connectionOf('reader', 'reader').tls?.caFile ?? '', handshakeFirst: false } },
      { name: 'no-cert', logger: silentLogger },
    );
    expect(noCert.ok).toBe(false);
  });

  it('a tenant places, checks and releases through the coordinators on its own subject', async () => {
    const t = await client('scheduler', 't');
    const placed = await requestTyped(t, tenantSubject('t', 'place'), place('t', 'sec-t-1'), PlaceReplySchema, { timeoutMs: 10_000 });
    expect(placed.ok).toBe(true);
    const released = await requestTyped(
      t,
      tenantSubject('t', 'release'),
      { requestId: 'sec-t-1-rel', placementRequestId: 'sec-t-1' },
      AllocationSchema,
      { timeoutMs: 10_000 },
    );
    expect(released.ok).toBe(true);
  });

  it('a scheduler for t cannot place, check or release for u: the server drops the subject, the coordinator refuses the body', async () => {
    const t = await client('scheduler', 't');
    const u = await client('scheduler', 'u');
    const held = await requestTyped(u, tenantSubject('u', 'place'), place('u', 'sec-u-1'), PlaceReplySchema, { timeoutMs: 10_000 });
    expect(held.ok).toBe(true);

    for (const verb of ['place', 'check', 'release'] as const) {
      const body = verb === 'release' ? { requestId: 'sec-t-steal', placementRequestId: 'sec-u-1' } : place('u', `sec-t-as-u-${verb}`);
      const r = await requestTyped(t, tenantSubject('u', verb), body, PlaceReplySchema, SHORT);
      expect(r.ok, `${verb} on u's subject`).toBe(false);
    }
    // On its own subject, a body naming u is refused; a release of u's placement finds nothing of t's.
    const named = await requestTyped(t, tenantSubject('t', 'place'), place('t', 'sec-t-body-u', 'u'), PlaceReplySchema, SHORT);
    expect(named.ok ? 'placed' : named.error.code).toBe('invalid_request');
    const stolen = await requestTyped(
      t,
      tenantSubject('t', 'release'),
      { requestId: 'sec-t-steal-2', placementRequestId: 'sec-u-1' },
      AllocationSchema,
      SHORT,
    );
    expect(stolen.ok ? 'released' : stolen.error.code).toBe('not_found');
    const stolenAsU = await requestTyped(
      t,
      tenantSubject('t', 'release'),
      { requestId: 'sec-t-steal-3', placementRequestId: 'sec-u-1', tenantId: 'u' },
      AllocationSchema,
      SHORT,
    );
    expect(stolenAsU.ok ? 'released' : stolenAsU.error.code).toBe('invalid_request');
  });

  it("a scheduler's batch is its own tenant's: another tenant's subject is dropped, a body or member naming another tenant is refused, another tenant's request id is conflict and stays theirs", async () => {
    const t = await client('scheduler', 't');
    const u = await client('scheduler', 'u');
    const held = await requestTyped(u, tenantSubject('u', 'place'), place('u', 'sec-u-batch-victim'), PlaceReplySchema, {
      timeoutMs: 10_000,
    });
    expect(held.ok).toBe(true);
    const member = (tenantId: string, requestId: string) => ({ requestId, tenantId, resources: { memoryMiB: 256, vcpus: 1 } });
    const batch = (batchId: string, tenantId: string, members: unknown[]) => ({ batchId, tenantId, members });
    const ask = (subjectTenant: string, body: unknown) =>
      requestTyped(t, tenantSubject(subjectTenant, 'place.batch'), body, PlaceBatchReplySchema, SHORT);

    const onU = await ask('u', batch('sec-b1', 'u', [member('u', 'sec-b1-0')]));
    expect(onU.ok ? 'placed' : onU.error.code).not.toBe('placed');
    const bodyU = await ask('t', batch('sec-b2', 'u', [member('u', 'sec-b2-0')]));
    expect(bodyU.ok ? 'placed' : bodyU.error.code).toBe('invalid_request');
    const memberU = await ask('t', batch('sec-b3', 't', [member('t', 'sec-b3-0'), member('u', 'sec-b3-1')]));
    expect(memberU.ok ? 'placed' : memberU.error.code).toBe('invalid_request');
    const theirs = await ask('t', batch('sec-b4', 't', [member('t', 'sec-b4-0'), member('t', 'sec-u-batch-victim')]));
    expect(theirs.ok ? 'placed' : theirs.error).toMatchObject({ code: 'conflict', details: { requestId: 'sec-u-batch-victim' } });
    // u's placement is untouched and still u's.
    const again = await requestTyped(u, tenantSubject('u', 'place'), place('u', 'sec-u-batch-victim'), PlaceReplySchema, SHORT);
    expect(again.ok && again.value.allocation.id).toBe(held.ok && held.value.allocation.id);
  });

  it("a scheduler resizes its own tenant's VM on its subject; on another tenant's subject the server drops it", async () => {
    const t = await client('scheduler', 't');
    const u = await client('scheduler', 'u');
    const placed = await requestTyped(t, tenantSubject('t', 'place'), place('t', 'sec-t-resize'), PlaceReplySchema, { timeoutMs: 10_000 });
    if (!placed.ok) throw new Error(placed.error.message);
    const { allocation } = placed.value;
    const resize = (requestId: string) => ({
      requestId,
      allocationId: allocation.id,
      resources: { memoryMiB: allocation.granted.memoryMiB, vcpus: allocation.granted.vcpus + 1 },
    });
    const asU = await requestTyped(u, tenantSubject('t', 'resize'), resize('sec-u-resize'), AllocationSchema, SHORT);
    expect(asU.ok).toBe(false);
    const onU = await requestTyped(u, tenantSubject('u', 'resize'), resize('sec-u-resize-2'), AllocationSchema, SHORT);
    expect(onU.ok ? 'resized' : onU.error.code).toBe('not_found');
    const own = await requestTyped(t, tenantSubject('t', 'resize'), resize('sec-t-resize-1'), AllocationSchema, { timeoutMs: 10_000 });
    expect(own.ok ? own.value.granted.vcpus : own.error.message).toBe(allocation.granted.vcpus + 1);
  });

  it("a scheduler moves its own tenant's VM and confirms on its subjects (allot.sched.<t>.move, .move.confirm); another tenant's scheduler is dropped; only an operator evacuates", async () => {
    const t = await client('scheduler', 't');
    const u = await client('scheduler', 'u');
    const placed = await requestTyped(t, tenantSubject('t', 'place'), place('t', 'sec-t-move'), PlaceReplySchema, { timeoutMs: 10_000 });
    if (!placed.ok) throw new Error(placed.error.message);
    const { allocation } = placed.value;
    const move = { requestId: 'sec-mv-1', allocationId: allocation.id };
    expect((await requestTyped(u, tenantSubject('t', 'move'), move, MoveSchema, SHORT)).ok).toBe(false);
    const held = await requestTyped(t, tenantSubject('t', 'move'), move, MoveSchema, { timeoutMs: 10_000 });
    expect(held.ok ? held.value.state : held.error.message).toBe('held');
    expect((await requestTyped(u, tenantSubject('t', 'move.confirm'), move, MoveSchema, SHORT)).ok).toBe(false);
    const confirmed = await requestTyped(t, tenantSubject('t', 'move.confirm'), move, MoveSchema, { timeoutMs: 10_000 });
    expect(confirmed.ok ? confirmed.value.state : confirmed.error.message).toBe('confirmed');
    const evacuate = { requestId: 'sec-ev-1', nodeId: 'a' };
    expect((await requestTyped(t, coordinatorSubject('evacuate'), evacuate, EvacuateReplySchema, SHORT)).ok).toBe(false);
    const operator = await client('operator', 'operator');
    const plan = await requestTyped(operator, coordinatorSubject('evacuate'), evacuate, EvacuateReplySchema, { timeoutMs: 10_000 });
    expect(plan.ok ? plan.value.nodeId : plan.error.message).toBe('a');
  });

  it('a reader reads but cannot mutate', async () => {
    const reader = await client('reader', 'reader');
    expect((await requestTyped(reader, coordinatorSubject('nodes'), {}, NodesReplySchema, SHORT)).ok).toBe(true);
    const quota = await requestTyped(
      reader,
      coordinatorSubject('quota.set'),
      { requestId: 'q-r', quota: { tenantId: 't', maxVms: 100 } },
      TenantQuotaViewSchema,
      SHORT,
    );
    expect(quota.ok).toBe(false);
    expect((await requestTyped(reader, tenantSubject('t', 'place'), place('t', 'sec-r-1'), PlaceReplySchema, SHORT)).ok).toBe(false);
    expect((await requestTyped(reader, coordinatorSubject('cordon'), { requestId: 'c-r', nodeId: 'a' }, AllocationSchema, SHORT)).ok).toBe(
      false,
    );
    // The operator can.
    const operator = await client('operator', 'operator');
    expect(
      (
        await requestTyped(
          operator,
          coordinatorSubject('quota.set'),
          { requestId: 'q-o', quota: { tenantId: 't', maxVms: 100 } },
          TenantQuotaViewSchema,
          { timeoutMs: 5_000 },
        )
      ).ok,
    ).toBe(true);
  });

  it("only an operator reads or changes a node's limits or lists every node's allocations: a tenant's scheduler and a reader are refused by the server", async () => {
    const asked = { requestId: 'lim-forged', nodeId: 'a', memory: { systemReserve: 1_234 } };
    for (const [role, name] of [
      ['scheduler', 't'],
      ['reader', 'reader'],
    ] as const) {
      const nc = await client(role, name);
      const update = await requestTyped(nc, coordinatorSubject('limits.update'), asked, HostLimitsSchema, SHORT);
      expect(update.ok, `${role} ${name} changing a's limits`).toBe(false);
      const read = await requestTyped(nc, coordinatorSubject('limits.get'), { nodeId: 'a' }, HostLimitsSchema, SHORT);
      expect(read.ok, `${role} ${name} reading a's limits`).toBe(false);
      const listed = await requestTyped(nc, coordinatorSubject('allocations'), {}, ClusterAllocationsReplySchema, SHORT);
      expect(listed.ok, `${role} ${name} listing every node's allocations`).toBe(false);
    }
    const operator = await client('operator', 'operator');
    const held = await requestTyped(operator, coordinatorSubject('limits.get'), { nodeId: 'a' }, HostLimitsSchema, { timeoutMs: 5_000 });
    expect(held.ok).toBe(true);
    if (!held.ok) return;
    expect(held.value.memory.systemReserve, 'the refused change left nothing behind').not.toBe(1_234);
    const changed = await requestTyped(
      operator,
      coordinatorSubject('limits.update'),
      { requestId: 'lim-op', nodeId: 'a', memory: { systemReserve: held.value.memory.systemReserve + 1 } },
      HostLimitsSchema,
      { timeoutMs: 5_000 },
    );
    expect(changed.ok && changed.value.memory.systemReserve).toBe(held.value.memory.systemReserve + 1);
    expect(
      (
        await requestTyped(operator, coordinatorSubject('allocations'), { tenantId: 'u' }, ClusterAllocationsReplySchema, {
          timeoutMs: 5_000,
        })
      ).ok,
    ).toBe(true);
  });

  it("a reader reads the cluster's health, a tenant's scheduler does not", async () => {
    const health = await requestTyped(await client('reader', 'reader'), coordinatorSubject('health'), {}, HealthSchema, {
      timeoutMs: 5_000,
    });
    expect(health.ok).toBe(true);
    expect((await requestTyped(await client('scheduler', 't'), coordinatorSubject('health'), {}, HealthSchema, SHORT)).ok).toBe(false);
  });

  it('nobody but a coordinator reaches an agent: a tenant allocating directly (attack 1), a reader, an operator, another agent', async () => {
    const direct = { requestId: 'sec-direct-1', tenantId: 't', resources: { memoryMiB: 256, vcpus: 1 } };
    for (const [role, name] of [
      ['scheduler', 't'],
      ['reader', 'reader'],
      ['operator', 'operator'],
      ['agent', 'b'],
    ] as const) {
      const nc = await client(role, name);
      const r = await requestTyped(nc, agentSubject('a', 'allocate'), direct, AGENT_ENDPOINTS.allocate.reply, SHORT);
      expect(r.ok, `${role} ${name} allocating on a`).toBe(false);
    }
    const admin = await client('admin', 'admin');
    const held = await requestTyped(
      admin,
      agentSubject('a', 'allocations'),
      { status: 'all', requestId: 'sec-direct-1' },
      AGENT_ENDPOINTS.allocations.reply,
      { timeoutMs: 5_000 },
    );
    expect(held.ok && held.value.allocations).toEqual([]);
  });

  it("agent a cannot receive b's requests nor publish usage or events as b", async () => {
    const a = await client('agent', 'a');
    let stolen = 0;
    // The server refuses the subscription: the callback hears only the permissions error, never a request.
    const sub = a.subscribe(agentSubject('b', 'health'), { callback: (e) => void (e === null ? (stolen += 1) : undefined) });
    await a.flush().catch(() => undefined);
    const admin = await client('admin', 'admin');
    const health = await requestTyped(admin, agentSubject('b', 'health'), {}, AGENT_ENDPOINTS.health.reply, { timeoutMs: 5_000 });
    expect(health.ok && health.value.nodeId).toBe('b');
    expect(stolen).toBe(0);
    sub.unsubscribe();

    expect(await delivered(a, usageSubject('b'), { nodeId: 'b', forged: true })).toBe(0);
    expect(await delivered(a, eventSubject('b', 'allocated'), { kind: 'allocated', nodeId: 'b', at: Date.now() })).toBe(0);
    // Its own subjects pass (the control).
    expect(await delivered(a, eventSubject('a', 'cordoned'), { kind: 'cordoned', nodeId: 'a', at: Date.now() })).toBe(1);
  });

  it("a coordinator watches every node's lease (its liveness); agent a cannot write or delete b's lease", async () => {
    // The coordinator's own feed: an ordered consumer on KV_allot_nodes, created under $JS.API, delivered to its inbox.
    const table = new NodeLeaseTable({ wall: Date.now, monotonic: () => performance.now() });
    const feed = await followNodeLeases(jetstream(await client('coordinator', 'coordinator')), table, { logger: quietLogger });
    await feed.caughtUp;
    expect([table.seen('a')?.bootId, table.seen('b')?.bootId]).toEqual([
      expect.any(String) as unknown as string,
      expect.any(String) as unknown as string,
    ]);
    await feed.stop();
    expect(coordinator.lines.some(isLogMsg('node leases not followed yet (no bucket, or JetStream away); retrying'))).toBe(false);

    const admin = new Kvm(jetstream(await client('admin', 'admin')));
    const before = await (await admin.open(KV_NODES)).get('b');
    const aKv = await new Kvm(jetstream(await client('agent', 'a'))).open(KV_NODES);
    const forged = new TextEncoder().encode(JSON.stringify({ identity: 'x', bootId: 'forged', host: 'a', pid: 1, since: 0 }));
    await expect(aKv.put('b', forged)).rejects.toThrow();
    await expect(aKv.delete('b')).rejects.toThrow();
    const after = await (await admin.open(KV_NODES)).get('b');
    expect(after?.operation).toBe('PUT');
    expect(JSON.parse(new TextDecoder().decode(after?.value)).bootId).toBe(JSON.parse(new TextDecoder().decode(before?.value)).bootId);
  });

  it("agent a's own lease written with a rollup header (Nats-Rollup: all) purges no other node's lease", async () => {
    // The agent may publish to its own key, and a header rides along: a rollup of the whole stream would erase every
    // node's lease (their liveness on the coordinators, and the guard against two agents on one node id).
    const admin = await new Kvm(jetstream(await client('admin', 'admin'))).open(KV_NODES);
    const before = await admin.get('b');
    expect(before?.operation).toBe('PUT');
    const a = await client('agent', 'a');
    const h = headers();
    h.set('Nats-Rollup', 'all');
    // a's own lease again (its agent reads it back as its own write and keeps serving for the later tests).
    const own = (await admin.get('a'))?.value as Uint8Array;
    await a.request(`$KV.${KV_NODES}.a`, own, { headers: h, timeout: 2_000 }).catch(() => undefined);
    expect((await admin.get('b'))?.operation).toBe('PUT');
  });

  it('a usage snapshot republished with another node id makes no phantom node (attack 2)', async () => {
    const a = await client('agent', 'a');
    const admin = await client('admin', 'admin');
    const real = await requestTyped(admin, agentSubject('a', 'usage'), {}, AGENT_ENDPOINTS.usage.reply, { timeoutMs: 5_000 });
    expect(real.ok).toBe(true);
    if (!real.ok) return;
    const phantom = { ...real.value, nodeId: 'phantom', seq: real.value.seq + 1_000, at: Date.now() };
    a.publish(usageSubject('a'), encode(phantom));
    a.publish(usageSubject('phantom'), encode(phantom));
    await a.flush();
    await new Promise((r) => setTimeout(r, 1_500));
    const nodes = await requestTyped(await client('reader', 'reader'), coordinatorSubject('nodes'), {}, NodesReplySchema, SHORT);
    expect(nodes.ok && nodes.value.nodes.map((n) => n.nodeId).sort()).toEqual(['a', 'b']);
  });

  it('an event whose error.details holds a BigInt takes no process down (attack 3)', async () => {
    const a = await client('agent', 'a');
    const event = { kind: 'refused', nodeId: 'a', at: Date.now(), error: { code: 'internal', message: 'x', details: { n: 2n ** 62n } } };
    a.publish(eventSubject('a', 'refused'), new Packr({ useRecords: false }).pack(event));
    await a.flush();
    await new Promise((r) => setTimeout(r, 1_000));
    const nodes = await requestTyped(await client('reader', 'reader'), coordinatorSubject('nodes'), {}, NodesReplySchema, SHORT);
    expect(nodes.ok).toBe(true);
    const exitedYet = await Promise.race([
      coordinator.exited.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 0)),
    ]);
    expect(exitedYet).toBe(false);
  });

  it('re-running the generator adds a node without touching issued identities', async () => {
    const before = deployment.identities.map((i) => `${i.identity.role}/${i.identity.name}/${i.identity.publicKey}`);
    const again = await ensureDeployment(deployment.dir, [{ role: 'agent', name: 'c' }]);
    expect(again.ok).toBe(true);
    if (!again.ok) return;
    const after = again.value.identities.map((i) => `${i.identity.role}/${i.identity.name}/${i.identity.publicKey}`);
    expect(after.filter((k) => !k.startsWith('agent/c/')).sort()).toEqual([...before].sort());
    expect(again.value.identities.filter((i) => i.created).map((i) => i.identity.name)).toEqual(['c']);
  });
});
