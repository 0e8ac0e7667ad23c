import { TenantQuotaSchema, unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { threeNodeMoves } from '../testing/fake-agents.ts';
import { handleEndingEvent } from '../quota-events.ts';
import { abortMove, confirmMove, destinationRequestId, moveAllocation } from './move.ts';

/*
 * A move's destination preempted (simulator cluster seed 508 with --moves --lifecycle --batches): a later confirm of the
 * move answers what happened, the preemption and its preemptor, never "aborted" (the move was not aborted, and after a
 * confirm's claim its source is gone).
 */

/** vm-1 (tenant t, priority 0) on a, held on c by move mv-1; vm-2 on b. */
async function heldMove() {
  const { cluster, c, deps, place, usage, live } = await threeNodeMoves();
  const vm = unwrap(await place('vm-1', 'a'));
  unwrap(await place('vm-2', 'b'));
  unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'c' }, 't'));
  const destId = destinationRequestId(vm.allocation.id, 'mv-1');
  const settle = { requestId: 'mv-1', allocationId: vm.allocation.id };
  /** Tenant u's priority-50 VM that needs all of c: the move's destination there is its only victim. */
  const preemptC = async () =>
    unwrap(
      await c.place({
        request: { requestId: 'big', tenantId: 'u', priority: 50, resources: { memoryMiB: 8192, vcpus: 1 } },
        placement: { strategy: 'manual', nodeId: 'c', allowPreemption: true },
      }),
    );
  return { cluster, c, deps, destId, settle, preemptC, usage, live };
}

describe('a move whose destination was preempted', () => {
  it('confirmed, then preempted at its destination: a confirm again answers the preemption and its preemptor, an abort that it was confirmed', async () => {
    const { deps, destId, settle, preemptC, usage, live } = await heldMove();
    expect(unwrap(await confirmMove(deps, settle, 't')).state).toBe('confirmed');
    expect((await preemptC()).othersPreempted).toBe(1);
    expect(live('c')).toEqual(['big:active']);

    const again = await confirmMove(deps, settle, 't');
    expect(again).toMatchObject({
      ok: false,
      error: { code: 'conflict', details: { requestId: 'mv-1', reason: 'preempted', state: 'confirmed', nodeId: 'c' } },
    });
    if (!again.ok) expect(again.error.message).not.toMatch(/aborted/);
    // The preemptor is tenant u's: its request id is not tenant t's to learn (as a place names only the caller's victims).
    if (!again.ok) expect([again.error.details?.['preemptedBy'], again.error.message.includes('big')]).toEqual([undefined, false]);
    expect(await abortMove(deps, settle, 't')).toMatchObject({
      ok: false,
      error: { code: 'conflict', details: { reason: 'preempted', state: 'confirmed' } },
    });
    expect(live('a')).toEqual([]);
    expect(await usage()).toMatchObject({ vms: 1, vmsPerNode: { b: 1 } });
    expect(destId).toMatch(/^move-/);
  });

  it('preempted while only held: a confirm answers the preemption, and the VM stays on its source', async () => {
    const { deps, settle, preemptC, usage, live } = await heldMove();
    await preemptC();
    const refused = await confirmMove(deps, settle, 't');
    expect(refused).toMatchObject({
      ok: false,
      error: { code: 'conflict', details: { reason: 'preempted', state: 'released', nodeId: 'c' } },
    });
    if (!refused.ok) expect(refused.error.message).toMatch(/stays on a/);
    if (!refused.ok) expect([refused.error.details?.['preemptedBy'], refused.error.message.includes('big')]).toEqual([undefined, false]);
    expect(live('a')).toEqual(['vm-1:active']);
    expect(await usage()).toMatchObject({ vms: 2, vmsPerNode: { a: 1, b: 1 } });
  });

  it('preempted after its confirm claimed it (its source node did not answer): a confirm again releases the source and answers the preemption', async () => {
    const { cluster, deps, settle, preemptC, usage, live } = await heldMove();
    cluster.agents.setDown('a', true);
    expect(await confirmMove(deps, settle, 't')).toMatchObject({
      ok: false,
      error: { code: 'unavailable', details: { reason: 'move_source' } },
    });
    await preemptC();
    cluster.agents.setDown('a', false);

    const again = await confirmMove(deps, settle, 't');
    expect(again).toMatchObject({
      ok: false,
      error: { code: 'conflict', details: { reason: 'preempted', state: 'confirmed' } },
    });
    // The claim goes forward: the source is released (the move's confirm may have released it already elsewhere).
    expect(live('a')).toEqual([]);
    expect(await usage()).toMatchObject({ vms: 1, vmsPerNode: { b: 1 } });
  });

  it("names the preemptor from the agent's preempted event when the quota events end the destination's intent, if it is the tenant's own", async () => {
    const { c, deps, destId, settle } = await heldMove();
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 't', maxVms: 4 })));
    unwrap(
      await c.place({
        request: { requestId: 'big', tenantId: 't', priority: 50, resources: { memoryMiB: 1024, vcpus: 1 } },
        placement: { strategy: 'manual', nodeId: 'b' },
      }),
    );
    const held = unwrap(await c.store.get(destId))?.value.reply?.allocation.id ?? '';
    const event = {
      kind: 'preempted' as const,
      nodeId: 'c',
      at: Date.now(),
      allocationId: held,
      requestId: destId,
      preemptedBy: { allocationId: 'c:99', requestId: 'big' },
      reason: 'preempted by big (allocation c:99)',
    };
    expect(unwrap(await handleEndingEvent(c.store, event))).toBe('released');
    expect(await confirmMove(deps, settle, 't')).toMatchObject({
      ok: false,
      error: { code: 'conflict', details: { reason: 'preempted', state: 'released', preemptedBy: 'big', allocationId: held } },
    });
  });

  it('held, and ended on its node otherwise (its agent released it): a confirm answers that, not aborted', async () => {
    const { c, deps, destId, settle, live } = await heldMove();
    const held = unwrap(await c.store.get(destId))?.value.reply?.allocation.id ?? '';
    const event = {
      kind: 'released' as const,
      nodeId: 'c',
      at: Date.now(),
      allocationId: held,
      requestId: destId,
      reason: 'released on the host',
    };
    expect(unwrap(await handleEndingEvent(c.store, event))).toBe('released');
    const refused = await confirmMove(deps, settle, 't');
    expect(refused).toMatchObject({
      ok: false,
      error: { code: 'conflict', details: { reason: 'released', state: 'released', releasedBy: 'agent' } },
    });
    if (!refused.ok) expect(refused.error.message).not.toMatch(/aborted/);
    expect(live('a')).toEqual(['vm-1:active']);
  });
});
