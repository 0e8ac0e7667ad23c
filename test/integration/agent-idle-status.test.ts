import { UsageSnapshotSchema } from '@allot/core';
import { decode, usageSubject } from '@allot/protocol';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../apps/coordinator/src/coordinator.ts';
import { startTestCoordinator } from '../../apps/coordinator/src/testing/cluster.ts';
import { agentRequest, cleanupAll, startAgent, startNatsServer, tempDir, waitFor, type NatsServerHandle } from '../harness/index.ts';

/*
 * A real agent with a 500 ms heartbeat and `idleStatusMs` 4 s: its node lease is its liveness, so an idle host sends its
 * status every 4 s, not every heartbeat, and a change goes out at once; a coordinator (suspect after 3 heartbeats of
 * report silence, 1.5 s) keeps it ready on its lease renewals.
 */
const HEARTBEAT_MS = 500;
const IDLE_STATUS_MS = 4_000;

let server: NatsServerHandle;
let nc: NatsConnection;
let coordinator: { coordinator: Coordinator; nc: NatsConnection } | undefined;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await coordinator?.coordinator.stop();
  await coordinator?.nc.close();
  await nc?.close();
  await cleanupAll();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('agent status when idle', () => {
  it('publishes its status on each change at once, and otherwise only every idleStatusMs', async () => {
    const nodeId = 'idle-1';
    const received: { at: number; seq: number; cores: number; idleStatusMs: number | undefined }[] = [];
    const sub = nc.subscribe(usageSubject(nodeId), {
      callback: (_e, m) => {
        const s = decode(UsageSnapshotSchema, m.data, Number.POSITIVE_INFINITY);
        if (s.ok)
          received.push({ at: performance.now(), seq: s.value.seq, cores: s.value.cpu.cores.length, idleStatusMs: s.value.idleStatusMs });
      },
    });
    coordinator = await startTestCoordinator(server.url, { coordinatorId: 'c1', liveness: { checkEveryMs: 100 } });
    const view = coordinator.coordinator.view;
    const agent = await startAgent({
      natsUrl: server.url,
      nodeId,
      stateDir: await tempDir('idle-status'),
      env: { ALLOT_HEARTBEAT_MS: String(HEARTBEAT_MS), ALLOT_IDLE_STATUS_MS: String(IDLE_STATUS_MS) },
    });
    await waitFor(() => received.length > 0, { message: 'first status' });
    // Announced, so coordinators that watch the node leases judge this node by its renewals, not its reports.
    expect(received[0]?.idleStatusMs).toBe(IDLE_STATUS_MS);
    // Idle for 10 s: 20 heartbeat ticks, but a status only every 4 s (2 or 3 of them), each 4 s apart or more.
    await waitFor(() => view.get(nodeId)?.liveness === 'ready', { message: 'ready on the coordinator' });
    const idleFrom = performance.now();
    const seen = new Set<string | undefined>();
    const sampler = setInterval(() => seen.add(view.get(nodeId)?.liveness), 100);
    await sleep(10_000);
    clearInterval(sampler);
    expect([...seen]).toEqual(['ready']);
    const idle = received.filter((r) => r.at > idleFrom);
    expect(idle.length).toBeGreaterThanOrEqual(2);
    expect(idle.length).toBeLessThanOrEqual(3);
    const gaps = idle.slice(1).map((r, i) => r.at - (idle[i] as { at: number }).at);
    for (const gap of gaps) expect(gap).toBeGreaterThan(IDLE_STATUS_MS - HEARTBEAT_MS - 200);

    // A change goes out at once (within the coalescing interval and a tick), not at the next idle period.
    const before = received.length;
    const allocated = await agentRequest(nc, nodeId, 'allocate', {
      requestId: 'idle-change',
      tenantId: 't',
      resources: { memoryMiB: 1_024, vcpus: 1 },
    });
    expect(allocated.ok).toBe(true);
    const changedAt = performance.now();
    await waitFor(() => received.slice(before).some((r) => r.seq > (received[before - 1]?.seq ?? 0)), {
      timeoutMs: 3_000,
      intervalMs: 20,
      message: 'status after the change',
    });
    expect(performance.now() - changedAt).toBeLessThan(1_500);
    sub.unsubscribe();
    await agent.stop();
  }, 40_000);
});
