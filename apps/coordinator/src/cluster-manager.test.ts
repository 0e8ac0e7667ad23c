import { PlaceRequestSchema, type PlaceRequestInput } from '@allot/protocol';
import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { ClusterManager } from './cluster-manager.ts';
import { inProcessCluster } from './testing/fake-agents.ts';

/* ClusterManager is the door of the scheduler verbs: each place and release is counted once, in one metrics object. */

const req = (requestId: string, memoryMiB: number): PlaceRequestInput => ({
  request: { requestId, tenantId: 'acme', resources: { memoryMiB, vcpus: 1 } },
});

describe('ClusterManager, the door of place, release and check', () => {
  it('counts each place, refusal and release once, as its metrics and its telemetry say', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const manager = new ClusterManager({ view: c.view, flow: c.flow, agents: cluster.agents.caller(), now: () => cluster.clock.wall() });
    unwrap(await manager.start());
    unwrap(await manager.place(PlaceRequestSchema.parse(req('p1', 1024))));
    c.refresh();
    expect(unwrap(manager.check(PlaceRequestSchema.parse(req('p2', 8192)))).fits).toBe(false);
    const refused = await manager.place(PlaceRequestSchema.parse(req('p2', 8192)));
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    unwrap(await manager.releasePlacement({ requestId: 'rel-p1', placementRequestId: 'p1', tenantId: 'acme' }));
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
    const r = await manager.place(PlaceRequestSchema.parse(req('p1', 1024)));
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
});
