import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { handleEndingEvent } from '../quota-events.ts';
import { threeNodeMoves } from '../testing/fake-agents.ts';
import { abortMove, confirmMove, destinationRequestId, moveAllocation } from './move.ts';

/** Tenant t at its limit of 3 VMs (two on a, one on b); vm-1 on a is moved to c by mv-1 (held unless `pending`). */
async function moving(opts: { pending?: boolean } = {}) {
  const { cluster, c, deps, place, usage, live } = await threeNodeMoves();
  const vm = unwrap(await place('vm-1', 'a'));
  unwrap(await place('vm-2', 'a'));
  unwrap(await place('vm-3', 'b'));
  const node = (id: string) => cluster.agents.nodes.get(id)!;
  // Pending: the destination's allocate and the place flow's fence after its timeout are both held in flight, as when the
  // move's coordinator dies with the allocate on the wire.
  if (opts.pending === true) for (const verb of ['allocate', 'fence']) node('c').stall.add(verb);
  const started = await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'c' }, 't');
  if (opts.pending !== true) unwrap(started);
  for (const verb of ['allocate', 'fence']) node('c').stall.delete(verb);
  const destId = destinationRequestId(vm.allocation.id, 'mv-1');
  const settle = { requestId: 'mv-1', allocationId: vm.allocation.id };
  /** Where the VM runs: its source on a, its destination on c. */
  const copies = () => [...live('a').filter((l) => l.startsWith('vm-1:')), ...live('c').filter((l) => l.startsWith(`${destId}:`))];
  return { cluster, c, deps, vm, node, destId, settle, usage, live, copies };
}

describe('a confirm and an abort of the same move never both act', () => {
  // A scheduler whose confirm went unanswered (its coordinator died after activating the destination) aborts instead;
  // the reconciler meanwhile finishes that confirm. The abort had found the source running and sent the destination's
  // release, which landed after the reconciler released the source: the VM ran nowhere, its usage counted on c.
  it('an abort racing the reconciler that finishes an unanswered confirm leaves exactly one copy', async () => {
    const { cluster, c, deps, node, destId, settle, usage, live, copies } = await moving();
    node('c').stall.add('activate');
    expect(await confirmMove(deps, settle, 't')).toMatchObject({ ok: false, error: { code: 'timeout' } });
    node('c').stall.delete('activate');
    cluster.agents.deliverStalled('c'); // the activate lands: the destination is active, the confirm's answer lost
    expect(live('c')).toEqual([`${destId}:active`]);

    node('c').stall.add('release'); // the abort's release of the destination is slow to land
    expect(await abortMove(deps, settle, 't')).toMatchObject({ ok: false, error: { code: 'timeout' } });
    node('c').stall.delete('release');
    await c.reconciler.reconcileOnce();
    cluster.clock.advance(60_001);
    await c.reconciler.reconcileOnce();
    cluster.agents.deliverStalled('c'); // the abort's release lands late
    await abortMove(deps, settle, 't'); // and its scheduler retries it
    await c.reconciler.reconcileOnce();

    expect(copies()).toEqual(['vm-1:active']);
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 2, b: 1 } });
    expect(await confirmMove(deps, settle, 't')).toMatchObject({ ok: false, error: { details: { reason: 'aborted' } } });
  });

  it('a confirm that finds the abort begun (the abort claimed the move) answers aborted and leaves the source running', async () => {
    const { cluster, deps, node, settle, usage, copies } = await moving();
    node('c').stall.add('release');
    expect(await abortMove(deps, settle, 't')).toMatchObject({ ok: false, error: { code: 'timeout' } });
    node('c').stall.delete('release');
    const confirmed = await confirmMove(deps, settle, 't');
    expect(confirmed).toMatchObject({ ok: false, error: { code: 'conflict', details: { reason: 'aborted' } } });
    cluster.agents.deliverStalled('c');
    expect(copies()).toEqual(['vm-1:active']);
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 2, b: 1 } });
  });
});

describe('a confirm past its claim', () => {
  // The claim keeps the activation's answer: finishing the confirm (the source's release, the batch) needs the source's
  // node and the bucket, not the destination's node again.
  it('finishes with the destination node down once the source node answers', async () => {
    const { cluster, deps, node, settle, usage, live } = await moving();
    node('a').stall.add('release');
    expect(await confirmMove(deps, settle, 't')).toMatchObject({ ok: false, error: { details: { reason: 'move_source' } } });
    node('a').stall.delete('release');
    node('a').stalled.splice(0);
    cluster.agents.setDown('c', true);
    expect(unwrap(await confirmMove(deps, settle, 't'))).toMatchObject({ state: 'confirmed', sourceReleased: true });
    expect(live('a')).toEqual(['vm-2:active']);
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 1, b: 1, c: 1 } });
  });
});

describe('the reconciler drives a move left half-settled to its end', () => {
  // The abort's coordinator died before its release reached the destination's node: the hold stayed reserved on c,
  // counted by nothing, until its expiry (10 minutes by default), though the scheduler had asked it gone.
  it('an abort whose release never landed: the reconciler releases the hold (not its expiry) and the move reads aborted', async () => {
    const { cluster, c, deps, node, settle, usage, live, copies } = await moving();
    node('c').stall.add('release');
    expect(await abortMove(deps, settle, 't')).toMatchObject({ ok: false, error: { code: 'timeout' } });
    node('c').stall.delete('release');
    node('c').stalled.splice(0); // that release is lost for good
    await c.reconciler.reconcileOnce();
    cluster.clock.advance(60_001);
    await c.reconciler.reconcileOnce();
    expect(live('c')).toEqual([]);
    expect(copies()).toEqual(['vm-1:active']);
    expect(await usage()).toMatchObject({ vms: 3, vmsPerNode: { a: 2, b: 1 } });
    expect(unwrap(await abortMove(deps, settle, 't')).state).toBe('aborted');
  });
});

describe('a destination whose source ended before it existed', () => {
  // The source's release event landed between the move's mark and its destination's intent (nothing to hand the count
  // to), and the move's coordinator died before its own check: the destination, counted 0, stayed held until expiry.
  it('is aborted by the reconciler once unchanged past the bound', async () => {
    const { cluster, c, destId, usage, live } = await moving();
    unwrap(
      await cluster.agents
        .caller()
        .call('a', 'release', { requestId: 'r-op', allocationRequestId: 'vm-1', reason: 'operator' }, { requestId: 'r-op' }),
    );
    unwrap(await c.store.released(unwrap(await c.store.get('vm-1'))!, 'agent'));
    expect(await usage()).toMatchObject({ vms: 2 });
    await c.reconciler.reconcileOnce();
    cluster.clock.advance(60_001);
    const round = await c.reconciler.reconcileOnce();
    expect(round.moves).toEqual({ [destId]: 'aborted' });
    expect(live('c')).toEqual([]);
    expect(await usage()).toMatchObject({ vms: 2, vmsPerNode: { a: 1, b: 1 } });
  });
});

describe('a destination still pending when its source ends', () => {
  // The move's coordinator died while the destination's reserve was in flight; the source VM then ended on its node
  // (its agent's released event). Its quota went back at once, while the destination, counted 0, landed on c and stayed
  // reserved until its hold expired: the tenant held one VM over its limit on the hosts for up to 10 minutes.
  it('keeps the VM counted until the destination is released, which the next reconcile round does', async () => {
    const { cluster, c, vm, destId, settle, deps, usage, live } = await moving({ pending: true });
    expect(unwrap(await c.store.get(destId))?.value.state).toBe('pending');
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
    // The destination may still land on c: it counts until proven gone.
    expect(await usage()).toMatchObject({ vms: 3 });
    cluster.agents.deliverStalled('c'); // the allocate lands late (then the place flow's fence, too late to stop it)
    expect(live('c')).toEqual([`${destId}:reserved`]);

    await c.reconciler.reconcileOnce(); // one round, not the hold's expiry
    expect(live('c')).toEqual([]);
    expect(await usage()).toMatchObject({ vms: 2, vmsPerNode: { a: 1, b: 1 } });
    expect(unwrap(await c.store.get(destId))?.value.state).toBe('released');
    expect(await confirmMove(deps, settle, 't')).toMatchObject({ ok: false, error: { details: { reason: 'aborted' } } });
  });
});
