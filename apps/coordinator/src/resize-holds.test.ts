import type { Allocation } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { resizeAllocation } from './resize.ts';
import { inProcessCluster } from './testing/fake-agents.ts';

/*
 * A growth held for a resize whose agent never answered, and that no retry finishes: the reconciler settles it after
 * its bound (on the coordinator's monotonic clock), at a fence, so a late copy of the resize cannot grow the allocation
 * once the quota was given back.
 */

async function held(bound = 30_000) {
  const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 } });
  const c = await cluster.coordinator('c1', { reconcile: { pendingOlderThanMs: bound } });
  const placed = await c.place({ request: { requestId: 'vm-1', tenantId: 'acme', resources: { memoryMiB: 2048, vcpus: 2 } } });
  if (!placed.ok) throw new Error(placed.error.message);
  await c.flow.settled();
  const node = cluster.agents.nodes.get('a');
  if (node === undefined) throw new Error('no node a');
  node.stall.add('resize'); // the resize message is held in flight: the coordinator hears nothing
  const d = { store: c.store, agents: cluster.agents.caller(), knowsNode: () => true };
  const resized = await resizeAllocation(
    d,
    { requestId: 'grow-1', allocationId: placed.value.allocation.id, resources: { memoryMiB: 4096, vcpus: 4 } },
    'acme',
  );
  expect(!resized.ok && resized.error.code).toBe('timeout');
  node.stall.delete('resize');
  const usage = async () => {
    const u = await c.store.usage('acme');
    return u.ok ? { memoryMiB: u.value?.value.usage.memoryMiB, vcpus: u.value?.value.usage.vcpus } : undefined;
  };
  const intent = async () => {
    const i = await c.store.get('vm-1');
    return i.ok ? i.value?.value : undefined;
  };
  const granted = () => (cluster.agents.live('a')[0] as Allocation).granted;
  return { cluster, c, usage, intent, granted };
}

describe('a resize growth held without an answer', () => {
  it('is given back after the bound, fenced: the late resize is refused by the agent and quota equals live use', async () => {
    const { cluster, c, usage, intent, granted } = await held();
    expect(await usage()).toEqual({ memoryMiB: 4096, vcpus: 4 }); // held: never counts less than may be live
    expect((await c.reconciler.reconcileOnce()).holds).toEqual({}); // seen now: too young
    cluster.clock.advance(29_999);
    expect((await c.reconciler.reconcileOnce()).holds).toEqual({});
    cluster.clock.advance(1);
    expect((await c.reconciler.reconcileOnce()).holds).toEqual({ 'vm-1': 'given back' });
    expect(await usage()).toEqual({ memoryMiB: 2048, vcpus: 2 });
    expect(await intent()).toMatchObject({ state: 'placed', memoryMiB: 2048, vcpus: 2, attempt: 2 });
    expect((await intent())?.resizing).toBeUndefined();
    // The resize arrives at last: the agent refuses it, it was fenced before the quota was given back.
    const [late] = cluster.agents.deliverStalled('a');
    expect(late).toMatchObject({ ok: false, error: { code: 'conflict', details: { reason: 'fenced' } } });
    expect(granted()).toEqual({ memoryMiB: 2048, vcpus: 2 });
    expect(await usage()).toEqual(granted());
    // The placement is still the tenant's to release at its new fence.
    const released = await c.flow.release({ requestId: 'rel-1', placementRequestId: 'vm-1' });
    expect(released.ok).toBe(true);
    expect(await usage()).toEqual({ memoryMiB: 0, vcpus: 0 });
  });

  it('is kept when the resize reached the agent and only its answer was lost', async () => {
    const { cluster, c, usage, intent, granted } = await held();
    expect(cluster.agents.deliverStalled('a')[0]?.ok).toBe(true); // committed there; the coordinator never heard
    await c.reconciler.reconcileOnce();
    cluster.clock.advance(30_000);
    expect((await c.reconciler.reconcileOnce()).holds).toEqual({ 'vm-1': 'kept' });
    expect(granted()).toEqual({ memoryMiB: 4096, vcpus: 4 });
    expect(await usage()).toEqual({ memoryMiB: 4096, vcpus: 4 });
    expect(await intent()).toMatchObject({ memoryMiB: 4096, vcpus: 4, attempt: 2 });
  });

  it('stays held while its node does not answer the fence', async () => {
    const { cluster, c, usage } = await held();
    await c.reconciler.reconcileOnce();
    cluster.clock.advance(30_000);
    cluster.agents.setDown('a', true);
    expect((await c.reconciler.reconcileOnce()).holds).toEqual({ 'vm-1': 'left' });
    expect(await usage()).toEqual({ memoryMiB: 4096, vcpus: 4 });
    cluster.agents.setDown('a', false);
    expect((await c.reconciler.reconcileOnce()).holds).toEqual({ 'vm-1': 'given back' });
  });

  it('given back after a refusal, is fenced too: an earlier copy of the same resize arriving later is refused', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const vm = await c.place({ request: { requestId: 'vm-1', tenantId: 'acme', resources: { memoryMiB: 2048, vcpus: 2 } } });
    const filler = await c.place({ request: { requestId: 'filler', tenantId: 'other', resources: { memoryMiB: 4096, vcpus: 1 } } });
    if (!vm.ok || !filler.ok) throw new Error('not placed');
    await c.flow.settled();
    const node = cluster.agents.nodes.get('a');
    if (node === undefined) throw new Error('no node a');
    const d = { store: c.store, agents: cluster.agents.caller(), knowsNode: () => true };
    const grow = { requestId: 'grow-1', allocationId: vm.value.allocation.id, resources: { memoryMiB: 6144, vcpus: 2 } };
    node.stall.add('resize');
    expect(((await resizeAllocation(d, grow, 'acme')) as { ok: false; error: { code: string } }).error.code).toBe('timeout');
    node.stall.delete('resize');
    // The retry reaches the agent, which has no room: the hold is given back.
    const retried = await resizeAllocation(d, grow, 'acme');
    expect(!retried.ok && retried.error.code).toBe('insufficient_capacity');
    const usage = async () => {
      const u = await c.store.usage('acme');
      return u.ok ? u.value?.value.usage.memoryMiB : undefined;
    };
    expect(await usage()).toBe(2048);
    // Room frees up, then the first copy arrives: it must not grow the allocation the quota no longer counts.
    expect((await c.flow.release({ requestId: 'rel-f', placementRequestId: 'filler' })).ok).toBe(true);
    const [late] = cluster.agents.deliverStalled('a');
    expect(late).toMatchObject({ ok: false, error: { code: 'conflict', details: { reason: 'fenced' } } });
    expect(cluster.agents.live('a').find((x) => x.requestId === 'vm-1')?.granted.memoryMiB).toBe(2048);
    expect(await usage()).toBe(2048);
  });
  it('a shrink whose answer was lost is settled after the bound too: the quota follows what the agent holds', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 } });
    const c = await cluster.coordinator('c1', { reconcile: { pendingOlderThanMs: 30_000 } });
    const placed = await c.place({ request: { requestId: 'vm-1', tenantId: 'acme', resources: { memoryMiB: 4096, vcpus: 4 } } });
    if (!placed.ok) throw new Error(placed.error.message);
    await c.flow.settled();
    cluster.agents.nodes.get('a')?.stall.add('resize');
    const d = { store: c.store, agents: cluster.agents.caller(), knowsNode: () => true };
    const shrink = { requestId: 'shrink-1', allocationId: placed.value.allocation.id, resources: { memoryMiB: 1024, vcpus: 1 } };
    const resized = await resizeAllocation(d, shrink, 'acme');
    expect(!resized.ok && resized.error.code).toBe('timeout');
    // The shrink reaches the agent after the coordinator stopped listening: the node holds 1024/1, nobody retries.
    cluster.agents.nodes.get('a')?.stall.delete('resize');
    const [late] = cluster.agents.deliverStalled('a');
    expect(late?.ok).toBe(true);
    expect((cluster.agents.live('a')[0] as Allocation).granted).toEqual({ memoryMiB: 1024, vcpus: 1 });
    await c.reconciler.reconcileOnce();
    cluster.clock.advance(30_000);
    await c.reconciler.reconcileOnce();
    const u = await c.store.usage('acme');
    expect(u.ok && { memoryMiB: u.value?.value.usage.memoryMiB, vcpus: u.value?.value.usage.vcpus }).toEqual({ memoryMiB: 1024, vcpus: 1 });
  });
});
