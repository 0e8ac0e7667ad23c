import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { AGENT_QUEUE, decode, encode, KV_NODES, replySchema, USAGE_STREAM, usageSubject, agentSubject } from '@allot/protocol';
import {
  AllocationSchema,
  UsageSnapshotSchema,
  type Allocation,
  type AllocationRequestInput,
  type AllotError,
  type Result,
} from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentRequest,
  cleanupAll,
  isLogMsg,
  readEvents,
  startAgent,
  startNatsServer,
  tempDir,
  waitFor,
  type AgentHandle,
  type NatsServerHandle,
} from '../harness/index.ts';

/*
 * The real agent as a child process on a real nats-server, spoken to only over NATS. Every agent is a simulated host
 * of 16 cores and 65536 MiB with overcommit 1.5 (memory) and 2 (cpu), so its figures are exact:
 * memory effective capacity floor(65536 x 1.5) = 98304 MiB, cpu 16 x 2 = 32 vCPUs.
 */
const HOST = { cores: 16, memoryMiB: 65_536 };
const MEMORY_EFFECTIVE = 98_304;
const CPU_EFFECTIVE = 32;

let server: NatsServerHandle;
let nc: NatsConnection;
let nodeCounter = 0;

beforeAll(async () => {
  // 4 MB so that a 2 MB payload reaches the agent, which must refuse it itself.
  server = await startNatsServer({ jetstream: true, maxPayload: 4 * 1024 * 1024 });
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
});

afterAll(async () => {
  await nc?.close();
  await cleanupAll();
});

/** A fresh node id and state dir per test, so tests share the server but never an agent's state. */
async function newNode(): Promise<{ nodeId: string; stateDir: string }> {
  nodeCounter += 1;
  return { nodeId: `node-${nodeCounter}`, stateDir: await tempDir('agent-state') };
}

function start(node: { nodeId: string; stateDir: string }, env: Record<string, string> = {}): Promise<AgentHandle> {
  return startAgent({ natsUrl: server.url, ...node, host: HOST, memoryOvercommit: 1.5, cpuOvercommit: 2, env });
}

function allocation(
  requestId: string,
  memoryMiB: number,
  vcpus: number,
  extra: Partial<AllocationRequestInput> = {},
): AllocationRequestInput {
  return { requestId, tenantId: 'tenant-a', resources: { memoryMiB, vcpus }, ...extra };
}

function okValue<T>(result: Result<T>, what: string): T {
  if (!result.ok) throw new Error(`${what}: ${result.error.code}: ${result.error.message}`);
  return result.value;
}

function errorOf<T>(result: Result<T>, what: string): AllotError {
  if (result.ok) throw new Error(`${what}: expected an error, got ${JSON.stringify(result.value).slice(0, 300)}`);
  return result.error;
}

async function usage(nodeId: string) {
  return okValue(await agentRequest(nc, nodeId, 'usage', {}), 'usage');
}

/** Every live allocation, page by page (at most 1,000 a page). */
async function liveAllocations(nodeId: string): Promise<Allocation[]> {
  const all: Allocation[] = [];
  for (let after: number | undefined; ;) {
    const page = okValue(
      await agentRequest(nc, nodeId, 'allocations', { status: 'live', limit: 1_000, ...(after === undefined ? {} : { after }) }),
      'allocations',
    );
    all.push(...page.allocations);
    if (!page.truncated) return all;
    expect(page.next).toBeDefined();
    after = page.next;
  }
}

/** A raw request with any bytes, the reply envelope decoded: what a broken or hostile client would see. */
async function rawRequest(subject: string, data: Uint8Array): Promise<Result<unknown>> {
  const reply = await nc.request(subject, data, { timeout: 10_000 });
  const envelope = decode(replySchema(AllocationSchema.or(AllocationSchema.partial())), reply.data, Number.POSITIVE_INFINITY);
  if (!envelope.ok) throw new Error(`malformed reply: ${envelope.error.message}`);
  return envelope.value as Result<unknown>;
}

describe('the agent over NATS', () => {
  it('grants an allocation with its amounts and a cpuset, shows it committed, and a release gives the capacity back', async () => {
    const node = await newNode();
    await start(node);

    const granted = okValue(await agentRequest(nc, node.nodeId, 'allocate', allocation('vm-1', 4_096, 4)), 'allocate');
    expect(granted).toMatchObject({
      requestId: 'vm-1',
      tenantId: 'tenant-a',
      nodeId: node.nodeId,
      status: 'active',
      granted: { memoryMiB: 4_096, vcpus: 4 },
    });
    expect(granted.cpu?.vcpus).toBe(4);
    expect(granted.cpu?.cpuset.length).toBeGreaterThan(0);
    for (const core of granted.cpu?.cpuset ?? []) expect(core).toBeLessThan(HOST.cores);

    const during = await usage(node.nodeId);
    expect(during.memory).toMatchObject({ committed: 4_096, effectiveCapacity: MEMORY_EFFECTIVE, allocationCount: 1 });
    expect(during.cpu).toMatchObject({ committed: 4, effectiveCapacity: CPU_EFFECTIVE });
    expect(during.allocationCount).toBe(1);

    const released = okValue(await agentRequest(nc, node.nodeId, 'release', { requestId: 'rel-1', allocationId: granted.id }), 'release');
    expect(released).toMatchObject({ id: granted.id, status: 'released' });
    const after = await usage(node.nodeId);
    expect(after.memory.committed).toBe(0);
    expect(after.cpu.committed).toBe(0);
    expect(after.allocationCount).toBe(0);
    expect(await liveAllocations(node.nodeId)).toEqual([]);
  });

  it('refuses what does not fit with insufficient_capacity, giving the requested, free and effective figures, and changes nothing', async () => {
    const node = await newNode();
    await start(node);
    okValue(await agentRequest(nc, node.nodeId, 'allocate', allocation('big', 90_000, 2)), 'allocate');

    const refused = errorOf(await agentRequest(nc, node.nodeId, 'allocate', allocation('too-big', 10_000, 2)), 'allocate too much');
    expect(refused.code).toBe('insufficient_capacity');
    expect(refused.details).toMatchObject({ requested: 10_000, free: MEMORY_EFFECTIVE - 90_000, effectiveCapacity: MEMORY_EFFECTIVE });

    const cpuRefused = errorOf(
      await agentRequest(nc, node.nodeId, 'allocate', allocation('too-many-vcpus', 1, CPU_EFFECTIVE)),
      'allocate too many vcpus',
    );
    expect(cpuRefused.code).toBe('insufficient_capacity');
    expect(cpuRefused.details).toMatchObject({ requested: CPU_EFFECTIVE, free: CPU_EFFECTIVE - 2, effectiveCapacity: CPU_EFFECTIVE });

    const after = await usage(node.nodeId);
    expect(after.memory.committed).toBe(90_000);
    expect(after.cpu.committed).toBe(2);
    expect((await liveAllocations(node.nodeId)).map((a) => a.requestId)).toEqual(['big']);
  });

  it('answers a retried request id with the same allocation and commits nothing new, and calls the same id with other amounts a conflict', async () => {
    const node = await newNode();
    await start(node);
    const first = okValue(await agentRequest(nc, node.nodeId, 'allocate', allocation('retry-me', 2_048, 2)), 'allocate');
    const again = okValue(await agentRequest(nc, node.nodeId, 'allocate', allocation('retry-me', 2_048, 2)), 'retry');
    expect(again.id).toBe(first.id);
    expect(again.cpu?.cpuset).toEqual(first.cpu?.cpuset);

    const changed = errorOf(await agentRequest(nc, node.nodeId, 'allocate', allocation('retry-me', 4_096, 2)), 'same id, other amounts');
    expect(changed.code).toBe('conflict');

    const after = await usage(node.nodeId);
    expect(after.memory.committed).toBe(2_048);
    expect(after.cpu.committed).toBe(2);
    expect(await liveAllocations(node.nodeId)).toHaveLength(1);
  });

  it('loses no acknowledged allocation, never over-commits and creates no duplicate when killed -9 in the middle of 1,000 concurrent allocations', async () => {
    const node = await newNode();
    const agent = await start(node);
    // 128 MiB each: 768 fit the 98304 MiB, so the stream also runs into the capacity limit if the kill comes late.
    const EACH = 128;
    const TOTAL = 1_000;
    const WINDOW = 128;
    const KILL_AFTER_ACKS = 300;
    const ids = Array.from({ length: TOTAL }, (_, i) => `burst-${i}`);
    const acknowledged = new Map<string, Allocation>();
    let killing: Promise<unknown> | undefined;

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        const requestId = ids[next++] as string;
        const reply = await agentRequest(nc, node.nodeId, 'allocate', allocation(requestId, EACH, 0), 5_000);
        if (reply.ok) {
          acknowledged.set(requestId, reply.value);
          if (acknowledged.size === KILL_AFTER_ACKS) killing = agent.kill();
        }
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, worker));
    await killing;
    const exit = await agent.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(acknowledged.size).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);

    const restarted = await start(node);
    await restarted.waitForLine(isLogMsg('ledger recovered'));

    // Every acknowledged allocation survived, under its id and request id.
    const live = await liveAllocations(node.nodeId);
    const byId = new Map(live.map((a) => [a.id, a]));
    for (const [requestId, acked] of acknowledged) {
      expect(byId.get(acked.id)?.requestId, `acknowledged ${requestId} (${acked.id}) after the restart`).toBe(requestId);
    }
    const committed = (await usage(node.nodeId)).memory.committed;
    expect(committed).toBe(live.reduce((sum, a) => sum + a.granted.memoryMiB, 0));
    expect(committed).toBeLessThanOrEqual(MEMORY_EFFECTIVE);

    // Retrying every request id, acknowledged or not, yields one allocation per request id, the same for the acknowledged.
    let retryNext = 0;
    const retried = new Map<string, Result<Allocation>>();
    const retryWorker = async (): Promise<void> => {
      while (retryNext < TOTAL) {
        const requestId = ids[retryNext++] as string;
        retried.set(requestId, await agentRequest(nc, node.nodeId, 'allocate', allocation(requestId, EACH, 0), 10_000));
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, retryWorker));
    for (const [requestId, acked] of acknowledged) {
      const reply = retried.get(requestId);
      expect(reply?.ok && reply.value.id, `retry of acknowledged ${requestId}`).toBe(acked.id);
    }
    for (const [requestId, reply] of retried) {
      if (!reply.ok) expect(reply.error.code, `retry of ${requestId}`).toBe('insufficient_capacity');
    }
    const final = await liveAllocations(node.nodeId);
    const perRequest = new Map<string, number>();
    for (const a of final) perRequest.set(a.requestId, (perRequest.get(a.requestId) ?? 0) + 1);
    expect([...perRequest.values()].every((n) => n === 1)).toBe(true);
    expect(final.length).toBe(Math.min(TOTAL, Math.floor(MEMORY_EFFECTIVE / EACH)));
    const finalCommitted = (await usage(node.nodeId)).memory.committed;
    expect(finalCommitted).toBe(final.reduce((sum, a) => sum + a.granted.memoryMiB, 0));
    expect(finalCommitted).toBeLessThanOrEqual(MEMORY_EFFECTIVE);
  });

  /** Reserves `ttlMs` holds, stops the agent with SIGTERM, waits past the expiry and starts it again. */
  async function reserveStopAndOutlive(node: { nodeId: string; stateDir: string }, ttlMs: number) {
    const agent = await start(node);
    const held = okValue(
      await agentRequest(nc, node.nodeId, 'reserve', allocation('hold-short', 8_192, 4, { reservation: { ttlMs } })),
      'reserve',
    );
    expect(held.status).toBe('reserved');
    const kept = okValue(
      await agentRequest(nc, node.nodeId, 'reserve', allocation('hold-kept', 4_096, 2, { reservation: { ttlMs } })),
      'reserve',
    );
    const activated = okValue(
      await agentRequest(nc, node.nodeId, 'activate', { requestId: 'activate-kept', allocationId: kept.id }),
      'activate',
    );
    expect(activated.status).toBe('active');
    expect(await agent.stop('SIGTERM')).toBe(0);
    // Wait past the expiry on the wall clock (bounded: the ttl is short).
    const expiresAt = held.expiresAt ?? Number.POSITIVE_INFINITY;
    await waitFor(() => Date.now() > expiresAt + 200, {
      timeoutMs: ttlMs + 5_000,
      intervalMs: 50,
      message: 'the reservation to be overdue',
    });
    const restarted = await start(node);
    return { held, kept, restarted };
  }

  it('expires a reservation whose time ran out while the agent was stopped and frees its capacity, while an activated one stays', async () => {
    const node = await newNode();
    const { held, kept, restarted } = await reserveStopAndOutlive(node, 1_500);
    const recovered = await restarted.waitForLine(isLogMsg('ledger recovered'));
    expect(recovered).toMatchObject({ expiredWhileDown: 1 });

    const live = await liveAllocations(node.nodeId);
    expect(live.map((a) => [a.id, a.status])).toEqual([[kept.id, 'active']]);
    const after = await usage(node.nodeId);
    expect(after.memory).toMatchObject({ committed: 4_096, reserved: 0 });
    expect(after.cpu.committed).toBe(2);
    // The expired reservation cannot be activated any more, and its capacity is free again.
    expect(
      errorOf(await agentRequest(nc, node.nodeId, 'activate', { requestId: 'activate-late', allocationId: held.id }), 'late activate').code,
    ).toBe('conflict');
    // (One VM takes at most one vCPU per core of the 16, so the 30 free vCPUs take two allocations.)
    okValue(
      await agentRequest(nc, node.nodeId, 'allocate', allocation('fills-memory', MEMORY_EFFECTIVE - 4_096, 16)),
      'allocate the rest of the memory',
    );
    okValue(
      await agentRequest(nc, node.nodeId, 'allocate', allocation('fills-cpu', 0, CPU_EFFECTIVE - 2 - 16)),
      'allocate the rest of the vCPUs',
    );
    const full = await usage(node.nodeId);
    expect(full.memory.committed).toBe(MEMORY_EFFECTIVE);
    expect(full.cpu.committed).toBe(CPU_EFFECTIVE);
  });

  it('records an expired event in ALLOT_EVENTS for a reservation that expired while the agent was stopped', async () => {
    const node = await newNode();
    const { held, kept } = await reserveStopAndOutlive(node, 1_000);
    // The reserved and activated events made before the stop are there: the stream is read correctly.
    const before = await readEvents(nc, `allot.events.${node.nodeId}.>`);
    expect(
      before
        .filter((e) => e.kind === 'reserved')
        .map((e) => e.allocationId)
        .sort(),
    ).toEqual([held.id, kept.id].sort());
    expect(before.some((e) => e.kind === 'activated' && e.allocationId === kept.id)).toBe(true);

    const expired = await waitFor(
      async () => {
        const found = (await readEvents(nc, `allot.events.${node.nodeId}.expired`)).filter((e) => e.allocationId === held.id);
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 100, message: `an expired event for ${held.id} in ALLOT_EVENTS` },
    );
    expect(expired).toHaveLength(1);
  });

  it('records an expired event in ALLOT_EVENTS when a reservation runs out while the agent runs', async () => {
    const node = await newNode();
    await start(node);
    const held = okValue(
      await agentRequest(nc, node.nodeId, 'reserve', allocation('hold-live', 2_048, 1, { reservation: { ttlMs: 500 } })),
      'reserve',
    );
    const expired = await waitFor(
      async () => {
        const found = (await readEvents(nc, `allot.events.${node.nodeId}.expired`)).filter((e) => e.allocationId === held.id);
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: `an expired event for ${held.id} in ALLOT_EVENTS` },
    );
    expect(expired).toHaveLength(1);
    expect(await liveAllocations(node.nodeId)).toEqual([]);
    expect((await usage(node.nodeId)).memory.committed).toBe(0);
  });

  it('answers garbage, wrong types, negative, fractional and oversized payloads with invalid_request naming the field, and keeps serving', async () => {
    const node = await newNode();
    const agent = await start(node);
    const subject = agentSubject(node.nodeId, 'allocate');

    // 0xc1 is never used in msgpack.
    const garbage = errorOf(await rawRequest(subject, new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37])), 'garbage');
    expect(garbage.code).toBe('invalid_request');
    expect(garbage.message).toMatch(/msgpack/);

    const cases: Array<[string, unknown, string]> = [
      ['wrong type', { requestId: 'bad-1', tenantId: 'tenant-a', resources: { memoryMiB: 'lots', vcpus: 1 } }, 'resources.memoryMiB'],
      ['negative amount', { requestId: 'bad-2', tenantId: 'tenant-a', resources: { memoryMiB: -1, vcpus: 1 } }, 'resources.memoryMiB'],
      ['fractional amount', { requestId: 'bad-3', tenantId: 'tenant-a', resources: { memoryMiB: 1_024, vcpus: 1.5 } }, 'resources.vcpus'],
      ['request id of the wrong type', { requestId: 42, tenantId: 'tenant-a', resources: { memoryMiB: 1_024, vcpus: 1 } }, 'requestId'],
    ];
    for (const [what, payload, field] of cases) {
      const error = errorOf(await rawRequest(subject, encode(payload)), what);
      expect(error.code, what).toBe('invalid_request');
      expect(error.message, what).toContain(field);
      expect(
        (error.details?.['issues'] as Array<{ path: string }>).map((i) => i.path),
        what,
      ).toContain(field);
    }

    const big = new Uint8Array(2 * 1024 * 1024).fill(0x61);
    const oversized = errorOf(await rawRequest(subject, big), '2 MB payload');
    expect(oversized.code).toBe('invalid_request');
    expect(oversized.details).toMatchObject({ field: 'payload', bytes: big.byteLength });
    expect(oversized.message).toContain(String(big.byteLength));

    // Nothing changed, the process is up and still serves.
    expect((await usage(node.nodeId)).memory.committed).toBe(0);
    const fine = okValue(
      await agentRequest(nc, node.nodeId, 'allocate', allocation('good-after-bad', 1_024, 1)),
      'allocate after bad input',
    );
    expect(fine.status).toBe('active');
    const exited = await Promise.race([agent.exited.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 100))]);
    expect(exited).toBe(false);
  });

  it('publishes usage snapshots and allocated and released events to JetStream and answers the service ping', async () => {
    const node = await newNode();
    await start(node);
    const granted = okValue(await agentRequest(nc, node.nodeId, 'allocate', allocation('watched', 3_072, 3)), 'allocate');

    const jsm = await jetstreamManager(nc);
    const snapshot = await waitFor(
      async () => {
        const msg = await jsm.streams.getMessage(USAGE_STREAM, { last_by_subj: usageSubject(node.nodeId) });
        if (msg === null) return undefined;
        const decoded = decode(UsageSnapshotSchema, msg.data, Number.POSITIVE_INFINITY);
        return decoded.ok && decoded.value.memory.committed === 3_072 ? decoded.value : undefined;
      },
      { timeoutMs: 3_000, intervalMs: 100, message: `a usage snapshot on ${usageSubject(node.nodeId)} showing the allocation` },
    );
    expect(snapshot).toMatchObject({ nodeId: node.nodeId, allocationCount: 1, cpu: { committed: 3 } });

    okValue(await agentRequest(nc, node.nodeId, 'release', { requestId: 'release-watched', allocationRequestId: 'watched' }), 'release');
    const events = await waitFor(
      async () => {
        const all = await readEvents(nc, `allot.events.${node.nodeId}.>`);
        const allocated = all.find((e) => e.kind === 'allocated' && e.requestId === 'watched');
        // An ending event names the placement's request id (what its intent is keyed by), not the release's own id.
        const released = all.find((e) => e.kind === 'released' && e.requestId === 'watched');
        return allocated && released ? { allocated, released } : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 100, message: 'allocated and released events in ALLOT_EVENTS' },
    );
    expect(events.allocated).toMatchObject({
      nodeId: node.nodeId,
      allocationId: granted.id,
      tenantId: 'tenant-a',
      resources: { memoryMiB: 3_072, vcpus: 3 },
    });
    expect(events.released).toMatchObject({ nodeId: node.nodeId, allocationId: granted.id });

    const pings = new TextDecoder().decode((await nc.request('$SRV.PING.allot-agent', undefined, { timeout: 5_000 })).data);
    expect(JSON.parse(pings)).toMatchObject({ name: 'allot-agent', type: 'io.nats.micro.v1.ping_response' });
  });

  it('exits 0 on SIGTERM and recovers every allocation when started again, reporting how long recovery took', async () => {
    const node = await newNode();
    const agent = await start(node);
    const made: Allocation[] = [];
    for (let i = 0; i < 20; i++)
      made.push(okValue(await agentRequest(nc, node.nodeId, 'allocate', allocation(`keep-${i}`, 512, 1)), 'allocate'));
    okValue(await agentRequest(nc, node.nodeId, 'release', { requestId: 'drop-0', allocationId: made[0]?.id }), 'release');
    const before = await liveAllocations(node.nodeId);
    expect(before).toHaveLength(19);

    expect(await agent.stop('SIGTERM')).toBe(0);
    const restarted = await start(node);
    const recovered = await restarted.waitForLine(isLogMsg('ledger recovered'));
    expect(typeof recovered === 'object' && typeof recovered['recoveryMs'] === 'number').toBe(true);

    const after = await liveAllocations(node.nodeId);
    expect(after.map((a) => [a.id, a.requestId, a.cpu?.cpuset]).sort()).toEqual(
      before.map((a) => [a.id, a.requestId, a.cpu?.cpuset]).sort(),
    );
    const figures = await usage(node.nodeId);
    expect(figures.memory.committed).toBe(19 * 512);
    expect(figures.cpu.committed).toBe(19);
    const health = okValue(await agentRequest(nc, node.nodeId, 'health', {}), 'health');
    expect(health.recoveryMs).toBeGreaterThanOrEqual(0);
    // A retry of a request made before the restart is still the same allocation.
    expect(okValue(await agentRequest(nc, node.nodeId, 'allocate', allocation('keep-5', 512, 1)), 'retry').id).toBe(made[5]?.id);
  });

  it('stops with exit code 2 and names the key when a config value is bad', async () => {
    const node = await newNode();
    const agent = await startAgent({
      natsUrl: server.url,
      ...node,
      host: HOST,
      memoryOvercommit: 1.5,
      cpuOvercommit: 2,
      env: { ALLOT_MEMORY_OVERCOMMIT: '0.5' },
      waitReady: false,
    });
    const exit = await agent.exited;
    expect(exit.code).toBe(2);
    const stderr = agent.stderr.join('\n');
    expect(stderr).toContain('memory.overcommitRatio');
    expect(stderr).toContain('ALLOT_MEMORY_OVERCOMMIT');
    expect(agent.lines.some(isLogMsg('agent ready'))).toBe(false);
  });
});

describe('one agent per node id', () => {
  it('serves its subjects in a queue group, so a misconfigured twin and the agent never both handle one request', async () => {
    const node = await newNode();
    await start(node);
    // The twin: another subscriber in the agent's queue group on the allocate subject, answering every request itself.
    let twinHandled = 0;
    const twin = nc.subscribe(agentSubject(node.nodeId, 'allocate'), {
      queue: AGENT_QUEUE,
      callback: (_e, msg) => {
        twinHandled += 1;
        msg.respond(encode({ ok: false, error: { code: 'unavailable', message: 'twin' } }));
      },
    });
    await nc.flush();
    let agentAnswered = 0;
    for (let i = 0; i < 40; i++) {
      const r = await agentRequest(nc, node.nodeId, 'allocate', allocation(`twin-${i}`, 64, 1));
      if (r.ok) agentAnswered += 1;
    }
    twin.unsubscribe();
    const committed = (await liveAllocations(node.nodeId)).length;
    // Every request was handled exactly once: by the agent (and committed) or by the twin (and not committed).
    expect(committed).toBe(agentAnswered);
    expect(committed + twinHandled).toBe(40);
    expect(twinHandled).toBeGreaterThan(0);
    expect(committed).toBeGreaterThan(0);
  });

  it('refuses a second agent with the same node id and another state directory: it exits 2 naming the holder, the first keeps serving', async () => {
    const node = await newNode();
    const first = await start(node);
    okValue(await agentRequest(nc, node.nodeId, 'allocate', allocation('first-1', 1024, 1)), 'allocate');
    const second = await startAgent({
      natsUrl: server.url,
      nodeId: node.nodeId,
      stateDir: await tempDir('agent-state'),
      host: HOST,
      waitReady: false,
    });
    const exit = await Promise.race([second.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 20_000))]);
    expect(exit).not.toBe('running');
    if (exit === 'running') return;
    expect(exit.code).toBe(2);
    expect(second.lines.some(isLogMsg('agent ready'))).toBe(false);
    const refusal = second.lines.find(
      (l) => typeof l === 'object' && typeof l['msg'] === 'string' && l['msg'].includes('already served by'),
    );
    expect(refusal).toBeDefined();
    expect(String((refusal as Record<string, unknown>)['msg'])).toContain(`pid ${first.pid}`);
    // The first agent keeps its lease past a renewal (5 s) and serves as before.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(first.lines.some(isLogMsg('node lease lost'))).toBe(false);
    const figures = await usage(node.nodeId);
    expect(figures.memory.committed).toBe(1024);
    expect(okValue(await agentRequest(nc, node.nodeId, 'allocate', allocation('first-2', 1024, 1)), 'allocate').requestId).toBe('first-2');
  });

  it('stops serving and exits non-zero when another agent holds its lease at the next renewal', async () => {
    const node = await newNode();
    const agent = await start(node);
    const kv = await new Kvm(jetstream(nc)).open(KV_NODES);
    const intruder = { identity: 'someone-else', bootId: 'b', host: 'hv-other', pid: 1, since: Date.now() };
    await kv.put(node.nodeId, JSON.stringify(intruder));
    const exit = await Promise.race([agent.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 15_000))]);
    expect(exit).not.toBe('running');
    if (exit === 'running') return;
    expect(exit.code).toBe(1);
    expect(agent.lines.some(isLogMsg('node lease lost'))).toBe(true);
    const after = await agentRequest(nc, node.nodeId, 'usage', {}, 2_000);
    expect(after.ok).toBe(false);
  });
});
