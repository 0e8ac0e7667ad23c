import type { AllotEvent } from '@allot/protocol';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Sweep, SweepConfigSchema } from './sweep.ts';
import { inProcessCluster } from './testing/fake-agents.ts';

const GRACE = 60_000;

async function setup() {
  const cluster = inProcessCluster({ a: { memoryMiB: 65_536, cores: 64 }, b: { memoryMiB: 65_536, cores: 64 } });
  const c1 = await cluster.coordinator('c1');
  const events: AllotEvent[] = [];
  const sweep = new Sweep({
    store: c1.store,
    agents: cluster.agents.caller(),
    nodes: () => ['a', 'b'],
    clock: cluster.clock,
    config: SweepConfigSchema.parse({ graceMs: GRACE, pageSize: 2 }),
    logger: pino({ level: 'silent' }),
    publishEvent: (e) => events.push(e),
  });
  const caller = cluster.agents.caller();
  /** An allocate straight to a node at a fence, as a coordinator's drive sends it (the orphan a lost undo leaves). */
  const allocateAt = async (nodeId: string, requestId: string, fence: number) => {
    const r = await caller.call(nodeId, 'allocate', { requestId, tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 }, fence });
    if (!r.ok) throw new Error(r.error.message);
    return r.value;
  };
  const place = async (req: { requestId: string; reservation?: { ttlMs: number } }) => {
    const r = await c1.place({ request: { tenantId: 'acme', resources: { memoryMiB: 1024, vcpus: 1 }, ...req } });
    if (!r.ok) throw new Error(r.error.message);
    return r.value;
  };
  const live = (nodeId: string) => cluster.agents.live(nodeId).map((a) => a.requestId);
  const vms = async () => {
    const u = await c1.store.usage('acme');
    return u.ok ? (u.value?.value.usage.vms ?? 0) : -1;
  };
  return { cluster, c1, sweep, events, allocateAt, place, live, vms };
}

describe('anti-entropy sweep', () => {
  it('releases an allocation whose intent names another node (a lost undo), only after two sightings graceMs apart', async () => {
    const { cluster, sweep, events, allocateAt, place, live, vms } = await setup();
    const reply = await place({ requestId: 'r1' });
    const other = reply.nodeId === 'a' ? 'b' : 'a';
    await allocateAt(other, 'r1', 1);
    expect(live(other)).toEqual(['r1']);

    const first = await sweep.sweepOnce();
    expect(first.ok && first.value.discrepancies).toEqual([
      expect.objectContaining({ kind: 'orphan', nodeId: other, requestId: 'r1', reason: 'intent_on_other_node' }),
    ]);
    cluster.clock.advance(GRACE - 1);
    expect((await sweep.sweepOnce()).ok).toBe(true);
    expect(live(other)).toEqual(['r1']);
    cluster.clock.advance(1);
    const third = await sweep.sweepOnce();
    expect(third.ok && third.value.released).toBe(1);
    expect(live(other)).toEqual([]);
    // The placement itself is untouched, and so is the tenant's quota.
    expect(live(reply.nodeId)).toEqual(['r1']);
    expect(await vms()).toBe(1);
    expect(events).toEqual([
      expect.objectContaining({
        kind: 'orphan_released',
        nodeId: other,
        requestId: 'r1',
        reason: expect.stringMatching(/^orphan: intent on other node/),
      }),
    ]);
  });

  it('releases allocations whose intent failed or is missing, and never one made without a fence', async () => {
    const { cluster, sweep, allocateAt, live } = await setup();
    await allocateAt('a', 'no-intent', 1);
    const direct = await cluster.agents
      .caller()
      .call('b', 'allocate', { requestId: 'direct', tenantId: 'acme', resources: { memoryMiB: 512, vcpus: 1 } });
    expect(direct.ok).toBe(true);
    await sweep.sweepOnce();
    cluster.clock.advance(GRACE);
    const second = await sweep.sweepOnce();
    expect(second.ok && second.value.released).toBe(1);
    expect(live('a')).toEqual([]);
    expect(live('b')).toEqual(['direct']);
  });

  it('leaves an orphan alone when a newer drive claimed its request id since (the release is fenced)', async () => {
    const { cluster, sweep, allocateAt, live } = await setup();
    await allocateAt('a', 'claimed', 1);
    await sweep.sweepOnce();
    // A retry drives the request id at fence 2 after the sweep's first sighting: the allocation may be its placement.
    const fenced = await cluster.agents.caller().call('a', 'fence', { requestId: 'claimed', fence: 2 });
    expect(fenced.ok).toBe(true);
    cluster.clock.advance(GRACE);
    const second = await sweep.sweepOnce();
    expect(second.ok && second.value.released).toBe(0);
    expect(live('a')).toEqual(['claimed']);
  });

  it('forgets an orphan that stops being one, so a later sighting starts the grace period again', async () => {
    const { cluster, sweep, allocateAt, live } = await setup();
    await allocateAt('a', 'flap', 1);
    await sweep.sweepOnce();
    cluster.agents.setDown('a', true);
    cluster.clock.advance(GRACE);
    const down = await sweep.sweepOnce();
    expect(down.ok && down.value.nodesFailed.map((n) => n.nodeId)).toEqual(['a']);
    cluster.agents.setDown('a', false);
    const back = await sweep.sweepOnce();
    expect(back.ok && back.value.released).toBe(0);
    expect(live('a')).toEqual(['flap']);
  });

  it('gives the quota back for a placed reservation that expired on its node (the sweep asks the node with fence)', async () => {
    const { cluster, sweep, events, place, vms } = await setup();
    const reply = await place({ requestId: 'lease', reservation: { ttlMs: 60_000 } });
    expect(await vms()).toBe(1);
    cluster.agents.expire(reply.nodeId, 'lease');
    const r = await sweep.sweepOnce();
    expect(r.ok && r.value.ended).toBe(1);
    expect(await vms()).toBe(0);
    expect(events).toEqual([expect.objectContaining({ kind: 'placement_ended', requestId: 'lease' })]);
  });

  it('audit reports every discrepancy without acting, and pages through nodes with more allocations than a page', async () => {
    const { cluster, sweep, allocateAt, place, live, vms } = await setup();
    for (let i = 0; i < 5; i++) await place({ requestId: `keep-${i}` });
    await allocateAt('b', 'orphan-1', 1);
    await allocateAt('a', 'orphan-2', 3);
    const lease = await place({ requestId: 'lease', reservation: { ttlMs: 60_000 } });
    cluster.agents.expire(lease.nodeId, 'lease');
    cluster.clock.advance(GRACE);
    for (let round = 0; round < 3; round++) {
      const audit = await sweep.audit();
      if (!audit.ok) throw new Error(audit.error.message);
      expect(audit.value.nodesSwept).toBe(2);
      expect(audit.value.discrepancies.map((d) => `${d.kind}:${d.requestId}`).sort()).toEqual([
        'orphan:orphan-1',
        'orphan:orphan-2',
        'placement_missing:lease',
      ]);
    }
    expect([...live('a'), ...live('b')].sort()).toEqual(['keep-0', 'keep-1', 'keep-2', 'keep-3', 'keep-4', 'orphan-1', 'orphan-2']);
    expect(await vms()).toBe(6);
  });
});
