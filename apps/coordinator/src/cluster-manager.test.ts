import type { PlaceRequestInput } from '@allot/protocol';
import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { ClusterManager } from './cluster-manager.ts';
import { inProcessCluster } from './testing/fake-agents.ts';

/* ClusterManager is the door of the scheduler verbs: each place and release is counted once, in one metrics object. */

const req = (requestId: string, memoryMiB: number): PlaceRequestInput => ({
  request: { requestId, tenantId: 'acme', resources: { memoryMiB, vcpus: 1 } },
});

describe('ClusterManager, the door of the scheduler verbs', () => {
  it('counts each place, refusal and release once, as its metrics and its telemetry say', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const manager = new ClusterManager({ view: c.view, flow: c.flow, agents: cluster.agents.caller(), now: () => cluster.clock.wall() });
    unwrap(await manager.start());
    unwrap(await manager.allocate(req('p1', 1024).request));
    c.refresh();
    expect(unwrap(await manager.checkAvailability(req('p2', 8192).request)).fits).toBe(false);
    const refused = await manager.allocate(req('p2', 8192).request);
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    unwrap(await manager.release({ requestId: 'rel-p1', allocationRequestId: 'p1', tenantId: 'acme' }));
    const m = unwrap(await manager.getMetrics());
    expect({ allocations: m.allocations, releases: m.releases, refusals: m.refusals, count: m.allocateLatency.count }).toEqual({
      allocations: 1,
      releases: 1,
      refusals: { insufficient_capacity: 1 },
      count: 2,
    });
    const t = unwrap(await manager.exportTelemetry());
    expect([t['place.placed'], t['place.released'], t['place.refused.insufficient_capacity']]).toEqual([1, 1, 1]);
  });

  it('answers a place while stopping with unavailable, and counts it like any other answer', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const manager = new ClusterManager({ view: c.view, flow: c.flow, agents: cluster.agents.caller(), now: () => cluster.clock.wall() });
    const r = await manager.allocate(req('p1', 1024).request);
    expect(!r.ok && r.error.code).toBe('unavailable');
    expect(unwrap(await manager.getMetrics()).refusals).toEqual({ unavailable: 1 });
  });

  it('asks for limits on a named node only: none named is invalid_request, an unknown one not_found, a type the agent has no limits for invalid_request', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const manager = new ClusterManager({ view: c.view, flow: c.flow, agents: cluster.agents.caller(), now: () => cluster.clock.wall() });
    const unnamed = await manager.getLimits();
    expect(!unnamed.ok && unnamed.error).toMatchObject({ code: 'invalid_request', details: { field: 'node' } });
    const unknown = await manager.updateLimits({ memory: { capacity: 2048 } }, { node: 'b' });
    expect(!unknown.ok && unknown.error.code).toBe('not_found');
    const gpu = await manager.updateLimits({ gpu: { capacity: 2 } }, { node: 'a' });
    expect(!gpu.ok && gpu.error).toMatchObject({ code: 'invalid_request', details: { field: 'gpu' } });
    expect(unwrap(await manager.getLimits({ node: 'a' })).memory?.capacity).toBe(4096);
  });
  it("releases a tenant's own placement only: another tenant's release is not_found and the placement stays", async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const manager = new ClusterManager({ view: c.view, flow: c.flow, agents: cluster.agents.caller(), now: () => cluster.clock.wall() });
    unwrap(await manager.start());
    unwrap(await manager.allocate(req('p1', 1024).request));
    const foreign = await manager.release({ requestId: 'rel-x', allocationRequestId: 'p1', tenantId: 'other' });
    expect(!foreign.ok && foreign.error.code).toBe('not_found');
    c.refresh();
    expect(unwrap(await manager.getUsage()).memory.committed).toBe(1024);
    expect(unwrap(await manager.release({ requestId: 'rel-p1', allocationRequestId: 'p1', tenantId: 'acme' })).status).toBe('released');
  });

  it('checks with the placement options and says where it would go, and that no single node has room the cluster has in sum', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const manager = new ClusterManager({ view: c.view, flow: c.flow, agents: cluster.agents.caller(), now: () => cluster.clock.wall() });
    unwrap(await manager.start());
    const manual = unwrap(await manager.checkAvailability(req('p1', 1024).request, { strategy: 'manual', nodeId: 'b' }));
    expect({ fits: manual.fits, candidates: manual.candidates }).toEqual({ fits: true, candidates: ['b'] });
    const big = unwrap(await manager.checkAvailability(req('p2', 6144).request));
    expect({ fits: big.fits, code: big.reason?.code, memory: big.figures['memory'] }).toEqual({
      fits: false,
      code: 'insufficient_capacity',
      memory: { requested: 6144, free: 8192, effectiveCapacity: 8192 },
    });
    expect(big.rejected).toEqual({ 'Insufficient memory': 2 });
  });
  it("counts usage as the usage verb does: a lost node's commitments still count, its capacity does not", async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const manager = new ClusterManager({ view: c.view, flow: c.flow, agents: cluster.agents.caller(), now: () => cluster.clock.wall() });
    unwrap(await manager.start());
    unwrap(await manager.allocate(req('p1', 1024).request, { strategy: 'manual', nodeId: 'b' }));
    c.refresh();
    cluster.agents.setDown('b', true);
    cluster.clock.advance(60_001);
    c.refresh();
    c.view.sweep();
    expect(c.view.get('b')?.liveness).toBe('lost');
    const usage = unwrap(await manager.getUsage());
    expect({ capacity: usage.memory.capacity, committed: usage.memory.committed, lost: usage.nodes.lost }).toEqual({
      capacity: 4096,
      committed: 1024,
      lost: 1,
    });
  });
});
