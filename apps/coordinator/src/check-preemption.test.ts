import { PlaceRequestSchema, type PlaceRequestInput } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { PlaceMetrics } from './metrics.ts';
import { inProcessCluster, type InProcessCoordinator } from './testing/fake-agents.ts';

/*
 * check is a dry run of place: when a request fits only by preemption, it answers the node and the victims the place
 * would preempt now (kube-scheduler's nominated node), and evicts nothing.
 */

function req(requestId: string, memoryMiB: number, priority: number, placement: PlaceRequestInput['placement'] = {}, tenantId = 'acme') {
  return PlaceRequestSchema.parse({ request: { requestId, tenantId, resources: { memoryMiB, vcpus: 1 }, priority }, placement });
}

async function placeOn(
  c: InProcessCoordinator,
  requestId: string,
  nodeId: string,
  memoryMiB: number,
  priority: number,
  tenantId = 'low',
): Promise<void> {
  const r = await c.place(req(requestId, memoryMiB, priority, { strategy: 'manual', nodeId }, tenantId));
  if (!r.ok) throw new Error(r.error.message);
}

describe('check with preemption allowed', () => {
  it('answers the node and the victims a place would preempt, and evicts nothing', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    await placeOn(c, 'low-1', 'a', 2048, 0, 'acme');
    await placeOn(c, 'mid', 'a', 2048, 20);
    await placeOn(c, 'close', 'b', 4096, 45);
    c.refresh();
    const checked = await c.flow.check(req('high', 2048, 50, { allowPreemption: true }));
    if (!checked.ok) throw new Error(checked.error.message);
    expect(checked.value.fits).toBe(false);
    expect(checked.value.candidates).toEqual([]);
    expect(checked.value.preemption).toEqual({ nodeId: 'a', victims: [{ allocationId: 'a:1', requestId: 'low-1', priority: 0 }] });
    expect(checked.value.message).toContain('would fit on a by preempting 1 allocation');
    // Nothing evicted, no intent written for the preemptor.
    expect(
      cluster.agents
        .live('a')
        .map((x) => x.requestId)
        .sort(),
    ).toEqual(['low-1', 'mid']);
    const intent = await c.store.get('high');
    expect(intent.ok && intent.value).toBe(null);
    // The place that follows preempts exactly what the check named.
    const placed = await c.place(req('high', 2048, 50, { allowPreemption: true }));
    expect(placed.ok && placed.value.preempted).toEqual(checked.value.preemption?.victims);
  });

  it("names another tenant's victims to no one: counted in the message, not listed (kube shows the nominated node only)", async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    await placeOn(c, 'secret-vm', 'a', 2048, 0, 'other');
    await placeOn(c, 'own-vm', 'a', 2048, 1, 'acme');
    c.refresh();
    const checked = await c.flow.check(req('high', 4096, 50, { allowPreemption: true }));
    if (!checked.ok) throw new Error(checked.error.message);
    // Both would be preempted: acme learns its own VM's identity, and only that there is one more.
    expect(checked.value.preemption).toEqual({ nodeId: 'a', victims: [{ allocationId: 'a:2', requestId: 'own-vm', priority: 1 }] });
    expect(checked.value.message).toContain('would fit on a by preempting 2 allocations');
    expect(JSON.stringify(checked.value)).not.toContain('secret-vm');
    expect(JSON.stringify(checked.value)).not.toContain('a:1');
  });

  it("a place names only the preemptor's own victims too, counts the others, and its metrics count every victim", async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    await placeOn(c, 'secret-vm', 'a', 2048, 0, 'other');
    await placeOn(c, 'own-vm', 'a', 2048, 1, 'acme');
    c.refresh();
    const high = req('high', 4096, 50, { allowPreemption: true });
    const placed = await c.place(high);
    if (!placed.ok) throw new Error(placed.error.message);
    expect(placed.value.preempted).toEqual([{ allocationId: 'a:2', requestId: 'own-vm', priority: 1 }]);
    expect(placed.value.othersPreempted).toBe(1);
    expect(JSON.stringify(placed.value)).not.toContain('secret-vm');
    expect(JSON.stringify(placed.value)).not.toContain('a:1');
    // Both are gone from the node; a retry answers the same, naming no more.
    expect(
      [...(cluster.agents.nodes.get('a')?.byRequest.values() ?? [])].filter((x) => x.status === 'active').map((x) => x.requestId),
    ).toEqual(['high']);
    const again = await c.place(high);
    expect(again.ok && again.value).toEqual(placed.value);
    const metrics = new PlaceMetrics();
    metrics.recordPlace(1, placed);
    expect(metrics.preemptions).toBe(2);
  });

  it('answers no plan without preemption allowed, or when no eviction makes room', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 4096, cores: 8 } });
    const c = await cluster.coordinator('c1');
    await placeOn(c, 'close', 'a', 4096, 45);
    c.refresh();
    const without = await c.flow.check(req('high', 2048, 50));
    expect(without.ok && without.value.preemption).toBeUndefined();
    const none = await c.flow.check(req('high', 2048, 50, { allowPreemption: true }));
    expect(none.ok && none.value.fits).toBe(false);
    expect(none.ok && none.value.preemption).toBeUndefined();
  });
});
