import type { NodeLiveness } from '@allot/core';
import { ensureKv } from '@allot/nats';
import { encode, KV_NODES, usageSubject } from '@allot/protocol';
import type { KV } from '@nats-io/kv';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../apps/coordinator/src/coordinator.ts';
import { syntheticSnapshot } from '../../apps/coordinator/src/http/fixtures.ts';
import { jetstream, type JetStreamClient, type NatsConnection } from '../../apps/coordinator/src/nats-deps.ts';
import { connectTo, ensureTestStreams, startTestCoordinator } from '../../apps/coordinator/src/testing/cluster.ts';
import { cleanupAll, startNatsServer, waitFor, type NatsServerHandle } from '../harness/index.ts';

/*
 * Node leases as liveness, through a real nats-server and an in-process coordinator: the test writes reports into
 * ALLOT_USAGE and leases into KV allot_nodes as an agent would (value: the holder's identity and boot; bucket max_age
 * 15 s, renewed every 5 s). The coordinator counts a node suspect after 1 s of report silence unless its lease is
 * renewed (within 10 s: two renewal periods), lost after 3 s of report silence once its lease is gone.
 */
const LIVENESS = { suspectAfterMs: 1_000, lostAfterMs: 3_000, checkEveryMs: 100 };

let server: NatsServerHandle;
let nc: NatsConnection;
let js: JetStreamClient;
let kv: KV;
const coordinators: { coordinator: Coordinator; nc: NatsConnection }[] = [];

beforeEach(async () => {
  server = await startNatsServer();
  nc = await connectTo(server.url, 'lease-test');
  await ensureTestStreams(nc);
  js = jetstream(nc);
  const made = await ensureKv(js, KV_NODES, { history: 1, ttlMs: 15_000, replicas: 1 });
  if (!made.ok) throw new Error(made.error.message);
  kv = made.value;
});

afterEach(async () => {
  for (const c of coordinators.splice(0)) {
    await c.coordinator.stop();
    await c.nc.close();
  }
  await nc.close();
  await cleanupAll();
});

async function coordinator(): Promise<Coordinator> {
  const c = await startTestCoordinator(server.url, { coordinatorId: `c${coordinators.length}`, liveness: LIVENESS });
  coordinators.push(c);
  return c.coordinator;
}

/** A report as an agent with `idleStatusMs` 60 s sends it: coordinators judge such a node by its lease renewals. */
async function report(nodeId: string, seq = 1): Promise<void> {
  await js.publish(usageSubject(nodeId), encode({ ...syntheticSnapshot({ nodeId, seq }), idleStatusMs: 60_000 }));
}

/** The lease value an agent writes (node-lease.ts), for the boot syntheticSnapshot reports under. */
const leaseOf = (nodeId: string, bootId = `boot-${nodeId}`) =>
  new TextEncoder().encode(JSON.stringify({ identity: `identity-${nodeId}`, bootId, host: 'test', pid: 1, since: Date.now() }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const liveness = (c: Coordinator, nodeId: string): NodeLiveness | undefined => c.view.get(nodeId)?.liveness;

/** Records a node's liveness every 100 ms while `body` runs. */
async function watchLiveness(c: Coordinator, nodeId: string, body: () => Promise<void>): Promise<Set<NodeLiveness | undefined>> {
  const seen = new Set<NodeLiveness | undefined>();
  const timer = setInterval(() => seen.add(liveness(c, nodeId)), 100);
  try {
    await body();
  } finally {
    clearInterval(timer);
  }
  return seen;
}

describe('node leases as liveness', () => {
  it('keeps a node ready while its agent renews its lease though its reports stop (slow status)', async () => {
    await kv.put('n1', leaseOf('n1'));
    const c = await coordinator();
    await report('n1');
    await waitFor(() => liveness(c, 'n1') === 'ready', { message: 'n1 ready' });
    // 8 s without a report (8 x suspectAfterMs, past lostAfterMs), renewed every 2.5 s as an agent does (by CAS).
    const seen = await watchLiveness(c, 'n1', async () => {
      for (let i = 0; i < 4; i++) {
        await sleep(2_000);
        await kv.put('n1', leaseOf('n1'));
      }
    });
    expect([...seen]).toEqual(['ready']);
  }, 30_000);

  it('turns a node whose lease and reports stop suspect after two renewal periods, lost once the lease expires', async () => {
    await kv.put('n2', leaseOf('n2'));
    const c = await coordinator();
    await report('n2');
    await waitFor(() => liveness(c, 'n2') === 'ready', { message: 'n2 ready' });
    const stoppedAt = performance.now();
    await waitFor(() => liveness(c, 'n2') === 'suspect', { timeoutMs: 14_000, intervalMs: 50, message: 'n2 suspect' });
    const suspectAfter = performance.now() - stoppedAt;
    await waitFor(() => liveness(c, 'n2') === 'lost', { timeoutMs: 10_000, intervalMs: 50, message: 'n2 lost' });
    const lostAfter = performance.now() - stoppedAt;
    // Documented: suspect 10 s after the last renewal (not after 1 s of report silence), lost at the 15 s TTL.
    expect(suspectAfter).toBeGreaterThan(9_000);
    expect(suspectAfter).toBeLessThan(12_000);
    expect(lostAfter).toBeGreaterThan(14_500);
    expect(lostAfter).toBeLessThan(17_500);
  }, 40_000);

  it('sees a clean stop at once: a deleted lease makes its node suspect, then lost after lostAfterMs', async () => {
    await kv.put('n3', leaseOf('n3'));
    const c = await coordinator();
    await report('n3');
    await waitFor(() => liveness(c, 'n3') === 'ready', { message: 'n3 ready' });
    await report('n3', 2); // the last status an agent publishes at its stop
    await kv.delete('n3');
    const deletedAt = performance.now();
    await waitFor(() => liveness(c, 'n3') === 'suspect', { timeoutMs: 5_000, intervalMs: 20, message: 'n3 suspect' });
    expect(performance.now() - deletedAt).toBeLessThan(700); // before suspectAfterMs (1 s) of report silence
    await waitFor(() => liveness(c, 'n3') === 'lost', { timeoutMs: 6_000, intervalMs: 50, message: 'n3 lost' });
    expect(performance.now() - deletedAt).toBeLessThan(4_500);
  }, 30_000);

  it('on a cold start, takes every node liveness from the leases: renewed ready though its last report is old, lost without a lease', async () => {
    await report('renewing');
    await report('silent');
    await kv.put('renewing', leaseOf('renewing'));
    await kv.put('other-boot', leaseOf('other-boot', 'another-boot'));
    await report('other-boot');
    await sleep(4_000); // every report older than lostAfterMs (3 s)
    await kv.put('renewing', leaseOf('renewing'));
    await kv.put('other-boot', leaseOf('other-boot', 'another-boot'));
    await report('fresh'); // replayed reports are aged against the newest one stored (two server times)
    const c = await coordinator();
    expect(liveness(c, 'renewing')).toBe('ready');
    // A lease of another boot than the node's reports is not liveness of the agent that reported.
    await waitFor(() => liveness(c, 'silent') === 'lost' && liveness(c, 'other-boot') === 'lost', {
      timeoutMs: 2_000,
      message: 'silent and other-boot lost',
    });
    expect(liveness(c, 'renewing')).toBe('ready');
  }, 30_000);

  it('drops hostile lease values without crashing and does not count them as liveness', async () => {
    const c = await coordinator();
    for (const [nodeId, value] of [
      ['h1', new Uint8Array([0xc1, 0xff, 0x00])],
      ['h2', new TextEncoder().encode('{"identity": 3, "bootId": ["boot-h2"]}')],
      ['h3', new TextEncoder().encode('null')],
      ['h4', new TextEncoder().encode(`{"identity":"x","bootId":"${'b'.repeat(100_000)}"}`)],
    ] as const) {
      await kv.put(nodeId, value);
      await report(nodeId);
    }
    await waitFor(() => ['h1', 'h2', 'h3', 'h4'].every((n) => liveness(c, n) === 'lost'), {
      timeoutMs: 8_000,
      message: 'nodes with unreadable leases lost on report silence',
    });
    // Still serving: a node with a good lease is followed as before.
    await kv.put('good', leaseOf('good'));
    await report('good');
    await waitFor(() => liveness(c, 'good') === 'ready', { message: 'good ready' });
  }, 30_000);
});
