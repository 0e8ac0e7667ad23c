import { TenantQuotaSchema, unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { inProcessCluster, inProcessMoveDeps, threeNodeMoves } from '../testing/fake-agents.ts';
import pino from 'pino';
import { ReconcileConfigSchema } from '../config.ts';
import { decommissionNode } from '../decommission.ts';
import { NodeStates } from '../node-states.ts';
import { handleEndingEvent } from '../quota-events.ts';
import { Reconciler } from '../reconciler.ts';
import { abortMove, confirmMove, destinationRequestId, moveAllocation, type MoveDeps } from './move.ts';

/** Tenant t at its limit of 3 VMs (two on a, one on b); vm-1 on a is held on c by move mv-1. */
async function heldMove() {
  const { cluster, c, deps, place, usage, live } = await threeNodeMoves();
  const vm = unwrap(await place('vm-1', 'a'));
  unwrap(await place('vm-2', 'a'));
  unwrap(await place('vm-3', 'b'));
  unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'c' }, 't'));
  const destId = destinationRequestId(vm.allocation.id, 'mv-1');
  return { cluster, c, deps, vm, destId, usage, live };
}

describe('move confirm: the source stays counted until its node released it', () => {
  // Simulator cluster seed 3 (--moves): the confirm gave the source's quota back while its node was down, so the copy
  // still running there counted against nothing and the tenant ran more VMs than its limit on the hosts.
  it('a confirm that cannot reach the source node leaves the source counted (releasing source); a retry finishes it', async () => {
    const { cluster, deps, vm, destId, usage, live, c } = await heldMove();
    cluster.agents.setDown('a', true);
    const refused = await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't');
    expect(refused).toMatchObject({ ok: false, error: { code: 'unavailable', details: { reason: 'move_source', nodeId: 'a' } } });
    // Two copies run (a and c) and the VM counts once, on its source, until a releases it.
    expect(live('c')).toEqual([`${destId}:active`]);
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 2, b: 1 } });
    expect(unwrap(await c.store.get('vm-1'))?.value.state).toBe('placed');

    cluster.agents.setDown('a', false);
    expect(live('a')).toContain('vm-1:active');
    const confirmed = unwrap(await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    expect(confirmed).toMatchObject({ state: 'confirmed', sourceReleased: true });
    expect(live('a')).toEqual(['vm-2:active']);
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 1, b: 1, c: 1 } });
  });

  it('a source whose intent ended meanwhile (decommissioned, released by its agent) no longer blocks the confirm', async () => {
    const { cluster, deps, vm, c, usage } = await heldMove();
    cluster.agents.setDown('a', true);
    unwrap(await c.store.released(unwrap(await c.store.get('vm-1'))!, 'decommission'));
    const confirmed = unwrap(await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    expect(confirmed.state).toBe('confirmed');
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 1, b: 1, c: 1 } });
  });
});

describe('a confirm interrupted after it released the source', () => {
  // Simulator cluster seed 16 (--moves): the confirm released the source, its batch failed (the KV), and the agent's
  // `released` event gave the source's quota back while the active destination still counted 0: the tenant placed
  // into that gap and ran one VM over its limit.
  it("the source's own release event leaves it counted; an abort is refused; a retried confirm moves the count", async () => {
    const { cluster, deps, vm, destId, usage, live, c } = await heldMove();
    // The confirm claims the move and sends the source's release, which lands on a only after the confirm gave up.
    cluster.agents.nodes.get('a')!.stall.add('release');
    const unanswered = await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't');
    expect(unanswered).toMatchObject({ ok: false, error: { code: 'unavailable', details: { reason: 'move_source' } } });
    cluster.agents.nodes.get('a')!.stall.delete('release');
    cluster.agents.deliverStalled('a');
    expect(live('a')).toEqual(['vm-2:active']);
    const reason = 'moved to c (move mv-1)';
    const event = {
      kind: 'released' as const,
      nodeId: 'a',
      at: 0,
      requestId: 'vm-1',
      allocationId: vm.allocation.id,
      tenantId: 't',
      reason,
    };
    expect(unwrap(await handleEndingEvent(c.store, event))).toBe('move_confirming');
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 2, b: 1 } });

    const aborted = await abortMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't');
    expect(aborted).toMatchObject({ ok: false, error: { code: 'conflict', details: { reason: 'confirming' } } });
    expect(live('c')).toEqual([`${destId}:active`]);
    expect(unwrap(await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't')).state).toBe('confirmed');
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 1, b: 1, c: 1 } });
  });
});

describe('reconciler: a move left half-confirmed is finished by the coordinators', () => {
  // Simulator seed 12 (--moves): the confirm's activate met a stalled disk and timed out; the destination became active
  // beside its counted source, uncounted, and nothing but a re-sent confirm would ever finish it.
  it('a destination found active past pendingOlderThanMs is confirmed: source released on its node, the count moved', async () => {
    const { cluster, deps, vm, destId, usage, live, c } = await heldMove();
    cluster.agents.nodes.get('c')!.stall.add('activate');
    const timedOut = await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't');
    expect(timedOut).toMatchObject({ ok: false, error: { code: 'timeout' } });
    cluster.agents.nodes.get('c')!.stall.delete('activate');
    cluster.agents.deliverStalled('c'); // the activate lands late
    expect(live('c')).toEqual([`${destId}:active`]);

    await c.reconciler.reconcileOnce(); // sees the held destination
    expect(live('a')).toContain('vm-1:active'); // not before it is old enough
    cluster.clock.advance(60_001);
    const round = await c.reconciler.reconcileOnce();
    expect(round.moves).toEqual({ [destId]: 'confirmed' });
    expect(live('a')).toEqual(['vm-2:active']);
    expect(unwrap(await c.store.get(destId))?.value).toMatchObject({ state: 'placed', movedFrom: { requestId: 'vm-1' } });
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 1, b: 1, c: 1 } });
  });

  it('a destination still only held (reserved) is left for its scheduler', async () => {
    const { cluster, destId, live, c } = await heldMove();
    await c.reconciler.reconcileOnce();
    cluster.clock.advance(60_001);
    const round = await c.reconciler.reconcileOnce();
    expect(round.moves).toEqual({ [destId]: 'held' });
    expect(live('c')).toEqual([`${destId}:reserved`]);
    expect(live('a')).toContain('vm-1:active');
  });
});

describe('move of a reservation', () => {
  // Simulator cluster seed 87 (--moves): a reserved source expired under its move, its quota went back, and the held
  // destination (counted 0) stayed reserved: the tenant held one VM more than its limit on the hosts.
  it('is refused: only an active allocation can be moved', async () => {
    const { c, deps } = await heldMove();
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 't', maxVms: 4 })));
    const reserved = unwrap(
      await c.place({
        request: { requestId: 'res-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 }, reservation: { ttlMs: 60_000 } },
        placement: { strategy: 'manual', nodeId: 'b' },
      }),
    );
    const refused = await moveAllocation(deps, { requestId: 'mv-2', allocationId: reserved.allocation.id, to: 'c' }, 't');
    expect(refused).toMatchObject({ ok: false, error: { code: 'conflict', details: { reason: 'not_active', status: 'reserved' } } });
  });
});

describe('decommission of a source node while its move holds a destination', () => {
  // Simulator cluster seed 27 (--moves): the source's node was lost for good and decommissioned; the source was given up
  // (quota back) while its move's destination ran on, counted 0, and the tenant placed over its limit.
  it('hands the count to the destination in the batch that gives the source up', async () => {
    const { cluster, c, destId, usage, live } = await heldMove();
    const logger = pino({ level: 'silent' });
    const nodeStates = new NodeStates({
      bucket: cluster.bucket,
      clock: cluster.clock,
      coordinatorId: 'c1',
      logger,
      onChange: (n, r) => c.view.setDecommissioned(n, r),
    });
    await nodeStates.start();
    const agents = cluster.agents.caller();
    const reconciler = new Reconciler({
      store: c.store,
      agents,
      config: ReconcileConfigSchema.parse({ pendingOlderThanMs: 1_000 }),
      logger,
      clock: cluster.clock,
    });
    cluster.agents.setDown('a', true);
    cluster.clock.advance(120_000);
    c.view.sweep();
    unwrap(
      await decommissionNode(
        { nodeStates, view: c.view, store: c.store, agents, reconciler, logger, agentTimeoutMs: 100 },
        { nodeId: 'a', requestId: 'd1' },
      ),
    );
    expect(live('c')).toEqual([`${destId}:reserved`]);
    // vm-2 went with a; vm-1 is its destination on c now, counted there.
    expect(await usage()).toMatchObject({ vms: 2, vmsPerNode: { b: 1, c: 1 } });
    expect(unwrap(await c.store.get(destId))?.value).toMatchObject({ state: 'placed', movedFrom: { requestId: 'vm-1' } });
  });
});

describe('a moving source ended on its node by anything but its confirm', () => {
  // Simulator cluster seed 37 (--moves): the sweep found the source gone from its node and gave its quota back while
  // its move's active destination stayed, counted 0: the tenant placed over its limit.
  it('hands the count to the destination (its agent released it directly)', async () => {
    const { cluster, vm, destId, usage, c, deps, live } = await heldMove();
    unwrap(
      await cluster.agents
        .caller()
        .call('a', 'release', { requestId: 'r-op', allocationRequestId: 'vm-1', reason: 'operator' }, { requestId: 'r-op' }),
    );
    const event = {
      kind: 'released' as const,
      nodeId: 'a',
      at: 0,
      requestId: 'vm-1',
      allocationId: vm.allocation.id,
      tenantId: 't',
      reason: 'operator',
    };
    expect(unwrap(await handleEndingEvent(c.store, event))).toBe('released');
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 1, b: 1, c: 1 } });
    expect(unwrap(await c.store.get(destId))?.value).toMatchObject({ state: 'placed', movedFrom: { requestId: 'vm-1' } });
    // Simulator cluster seed 276 (--moves): the confirm then answered the move confirmed with its destination still a
    // reservation (which expires): it activates it.
    expect(live('c')).toEqual([`${destId}:reserved`]);
    const confirmed = unwrap(await confirmMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    expect(confirmed.state).toBe('confirmed');
    expect(live('c')).toEqual([`${destId}:active`]);
  });
});

describe('a release in flight when a move marks its source', () => {
  // Simulator cluster seed 150 (--moves): the tenant's release of a VM stalled on its agent's disk; a move marked the
  // source and held a destination meanwhile; the release then ended the source intent (quota back) and the held
  // destination (counted 0) stayed reserved: the tenant ran one VM over its limit.
  it('releases the held destination before the source intent gives its quota back', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 }, b: { memoryMiB: 8192, cores: 8 } });
    const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0, agentTimeoutMs: 100 } });
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 't', maxVms: 1 })));
    const deps = inProcessMoveDeps(cluster, c, { holdMs: 600_000 });
    const vm = unwrap(
      await c.place({
        request: { requestId: 'vm-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
        placement: { strategy: 'manual', nodeId: 'a' },
      }),
    );
    cluster.agents.nodes.get('a')!.stall.add('release');
    expect((await c.flow.release({ requestId: 'rel-1', placementRequestId: 'vm-1', tenantId: 't' })).ok).toBe(false);
    cluster.agents.nodes.get('a')!.stall.delete('release');
    // The release lands on a while the move places its destination (after its liveness check, before its reply).
    const place = deps.flow.place;
    const racing: MoveDeps = {
      ...deps,
      flow: {
        place: async (req, move) => {
          const r = await place(req, move);
          cluster.agents.deliverStalled('a');
          return r;
        },
      },
    };
    const refused = await moveAllocation(racing, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'b' }, 't');
    expect(refused).toMatchObject({ ok: false, error: { code: 'conflict', details: { reason: 'source_ended' } } });
    expect(cluster.agents.live('a')).toEqual([]);
    expect(cluster.agents.live('b')).toEqual([]);
    unwrap(await c.flow.release({ requestId: 'rel-1', placementRequestId: 'vm-1', tenantId: 't' }));
    expect(unwrap(await c.store.usage('t'))?.value.usage.vms).toBe(0);
  });
});
