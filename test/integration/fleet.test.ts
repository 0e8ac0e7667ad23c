import { AGENT_ENDPOINTS, agentSubject, PlaceReplySchema, schedSubject } from '@allot/protocol';
import { requestTyped } from '@allot/nats';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinatorProcess, type CoordinatorProcess } from '../fleet/coordinators.ts';
import { Fleet } from '../fleet/fleet.ts';
import { ViewWatch } from '../fleet/view-watch.ts';
import { cleanupAll, registerCleanup, startNatsServer } from '../harness/index.ts';

/*
 * The fleet simulator (test/fleet, `pnpm fleet`) against a real coordinator process and nats-server, small: its hosts
 * must show up in the coordinator's view as ready nodes, and a place must land on one of them and be held by that
 * host's (real) HostManager. Behaviour only; the figures are the benchmark's.
 */
const HOSTS = 200;

let nc: NatsConnection;
let coordinator: CoordinatorProcess;
let fleet: Fleet;
let view: ViewWatch;

beforeAll(async () => {
  const server = await startNatsServer();
  // The coordinator creates the streams the hosts publish into.
  coordinator = await startCoordinatorProcess(server.url, 'c1');
  await coordinator.ready;
  fleet = await Fleet.start({ natsUrl: server.url, workers: 1, heartbeatMs: 1_000 });
  await fleet.grow(HOSTS);
  nc = await connect({ servers: server.url });
  registerCleanup('fleet test client', () => nc.close());
  view = new ViewWatch(coordinator.url);
  registerCleanup('fleet view watch', () => Promise.resolve(view.close()));
  await view.open();
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

describe('the fleet simulator against a real coordinator', () => {
  it('shows every simulated host in the coordinator view as a ready node', async () => {
    await view.until(() => view.ready() >= HOSTS, 30_000, `${HOSTS} nodes ready`);
    expect([...view.nodes.keys()].sort()).toEqual(fleet.nodeIds.sort());
  });

  it('places a VM on a simulated host, whose host manager then holds it', async () => {
    const placed = await requestTyped(
      nc,
      schedSubject('place', 'fleet-test'),
      { request: { requestId: 'fleet-test-1', tenantId: 'fleet-test', resources: { memoryMiB: 2_048, vcpus: 2 } } },
      PlaceReplySchema,
      { timeoutMs: 10_000 },
    );
    if (!placed.ok) throw new Error(placed.error.message);
    expect(fleet.nodeIds).toContain(placed.value.nodeId);
    const held = await requestTyped(
      nc,
      agentSubject(placed.value.nodeId, 'allocations'),
      { status: 'live', tenantId: 'fleet-test' },
      AGENT_ENDPOINTS.allocations.reply,
      { timeoutMs: 5_000 },
    );
    if (!held.ok) throw new Error(held.error.message);
    expect(held.value.allocations.map((a) => a.id)).toEqual([placed.value.allocation.id]);
    // The host's next snapshot carries the allocation into the coordinator's view.
    await view.until(() => view.nodes.get(placed.value.nodeId)?.allocationCount === 1, 10_000, 'the placed host reporting its allocation');
  });
});
