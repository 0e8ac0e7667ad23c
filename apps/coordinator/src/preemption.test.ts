import { PlaceRequestSchema, type PlaceRequestInput } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { inProcessCluster, type InProcessCluster, type InProcessCoordinator } from './testing/fake-agents.ts';

/*
 * Preemption through the place flow: placement's post-filter names the nodes worth a look and then the plan (node,
 * victims); the flow only fetches those nodes' allocations and executes the plan through the agent's preempt verb
 * (the victims released and the preemptor allocated at once, or nothing).
 */

function req(
  requestId: string,
  memoryMiB: number,
  priority: number,
  placement: PlaceRequestInput['placement'] = {},
  tenantId = 'acme',
): PlaceRequestInput {
  return { request: { requestId, tenantId, resources: { memoryMiB, vcpus: 1 }, priority }, placement };
}

async function placeOn(c: InProcessCoordinator, requestId: string, nodeId: string, memoryMiB: number, priority: number): Promise<void> {
  const r = await c.place(req(requestId, memoryMiB, priority, { strategy: 'manual', nodeId }, 'low'));
  if (!r.ok) throw new Error(r.error.message);
}

/**
 * What a preemption released on the node, from its agent: the victims here are tenant low's and the preemptor acme's,
 * so the reply only counts them (othersPreempted) and never names them.
 */
function releasedOn(cluster: InProcessCluster, nodeId: string): string[] {
  const held = [...(cluster.agents.nodes.get(nodeId)?.byRequest.values() ?? [])];
  return held
    .filter((a) => a.status === 'released')
    .map((a) => a.requestId)
    .sort();
}

describe('preemption', () => {
  it('evicts the fewest lowest-priority allocations on one node, counts them in the reply, and gives their quota back', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    await placeOn(c, 'low-1', 'a', 2048, 0);
    await placeOn(c, 'mid', 'a', 2048, 20);
    await placeOn(c, 'close', 'b', 4096, 45); // only 5 points below the request: not eligible
    const r = await c.place(req('high', 2048, 50, { allowPreemption: true }));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.nodeId).toBe('a');
    expect(r.value).toMatchObject({ preempted: [], othersPreempted: 1 });
    expect(releasedOn(cluster, 'a')).toEqual(['low-1']);
    expect(
      cluster.agents
        .live('a')
        .map((x) => x.requestId)
        .sort(),
    ).toEqual(['high', 'mid']);
    const victim = await c.store.get('low-1');
    expect(victim.ok && victim.value?.value.state).toBe('released');
    const usage = await c.store.usage('low');
    expect(usage.ok && usage.value?.value.usage.vms).toBe(2);
  });

  it('a preemption its agent refuses releases nothing: the victims keep running and keep their quota', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    await placeOn(c, 'low-1', 'a', 2048, 0);
    await placeOn(c, 'mid', 'a', 2048, 20);
    // The host shrank and the coordinator's view has not heard yet: the plan (release low-1) no longer makes room.
    const node = cluster.agents.nodes.get('a');
    if (node === undefined) throw new Error('no node a');
    node.spec = { ...node.spec, memoryMiB: 3072 };
    const r = await c.place(req('high', 2048, 50, { allowPreemption: true }));
    expect(!r.ok && r.error.code).toBe('insufficient_capacity');
    expect(!r.ok && r.error.message).toContain('nothing was released');
    expect(
      cluster.agents
        .live('a')
        .map((x) => x.requestId)
        .sort(),
    ).toEqual(['low-1', 'mid']);
    const victim = await c.store.get('low-1');
    expect(victim.ok && victim.value?.value.state).toBe('placed');
    const low = await c.store.usage('low');
    expect(low.ok && low.value?.value.usage).toMatchObject({ vms: 2, memoryMiB: 4096 });
    const preemptor = await c.store.get('high');
    expect(preemptor.ok && preemptor.value?.value.state).toBe('failed');
    const acme = await c.store.usage('acme');
    expect(acme.ok && (acme.value?.value.usage.vms ?? 0)).toBe(0);
  });

  it('refuses with the reason when no eviction of allocations at least 10 points lower makes room', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    await placeOn(c, 'close', 'a', 4096, 45);
    const r = await c.place(req('high', 2048, 50, { allowPreemption: true }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('insufficient_capacity');
    expect(r.error.message).toBe(
      '0/1 nodes are available: 1 Insufficient memory. no preemption of allocations at least 10 priority points lower makes room on any node.',
    );
    expect(cluster.agents.live('a').map((x) => x.requestId)).toEqual(['close']);
  });

  it('finds the node whose eviction helps among all nodes, not only the first ones the view lists', async () => {
    // preemptionNodes 1: the flow fetches one node's allocations. The view lists a and b first, full of allocations
    // that may not be evicted; c holds the only eligible victim.
    const cluster = inProcessCluster({
      a: { memoryMiB: 4096, cores: 8 },
      b: { memoryMiB: 4096, cores: 8 },
      c: { memoryMiB: 4096, cores: 8 },
    });
    const c1 = await cluster.coordinator('c1', { place: { preemptionNodes: 1 } });
    await placeOn(c1, 'keep-a', 'a', 4096, 45);
    await placeOn(c1, 'keep-b', 'b', 4096, 45);
    await placeOn(c1, 'low-c', 'c', 3072, 0);
    const r = await c1.place(req('high', 2048, 50, { allowPreemption: true }));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.nodeId).toBe('c');
    expect(releasedOn(cluster, 'c')).toEqual(['low-c']);
  });

  it('picks the node whose victims are cheapest anywhere in the cluster, not among the roomiest 16', async () => {
    // 40 roomy nodes, each with one victim at priority 30; the fullest node holds two victims at priority 0. Kube-scheduler's
    // order takes the lowest highest victim priority first, and the index finds that node wherever it sorts.
    const spec: Record<string, { memoryMiB: number; cores: number }> = { 'z-cheap': { memoryMiB: 4096, cores: 8 } };
    for (let i = 0; i < 40; i += 1) spec[`n${String(i).padStart(2, '0')}`] = { memoryMiB: 8192, cores: 8 };
    const cluster = inProcessCluster(spec);
    const c = await cluster.coordinator('c1');
    for (let i = 0; i < 40; i += 1) await placeOn(c, `mid-${i}`, `n${String(i).padStart(2, '0')}`, 6144, 30);
    await placeOn(c, 'cheap-1', 'z-cheap', 2048, 0);
    await placeOn(c, 'cheap-2', 'z-cheap', 2048, 0);
    const r = await c.place(req('high', 4096, 50, { allowPreemption: true }));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.nodeId).toBe('z-cheap');
    expect(r.value.othersPreempted).toBe(2);
    expect(releasedOn(cluster, 'z-cheap')).toEqual(['cheap-1', 'cheap-2']);
    for (let i = 0; i < 40; i += 1) expect(cluster.agents.live(`n${String(i).padStart(2, '0')}`)).toHaveLength(1);
  });

  it('re-plans on the next node when the first refuses: nothing on the first is touched, and quotas count what runs', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    await placeOn(c, 'low-a', 'a', 2048, 0); // the cheapest victim in the cluster
    await placeOn(c, 'keep-a', 'a', 2048, 45);
    await placeOn(c, 'low-b', 'b', 4096, 5);
    // a's host shrank: its view still shows room once low-a goes (free memory reads 0, not below), but the agent refuses.
    const a = cluster.agents.nodes.get('a');
    if (a === undefined) throw new Error('no node a');
    a.spec = { ...a.spec, memoryMiB: 3072 };
    const r = await c.place(req('high', 2048, 50, { allowPreemption: true }));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value).toMatchObject({ nodeId: 'b', attempts: 2, preempted: [], othersPreempted: 1 });
    expect(releasedOn(cluster, 'b')).toEqual(['low-b']);
    expect(a.preemptsRefused).toBe(1);
    expect(
      cluster.agents
        .live('a')
        .map((x) => x.requestId)
        .sort(),
    ).toEqual(['keep-a', 'low-a']);
    expect(cluster.agents.live('b').map((x) => x.requestId)).toEqual(['high']);
    const lowA = await c.store.get('low-a');
    expect(lowA.ok && lowA.value?.value.state).toBe('placed');
    const lowB = await c.store.get('low-b');
    expect(lowB.ok && lowB.value?.value.state).toBe('released');
    await c.flow.settled();
    const high = await c.store.get('high');
    expect(high.ok && high.value?.value).toMatchObject({ state: 'placed', nodeId: 'b', refusedBy: ['a'], attempt: 2 });
    const low = await c.store.usage('low');
    expect(low.ok && low.value?.value.usage).toMatchObject({ vms: 2, memoryMiB: 4096 });
    const acme = await c.store.usage('acme');
    expect(acme.ok && acme.value?.value.usage).toMatchObject({ vms: 1, memoryMiB: 2048 });
  });

  it('an unknown outcome does not re-plan: the intent stays pending on its node, and a retry finds the preemptor there', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
    await placeOn(c, 'low-a', 'a', 4096, 0);
    await placeOn(c, 'low-b', 'b', 4096, 5);
    const a = cluster.agents.nodes.get('a');
    if (a === undefined) throw new Error('no node a');
    a.stall.add('preempt'); // the preempt is in flight: the coordinator hears nothing
    const r = await c.place(req('high', 2048, 50, { allowPreemption: true }));
    expect(!r.ok && r.error.code).toBe('timeout');
    const pending = await c.store.get('high');
    expect(pending.ok && pending.value?.value).toMatchObject({ state: 'pending', nodeId: 'a', refusedBy: [] });
    expect(cluster.agents.live('b').map((x) => x.requestId)).toEqual(['low-b']);
    a.stall.delete('preempt');
    expect(cluster.agents.deliverStalled('a')[0]?.ok).toBe(true); // it arrives and commits
    const retried = await c.place(req('high', 2048, 50, { allowPreemption: true }));
    if (!retried.ok) throw new Error(retried.error.message);
    expect(retried.value.nodeId).toBe('a');
    expect(cluster.agents.live('b').map((x) => x.requestId)).toEqual(['low-b']);
  });

  it('a re-plan that finds no other node fails with the refusal, and a node that refused is never asked again', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1', { place: { maxAttempts: 3 } });
    await placeOn(c, 'low-a', 'a', 2048, 0);
    await placeOn(c, 'keep-a', 'a', 2048, 45);
    const a = cluster.agents.nodes.get('a');
    if (a === undefined) throw new Error('no node a');
    a.spec = { ...a.spec, memoryMiB: 3072 };
    const r = await c.place(req('high', 2048, 50, { allowPreemption: true }));
    expect(!r.ok && r.error.code).toBe('insufficient_capacity');
    expect(a.preemptsRefused).toBe(1);
  });

  it('keeps to the request filters: a node outside the label constraint is never preempted on', async () => {
    const cluster = inProcessCluster({
      a: { memoryMiB: 4096, cores: 8, labels: { zone: 'z1' } },
      b: { memoryMiB: 4096, cores: 8, labels: { zone: 'z2' } },
    });
    const c = await cluster.coordinator('c1');
    await placeOn(c, 'low-a', 'a', 4096, 0);
    await placeOn(c, 'low-b', 'b', 4096, 5);
    const r = await c.place(req('high', 2048, 50, { allowPreemption: true, constraints: [{ key: 'zone', op: 'In', values: ['z2'] }] }));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.nodeId).toBe('b');
    expect(releasedOn(cluster, 'b')).toEqual(['low-b']);
    expect(PlaceRequestSchema.parse(req('x', 1, 1)).placement.allowPreemption).toBe(false);
  });
});

describe('anti-affinity group on the wire', () => {
  it('sends the group to the agent as the typed field of the allocate request, not as metadata strings', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    const r = await c.place(req('g1', 512, 0, { group: { name: 'web', maxPerNode: 2 } }));
    if (!r.ok) throw new Error(r.error.message);
    const held = cluster.agents.live('a')[0];
    expect(held?.request.group).toEqual({ name: 'web', maxPerNode: 2 });
    expect(held?.request.metadata).toEqual({});
    expect(cluster.agents.snapshot(cluster.agents.nodes.get('a') as never).groups).toEqual({ 'acme/web': 1 });
  });
});
