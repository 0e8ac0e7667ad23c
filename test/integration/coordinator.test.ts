import { encode, KV_PLACEMENTS, PlaceRequestSchema, type PlaceReply, type PlaceRequestInput } from '@allot/protocol';
import type { Allocation, AllotError, Result } from '@allot/core';
import { requestHash } from '@allot/coordinator';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentRequest, cleanupAll, startLocalCluster, waitFor, type LocalCluster } from '../harness/index.ts';

/*
 * Real nats-server, six real agent processes and two real coordinator processes, spoken to only over NATS.
 * - pool=storm: s1..s3, 128 cores, 32768 MiB: 128 placements of 256 MiB / 1 vCPU each, 384 in all.
 * - pool=main: a1..a3 in zones a, b, c, 128 cores x2 (256 vCPUs), 131072 MiB.
 * Hosts are large in cores because a simulated host's CPU "really used" grows by 40% of a core per committed vCPU and
 * an agent past 98% used reports itself unhealthy, which takes it out of placement before capacity is reached.
 * Agents heartbeat every 500 ms; the coordinators call a node suspect after 1.5 s of silence.
 * The cluster is shared: each test uses its own tenant and pool (or leaves the pool as it found it).
 */
const HEARTBEAT_MS = 500;
const SUSPECT_AFTER_MS = 3 * HEARTBEAT_MS;
const STORM = ['s1', 's2', 's3'];
const MAIN = ['a1', 'a2', 'a3'];
const ZONES: Record<string, string> = { a1: 'a', a2: 'b', a3: 'c' };

let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await startLocalCluster({
    agents: [
      ...STORM.map((nodeId) => ({ nodeId, simulatedHost: { cores: 128, memoryMiB: 32_768 }, cpuOvercommit: 1, labels: { pool: 'storm' } })),
      ...MAIN.map((nodeId) => ({
        nodeId,
        simulatedHost: { cores: 128, memoryMiB: 131_072 },
        cpuOvercommit: 2,
        labels: { pool: 'main', zone: ZONES[nodeId] as string },
      })),
    ],
    coordinators: 2,
    heartbeatMs: HEARTBEAT_MS,
    coordinatorConfig: {
      liveness: { suspectAfterMs: SUSPECT_AFTER_MS, lostAfterMs: 60_000, checkEveryMs: 100 },
      place: { agentTimeoutMs: 2_000, timeoutRetries: 0 },
    },
  });
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

const inPool = (pool: string) => [{ key: 'pool', op: 'In' as const, values: [pool] }];

function placeReq(
  requestId: string,
  tenantId: string,
  extra: Partial<PlaceRequestInput['placement']> = {},
  resources = { memoryMiB: 256, vcpus: 1 },
): PlaceRequestInput {
  return { request: { requestId, tenantId, resources }, placement: { constraints: inPool('main'), ...extra } };
}

function okValue<T>(r: Result<T>, what: string): T {
  if (!r.ok) throw new Error(`${what}: ${r.error.code}: ${r.error.message}`);
  return r.value;
}

function errorOf<T>(r: Result<T>, what: string): AllotError {
  if (r.ok) throw new Error(`${what}: expected an error, got ${JSON.stringify(r.value).slice(0, 300)}`);
  return r.error;
}

const place = (req: PlaceRequestInput, timeoutMs = 10_000) => cluster.sched('place', req, timeoutMs);

/** A client that retries the same request id on timeout/unavailable until it gets an answer (what a scheduler does). */
async function placeUntilAnswered(req: PlaceRequestInput, timeoutMs = 3_000, deadlineMs = 60_000): Promise<Result<PlaceReply>> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const r = await place(req, timeoutMs);
    if (r.ok || (r.error.code !== 'timeout' && r.error.code !== 'unavailable')) return r;
    if (Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every live allocation on the node (of the tenant), page by page: the agent answers at most 1,000 a page. */
async function liveOn(nodeId: string, tenantId?: string): Promise<Allocation[]> {
  const all: Allocation[] = [];
  for (let after: number | undefined; ;) {
    const page = okValue(
      await agentRequest(cluster.nc, nodeId, 'allocations', {
        status: 'live',
        limit: 1_000,
        ...(tenantId === undefined ? {} : { tenantId }),
        ...(after === undefined ? {} : { after }),
      }),
      `allocations on ${nodeId}`,
    );
    all.push(...page.allocations);
    if (!page.truncated) return all;
    expect(page.next).toBeDefined();
    after = page.next;
  }
}

/** Waits until every coordinator's view shows `count` live allocations on the pool's nodes (several agreeing answers). */
async function viewSettled(nodes: string[], count: (nodeId: string) => number): Promise<void> {
  let agreeing = 0;
  await waitFor(
    async () => {
      const r = okValue(await cluster.sched('nodes', {}), 'nodes');
      const fine = nodes.every((id) => r.nodes.find((n) => n.nodeId === id)?.snapshot.allocationCount === count(id));
      agreeing = fine ? agreeing + 1 : 0;
      return agreeing >= 6;
    },
    { timeoutMs: 10_000, intervalMs: 20, message: 'the coordinators to see the allocations' },
  );
}

async function liveCounts(nodes: string[]): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const n of nodes) m.set(n, (await liveOn(n)).length);
  return m;
}

/** Checks every acknowledged placement exists exactly once, on the node its reply named, and no request id is on two nodes. */
async function expectExactlyOnce(nodes: string[], tenantId: string, acked: Map<string, PlaceReply>): Promise<void> {
  const where = new Map<string, string[]>();
  const byId = new Map<string, Allocation>();
  for (const n of nodes) {
    for (const a of await liveOn(n, tenantId)) {
      where.set(a.requestId, [...(where.get(a.requestId) ?? []), n]);
      byId.set(a.requestId, a);
    }
  }
  const doubled = [...where].filter(([, ns]) => ns.length > 1);
  expect(doubled).toEqual([]);
  const unacked = [...where.keys()].filter((id) => !acked.has(id));
  expect(unacked).toEqual([]);
  for (const [id, reply] of acked) {
    expect(where.get(id), `placement ${id}`).toEqual([reply.nodeId]);
    expect(byId.get(id)?.id).toBe(reply.allocation.id);
  }
  expect(where.size).toBe(acked.size);
}

describe('coordinators over real agents', () => {
  it('never over-commits under 500 concurrent place requests across three agents', async () => {
    const requests = Array.from({ length: 500 }, (_, i) =>
      placeReq(`storm-${i}`, 'storm', { constraints: inPool('storm'), strategy: 'spread' }),
    );
    const results = await Promise.all(requests.map((r) => placeUntilAnswered(r, 20_000)));
    const acked = new Map<string, PlaceReply>();
    const codes: Record<string, number> = {};
    results.forEach((r, i) => {
      if (r.ok) acked.set(`storm-${i}`, r.value);
      else codes[r.error.code] = (codes[r.error.code] ?? 0) + 1;
    });
    // 384 fit in all; whatever was refused was refused for capacity, nothing else.
    expect(Object.keys(codes).filter((c) => c !== 'insufficient_capacity')).toEqual([]);
    expect(acked.size).toBeGreaterThan(300);
    expect(acked.size).toBeLessThanOrEqual(384);
    for (const n of STORM) {
      const u = okValue(await agentRequest(cluster.nc, n, 'usage', {}), `usage ${n}`);
      expect(u.memory.committed).toBeLessThanOrEqual(u.memory.effectiveCapacity);
      expect(u.cpu.committed).toBeLessThanOrEqual(u.cpu.effectiveCapacity);
    }
    await expectExactlyOnce(STORM, 'storm', acked);
    // Every place was answered, so every intent is settled: the tenant's usage counts exactly the acknowledged VMs.
    expect(okValue(await cluster.sched('quota.get', { tenantId: 'storm' }), 'quota.get').usage.vms).toBe(acked.size);
  });

  it('places where the strategy says: spread alternates, binpack fills one node, manual goes to the named node', async () => {
    const before = await liveCounts(MAIN);
    const added = new Map(MAIN.map((n) => [n, 0]));
    const bump = (n: string) => added.set(n, (added.get(n) ?? 0) + 1);
    const settle = () => viewSettled(MAIN, (n) => (before.get(n) ?? 0) + (added.get(n) ?? 0));

    const spreadNodes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = okValue(await place(placeReq(`spread-${i}`, 'strat', { strategy: 'spread' })), 'spread');
      spreadNodes.push(r.nodeId);
      bump(r.nodeId);
      await settle();
    }
    expect(new Set(spreadNodes.slice(0, 3)).size).toBe(3);
    expect(new Set(spreadNodes.slice(3, 6)).size).toBe(3);

    const binpackNodes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = okValue(await place(placeReq(`binpack-${i}`, 'strat', { strategy: 'binpack' })), 'binpack');
      binpackNodes.push(r.nodeId);
      bump(r.nodeId);
      await settle();
    }
    expect(new Set(binpackNodes).size).toBe(1);

    for (const target of MAIN) {
      const r = okValue(await place(placeReq(`manual-${target}`, 'strat', { strategy: 'manual', nodeId: target })), 'manual');
      expect(r.nodeId).toBe(target);
      expect(r.allocation.nodeId).toBe(target);
    }
  });

  it('holds label constraints and anti-affinity', async () => {
    for (let i = 0; i < 3; i++) {
      expect(
        okValue(
          await place(placeReq(`zone-b-${i}`, 'labels', { constraints: [...inPool('main'), { key: 'zone', op: 'In', values: ['b'] }] })),
          'zone In b',
        ).nodeId,
      ).toBe('a2');
      expect(
        okValue(
          await place(
            placeReq(`zone-not-ab-${i}`, 'labels', { constraints: [...inPool('main'), { key: 'zone', op: 'NotIn', values: ['a', 'b'] }] }),
          ),
          'zone NotIn a,b',
        ).nodeId,
      ).toBe('a3');
    }
    const none = errorOf(
      await place(placeReq('zone-z', 'labels', { constraints: [...inPool('main'), { key: 'zone', op: 'In', values: ['z'] }] })),
      'zone In z',
    );
    expect(none.code).toBe('insufficient_capacity');

    // All at once, so the coordinators' views cannot have seen the others: the agents enforce maxPerNode themselves
    // (the group and its maximum travel in the request's metadata) and a refused place moves to the next node.
    const groupNodes = (
      await Promise.all(
        [0, 1, 2].map((i) => place(placeReq(`web-${i}`, 'labels', { strategy: 'binpack', group: { name: 'web', maxPerNode: 1 } }))),
      )
    ).map((r) => okValue(r, 'group').nodeId);
    expect(new Set(groupNodes).size).toBe(3);
    const fourth = errorOf(await place(placeReq('web-3', 'labels', { group: { name: 'web', maxPerNode: 1 } })), 'fourth of the group');
    expect(fourth.code).toBe('insufficient_capacity');
  });

  it('never moves a placement off a node that may hold it: "no responders" after an earlier allocate is an unknown outcome', async () => {
    // What a coordinator that died left behind: the intent names node "gone", whose agent is down now, and the allocate
    // it sent there may have been committed. A retry must not place a second copy elsewhere.
    const req = PlaceRequestSchema.parse(placeReq('ghost-1', 'ghost-t'));
    const kv = await new Kvm(cluster.nc).open(KV_PLACEMENTS);
    // The intent key of the IntentStore (intents/intent-store.ts); no usage record needed for an uncounted tenant here.
    await kv.create(
      'intent.ghost-1',
      encode({
        requestId: 'ghost-1',
        tenantId: 'ghost-t',
        hash: requestHash(req),
        state: 'pending',
        nodeId: 'gone',
        attempt: 1,
        refusedBy: [],
        coordinatorId: 'c-dead',
        updatedAt: Date.now(),
        memoryMiB: 256,
        vcpus: 1,
      }),
    );
    const r = errorOf(await place(placeReq('ghost-1', 'ghost-t')), 'place following the intent');
    expect(r.code).toBe('timeout');
    for (const n of MAIN) expect(await liveOn(n, 'ghost-t')).toEqual([]);
  });

  it('activates at cluster scope a reservation placed through place, and reports efficiency over the schedulable nodes', async () => {
    const held = okValue(
      await place({
        request: { requestId: 'resv-1', tenantId: 'resv', resources: { memoryMiB: 512, vcpus: 1 }, reservation: { ttlMs: 60_000 } },
        placement: { constraints: inPool('main') },
      }),
      'reserve through place',
    );
    expect(held.allocation.status).toBe('reserved');
    const active = okValue(
      await cluster.sched('activate', { requestId: 'act-resv-1', allocationId: held.allocation.id, tenantId: 'resv' }),
      'activate',
    );
    expect([active.id, active.status]).toEqual([held.allocation.id, 'active']);
    // A retry of the same activation answers the same, on whichever coordinator it lands.
    expect(
      okValue(
        await cluster.sched('activate', { requestId: 'act-resv-1', allocationId: held.allocation.id, tenantId: 'resv' }),
        'activate again',
      ).status,
    ).toBe('active');
    expect((await liveOn(held.nodeId, 'resv')).map((a) => a.status)).toEqual(['active']);
    expect(
      errorOf(await cluster.sched('activate', { requestId: 'act-x', allocationId: 'nowhere:1', tenantId: 'resv' }), 'unknown node').code,
    ).toBe('not_found');

    const efficiency = okValue(await cluster.sched('efficiency', {}), 'efficiency');
    expect(efficiency.nodes).toBeGreaterThanOrEqual(MAIN.length);
    expect(efficiency.metrics.map((m) => m.resourceType).sort()).toEqual(['cpu', 'memory']);
    for (const m of efficiency.metrics) {
      expect(m.fragmentation).toBeGreaterThanOrEqual(0);
      expect(m.fragmentation).toBeLessThanOrEqual(1);
      expect(m.referenceRequestsThatFit).toBeGreaterThan(0);
    }
    okValue(await cluster.sched('release', { requestId: 'rel-resv-1', placementRequestId: 'resv-1', tenantId: 'resv' }), 'release');
  });

  it('refuses over quota (quota_exceeded with the limit and figures) and over rate (rate_limited with retryAfterMs)', async () => {
    okValue(await cluster.sched('quota.set', { requestId: 'q-set-1', quota: { tenantId: 'quota-t', maxVms: 2 } }), 'quota.set');
    okValue(
      await cluster.sched('quota.set', { requestId: 'q-set-2', quota: { tenantId: 'rate-t', placeRates: [{ count: 2, per: 'minute' }] } }),
      'quota.set',
    );
    // Every coordinator watches the quota bucket: give the other one time to see the records.
    await new Promise((resolve) => setTimeout(resolve, 300));

    okValue(await place(placeReq('quota-0', 'quota-t')), 'first within quota');
    okValue(await place(placeReq('quota-1', 'quota-t')), 'second within quota');
    const over = errorOf(await place(placeReq('quota-2', 'quota-t')), 'third over quota');
    expect(over.code).toBe('quota_exceeded');
    expect(over.details).toMatchObject({ tenantId: 'quota-t', limit: 'maxVms', limitValue: 2, current: 2, requested: 1 });
    const view = okValue(await cluster.sched('quota.get', { tenantId: 'quota-t' }), 'quota.get');
    expect(view.usage.vms).toBe(2);
    // A retry of an admitted request id is not a new placement: same reply, still within quota.
    expect(okValue(await place(placeReq('quota-0', 'quota-t')), 'retry').allocation.requestId).toBe('quota-0');

    // Rate limits are per coordinator: with two, a tenant gets up to 2 x 2 places this minute.
    const outcomes: Result<PlaceReply>[] = [];
    for (let i = 0; i < 8; i++) outcomes.push(await place(placeReq(`rate-${i}`, 'rate-t')));
    const admitted = outcomes.filter((r) => r.ok).length;
    expect(admitted).toBeGreaterThanOrEqual(2);
    expect(admitted).toBeLessThanOrEqual(4);
    const limited = outcomes.filter((r): r is { ok: false; error: AllotError } => !r.ok);
    expect(limited.length).toBeGreaterThan(0);
    for (const r of limited) {
      expect(r.error.code).toBe('rate_limited');
      expect(r.error.details).toMatchObject({ tenantId: 'rate-t', operation: 'place', rate: { count: 2, per: 'minute' } });
      expect(r.error.details?.['retryAfterMs']).toBeGreaterThan(0);
      expect(r.error.details?.['retryAfterMs']).toBeLessThanOrEqual(60_000);
    }
  });

  it('gives a cordoned node nothing, and drain lists what remains there', async () => {
    const cordoned = okValue(await cluster.sched('cordon', { requestId: 'cordon-a3', nodeId: 'a3', reason: 'test' }), 'cordon');
    expect(cordoned.cordoned).toBe(true);
    // The other coordinator learns it from a3's next snapshot.
    let agreeing = 0;
    await waitFor(
      async () => {
        const n = okValue(await cluster.sched('node', { nodeId: 'a3' }), 'node');
        agreeing = n.snapshot.cordoned ? agreeing + 1 : 0;
        return agreeing >= 6;
      },
      { timeoutMs: 10_000, intervalMs: 20, message: 'a3 cordoned in every view' },
    );
    for (let i = 0; i < 8; i++)
      expect(okValue(await place(placeReq(`cordon-${i}`, 'cordon', { strategy: 'spread' })), 'spread').nodeId).not.toBe('a3');
    const manual = errorOf(
      await place(placeReq('cordon-manual', 'cordon', { strategy: 'manual', nodeId: 'a3' })),
      'manual to a cordoned node',
    );
    expect(manual.code).toBe('insufficient_capacity');
    expect(await liveOn('a3', 'cordon')).toEqual([]);

    const drained = okValue(await cluster.sched('drain', { requestId: 'drain-a3', nodeId: 'a3' }), 'drain');
    expect(drained.cordoned).toBe(true);
    const onA3 = await liveOn('a3');
    expect(onA3.length).toBeGreaterThan(0);
    expect(drained.remaining.map((a) => a.id).sort()).toEqual(onA3.map((a) => a.id).sort());

    okValue(await cluster.sched('uncordon', { requestId: 'uncordon-a3', nodeId: 'a3' }), 'uncordon');
    await waitFor(async () => !okValue(await cluster.sched('node', { nodeId: 'a3' }), 'node').snapshot.cordoned, {
      timeoutMs: 10_000,
      message: 'a3 uncordoned',
    });
  });

  it('turns a stopped agent suspect within the TTL, places nothing there, and takes it back when it resumes', async () => {
    const agent = cluster.agents.get('a1');
    if (agent === undefined) throw new Error('no agent a1');
    const stoppedAt = Date.now();
    process.kill(agent.pid, 'SIGSTOP');
    try {
      await cluster.waitForNodes(['a1'], 'suspect', SUSPECT_AFTER_MS + 3 * HEARTBEAT_MS + 1_000);
      // Measured from the stop: the last heartbeat may be up to one interval older than that.
      expect(Date.now() - stoppedAt).toBeLessThan(SUSPECT_AFTER_MS + 3 * HEARTBEAT_MS + 1_000);
      const suspect = okValue(await cluster.sched('nodes', { liveness: 'suspect' }), 'nodes');
      expect(suspect.nodes.map((n) => n.nodeId)).toEqual(['a1']);
      for (let i = 0; i < 6; i++)
        expect(okValue(await place(placeReq(`stopped-${i}`, 'stopped', { strategy: 'spread' })), 'spread').nodeId).not.toBe('a1');
    } finally {
      process.kill(agent.pid, 'SIGCONT');
    }
    await cluster.waitForNodes(['a1'], 'ready', 10_000);
    expect(await liveOn('a1', 'stopped')).toEqual([]);
  });

  it('loses and duplicates nothing when one of two coordinators is killed during a placement storm', async () => {
    const TOTAL = 300;
    const WINDOW = 40;
    const acked = new Map<string, PlaceReply>();
    const failures: AllotError[] = [];
    let next = 0;
    const victim = cluster.coordinators[0];
    if (victim === undefined) throw new Error('no coordinator');
    let killed = false;
    const killer = (async () => {
      await waitFor(() => acked.size >= 60, { timeoutMs: 60_000, intervalMs: 5, message: '60 placements before the kill' });
      await victim.kill();
      killed = true;
    })();
    await Promise.all(
      Array.from({ length: WINDOW }, async () => {
        while (next < TOTAL) {
          const i = next++;
          const r = await placeUntilAnswered(
            placeReq(`kill-${i}`, 'kill', { strategy: i % 2 === 0 ? 'spread' : 'binpack' }),
            3_000,
            90_000,
          );
          if (r.ok) acked.set(`kill-${i}`, r.value);
          else failures.push(r.error);
        }
      }),
    );
    await killer;
    expect(killed).toBe(true);
    expect(failures).toEqual([]);
    expect(acked.size).toBe(TOTAL);
    await expectExactlyOnce(MAIN, 'kill', acked);
    // A second round of the same ids through the survivor answers the same allocations and creates nothing.
    for (const [id, reply] of [...acked].slice(0, 50)) {
      const again = okValue(
        await place(placeReq(id, 'kill', { strategy: Number(id.split('-')[1]) % 2 === 0 ? 'spread' : 'binpack' })),
        `retry ${id}`,
      );
      expect(again.allocation.id).toBe(reply.allocation.id);
    }
    await expectExactlyOnce(MAIN, 'kill', acked);
  });
});
