import { TenantQuotaSchema, unwrap } from '@allot/core';
import type { AllotEvent } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { resizeAllocation } from '../resize.ts';
import { inProcessCluster, inProcessMoveDeps } from '../testing/fake-agents.ts';
import { evacuateNode, movesInFlight } from './evacuate.ts';
import { abortMove, confirmMove, destinationRequestId, moveAllocation } from './move.ts';

/** Nodes a, b (zone x) and c (zone y); tenant t may run 3 VMs at most, so a VM counted twice would show. */
async function setUp(nodes: Record<string, { memoryMiB: number; cores: number; labels?: Record<string, string> }> = {}) {
  const cluster = inProcessCluster({
    a: { memoryMiB: 8192, cores: 8, labels: { zone: 'x' } },
    b: { memoryMiB: 8192, cores: 8, labels: { zone: 'x' } },
    c: { memoryMiB: 8192, cores: 8, labels: { zone: 'y' } },
    ...nodes,
  });
  const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
  unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 't', maxVms: 3 })));
  const events: AllotEvent[] = [];
  const seen = new Set<string>();
  const deps = inProcessMoveDeps(cluster, c, {
    holdMs: 60_000,
    // The events stream drops a message id it has seen (JetStream's duplicate window): so does this list.
    publishEvent: (e, msgId) => void (seen.has(msgId) || (seen.add(msgId), events.push(e))),
  });
  const placeOn = async (requestId: string, nodeId: string, constraints: { key: string; op: 'In'; values: string[] }[] = []) =>
    unwrap(
      await c.place({
        request: { requestId, tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
        placement: { strategy: 'manual', nodeId, constraints },
      }),
    );
  const usage = async () => {
    const u = unwrap(await c.store.usage('t'));
    return { vms: u?.value.usage.vms, memoryMiB: u?.value.usage.memoryMiB, perNode: u?.value.usage.vmsPerNode };
  };
  const intent = async (requestId: string) => unwrap(await c.store.get(requestId))?.value;
  const live = (nodeId: string) => cluster.agents.live(nodeId).map((a) => `${a.requestId}:${a.status}`);
  return { cluster, c, deps, events, placeOn, usage, intent, live };
}

describe('move', () => {
  it('holds the destination as a reservation counted 0, and a confirm releases the source: the VM counts once throughout', async () => {
    const { deps, events, placeOn, usage, intent, live, cluster } = await setUp();
    const vm = await placeOn('vm-1', 'a');
    await placeOn('vm-2', 'a');
    await placeOn('vm-3', 'b'); // the tenant is at its limit of 3 VMs: a destination that counted would be refused
    const held = unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'c' }, 't'));
    const destId = destinationRequestId(vm.allocation.id, 'mv-1');
    expect(held).toMatchObject({
      state: 'held',
      moveRequestId: 'mv-1',
      source: { allocationId: vm.allocation.id, nodeId: 'a', requestId: 'vm-1' },
      destination: { nodeId: 'c', requestId: destId, allocation: { status: 'reserved' } },
    });
    expect(live('a')).toContain('vm-1:active');
    expect(live('c')).toEqual([`${destId}:reserved`]);
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072, perNode: { a: 2, b: 1 } });
    expect(await intent('vm-1')).toMatchObject({ state: 'placed', movingTo: { requestId: destId, moveRequestId: 'mv-1' } });
    expect(await intent(destId)).toMatchObject({ state: 'placed', nodeId: 'c', movesFrom: { requestId: 'vm-1', nodeId: 'a' } });

    // A retry of the move answers the same destination, asking no agent to allocate again.
    const allocates = cluster.agents.allocateCalls;
    expect(unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'c' }, 't'))).toEqual(held);
    expect(cluster.agents.allocateCalls).toBe(allocates);

    // In flight: listed from the intents, by either node or the tenant, not for another node or tenant.
    for (const filter of [{}, { nodeId: 'a' }, { nodeId: 'c' }, { tenantId: 't' }])
      expect(unwrap(await movesInFlight(deps, filter))).toEqual({ moves: [held], count: 1 });
    expect(unwrap(await movesInFlight(deps, { nodeId: 'b' })).count).toBe(0);
    expect(unwrap(await movesInFlight(deps, { tenantId: 'u' })).count).toBe(0);
    const confirmed = unwrap(await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    expect(confirmed).toMatchObject({
      state: 'confirmed',
      sourceReleased: true,
      destination: { nodeId: 'c', allocation: { status: 'active' } },
    });
    expect(live('a')).not.toContain('vm-1:active');
    expect(live('c')).toEqual([`${destId}:active`]);
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072, perNode: { a: 1, b: 1, c: 1 } });
    expect(await intent('vm-1')).toMatchObject({ state: 'released', releasedBy: 'move' });
    expect(await intent(destId)).toMatchObject({ state: 'placed', movedFrom: { requestId: 'vm-1' } });
    expect((await intent(destId))?.movesFrom).toBeUndefined();
    // Repeated, the confirm answers the same move; events name both halves.
    expect(unwrap(await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'))).toMatchObject({
      state: 'confirmed',
    });
    expect(unwrap(await movesInFlight(deps, {})).count).toBe(0);
    expect(await usage()).toEqual({ vms: 3, memoryMiB: 3072, perNode: { a: 1, b: 1, c: 1 } });
    expect(events.map((e) => e.kind)).toEqual(['move_started', 'move_confirmed']);
    expect(events[0]?.reason).toContain(`${vm.allocation.id} on a held on c`);
  });

  it('an abort releases the destination and leaves the source placed and movable again', async () => {
    const { deps, placeOn, usage, intent, live } = await setUp();
    const vm = await placeOn('vm-1', 'a');
    const held = unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    expect(held.destination.nodeId).not.toBe('a');
    // One move at a time: another move id is refused while this one holds a destination.
    const second = await moveAllocation(deps, { requestId: 'mv-2', allocationId: vm.allocation.id }, 't');
    expect(!second.ok && second.error).toMatchObject({ code: 'conflict', details: { reason: 'moving', moveRequestId: 'mv-1' } });

    // Nor is it resized meanwhile: the held destination has the size it had.
    const resized = await resizeAllocation(
      { store: deps.store, agents: deps.agents, knowsNode: () => true },
      { requestId: 'rs-1', allocationId: vm.allocation.id, resources: { memoryMiB: 2048, vcpus: 1 } },
      't',
    );
    expect(!resized.ok && resized.error).toMatchObject({ code: 'conflict', details: { reason: 'moving', moveRequestId: 'mv-1' } });
    const aborted = unwrap(await abortMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    expect(aborted.state).toBe('aborted');
    expect(live(held.destination.nodeId)).toEqual([]);
    expect(live('a')).toEqual(['vm-1:active']);
    expect(await usage()).toEqual({ vms: 1, memoryMiB: 1024, perNode: { a: 1 } });
    expect((await intent('vm-1'))?.movingTo).toBeUndefined();
    // Aborted stays aborted: a confirm of it is refused, the move itself answers aborted.
    const late = await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't');
    expect(!late.ok && late.error).toMatchObject({ code: 'conflict', details: { reason: 'aborted' } });
    expect(unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't')).state).toBe('aborted');
    expect(unwrap(await moveAllocation(deps, { requestId: 'mv-2', allocationId: vm.allocation.id }, 't')).state).toBe('held');
  });

  it('keeps the placement constraints, and says why nothing fits the kube-scheduler way', async () => {
    const { deps, placeOn, intent } = await setUp();
    const vm = await placeOn('vm-1', 'a', [{ key: 'zone', op: 'In', values: ['x'] }]);
    const held = unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    expect(held.destination.nodeId).toBe('b'); // c is zone y
    unwrap(await abortMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    const full = await placeOn('filler', 'b');
    expect(full.nodeId).toBe('b');
    const bigger = await moveAllocation(deps, { requestId: 'mv-2', allocationId: vm.allocation.id, to: 'c' }, 't');
    expect(!bigger.ok && bigger.error.code).toBe('insufficient_capacity');
    expect(!bigger.ok && bigger.error.message).toMatch(/^0\/3 nodes are available: /);
    expect((await intent('vm-1'))?.movingTo).toBeUndefined(); // nothing held: the source may move again
    const other = await moveAllocation(deps, { requestId: 'mv-3', allocationId: vm.allocation.id }, 'someone-else');
    expect(!other.ok && other.error.code).toBe('not_found');
  });

  it('a confirm while the source node is gone (decommissioned, lost) gives the source up: released in the intents, counted once, the sweep releases it later', async () => {
    const { deps, placeOn, usage, intent, cluster } = await setUp();
    const vm = await placeOn('vm-1', 'a');
    const held = unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    cluster.agents.setDown('a', true);
    const gone = { ...deps, nodeGone: (n: string) => n === 'a' };
    const confirmed = unwrap(await confirmMove(gone, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    expect(confirmed).toMatchObject({ state: 'confirmed', sourceReleased: false });
    expect(await usage()).toEqual({ vms: 1, memoryMiB: 1024, perNode: { [held.destination.nodeId]: 1 } });
    expect(await intent('vm-1')).toMatchObject({ state: 'released', releasedBy: 'move' });
  });
});

describe('evacuate', () => {
  it('holds a destination for every placement of the node, the same plan when run again, and counts each VM once through the confirms', async () => {
    const { deps, placeOn, usage, live } = await setUp();
    const vms = [await placeOn('vm-1', 'a'), await placeOn('vm-2', 'a'), await placeOn('vm-3', 'b')];
    const plan = unwrap(await evacuateNode(deps, { requestId: 'ev-1', nodeId: 'a' }));
    expect(plan).toMatchObject({ nodeId: 'a', movesCount: 2, unplacedCount: 0 });
    expect(plan.moves.map((m) => [m.source.requestId, m.state])).toEqual([
      ['vm-1', 'held'],
      ['vm-2', 'held'],
    ]);
    expect(plan.moves.every((m) => m.destination.nodeId !== 'a')).toBe(true);
    expect(await usage()).toMatchObject({ vms: 3, perNode: { a: 2, b: 1 } });
    expect(unwrap(await evacuateNode(deps, { requestId: 'ev-1', nodeId: 'a' }))).toEqual(plan);

    for (const m of plan.moves) unwrap(await confirmMove(deps, { requestId: m.moveRequestId, allocationId: m.source.allocationId }, 't'));
    expect(live('a')).toEqual([]);
    expect((await usage()).vms).toBe(3);
    const after = unwrap(await evacuateNode(deps, { requestId: 'ev-1', nodeId: 'a' }));
    expect(after.moves.map((m) => m.state)).toEqual(['confirmed', 'confirmed']);
    expect(after.moves.map((m) => m.destination.requestId)).toEqual(plan.moves.map((m) => m.destination.requestId));
    expect(vms[2]?.nodeId).toBe('b');
  });

  it('reports what cannot be placed with the reason, and a later run of the same evacuation places it', async () => {
    const { deps, placeOn, c } = await setUp({
      a: { memoryMiB: 8192, cores: 8, labels: { zone: 'x' } },
      b: { memoryMiB: 1024, cores: 1, labels: { zone: 'x' } },
      c: { memoryMiB: 1024, cores: 1, labels: { zone: 'y' } },
    });
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 't', maxVms: 10 })));
    await placeOn('vm-1', 'a');
    await placeOn('vm-2', 'a');
    await placeOn('vm-3', 'a');
    const plan = unwrap(await evacuateNode(deps, { requestId: 'ev-1', nodeId: 'a' }));
    expect(plan.movesCount).toBe(2);
    expect(plan.unplaced).toEqual([
      {
        requestId: 'vm-3',
        tenantId: 't',
        allocationId: 'a:3',
        error: expect.objectContaining({
          code: 'insufficient_capacity',
          message: "0/3 nodes are available: 2 Insufficient memory, 1 is the allocation's own node.",
        }),
      },
    ]);
    // Room comes back (vm-1's move aborted): the same evacuation, run again, places vm-3 and keeps the rest.
    const first = plan.moves[0];
    if (first === undefined) throw new Error('no move');
    unwrap(await abortMove(deps, { requestId: first.moveRequestId, allocationId: first.source.allocationId }, 't'));
    const again = unwrap(await evacuateNode(deps, { requestId: 'ev-1', nodeId: 'a' }));
    expect(again.moves.map((m) => [m.source.requestId, m.state])).toEqual([
      ['vm-1', 'aborted'],
      ['vm-2', 'held'],
      ['vm-3', 'held'],
    ]);
    expect(again.moves[1]).toEqual(plan.moves[1]);
    expect(again.unplacedCount).toBe(0);
  });
});
