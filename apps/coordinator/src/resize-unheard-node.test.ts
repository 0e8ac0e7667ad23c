import { TextEncoder } from 'node:util';
import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { NodeLeaseTable } from './liveness.ts';
import { moveAllocation } from './moves/move.ts';
import { resizeAllocation } from './resize.ts';
import { inProcessCluster, inProcessMoveDeps } from './testing/fake-agents.ts';
import { knownUnheard } from './unheard-node.ts';

/*
 * A coordinator that has just started answers for the nodes its view has not heard from yet: a node that holds a live
 * node lease, or that placements count on, may simply not have reported to it yet, so a resize or move of an allocation
 * there is `unavailable` with a retry hint; only a node nobody knows is `not_found`.
 */

/** vm-1 placed on a through c1; c2 started while a was silent, so c2's view has not heard from a (b it has). */
async function startedWhileSilent() {
  const cluster = inProcessCluster({
    a: { memoryMiB: 8192, cores: 8 },
    b: { memoryMiB: 8192, cores: 8 },
    z: { memoryMiB: 8192, cores: 8 },
  });
  const c1 = await cluster.coordinator('c1');
  const vm = unwrap(
    await c1.place({
      request: { requestId: 'vm-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
      placement: { strategy: 'manual', nodeId: 'a' },
    }),
  );
  await c1.flow.settled();
  cluster.agents.setDown('a', true);
  cluster.agents.setDown('z', true);
  const c2 = await cluster.coordinator('c2');
  cluster.agents.setDown('a', false);
  cluster.agents.setDown('z', false);
  expect(c2.view.get('a')).toBeUndefined();
  const leases = new NodeLeaseTable(cluster.clock);
  leases.caughtUp();
  const countingOn = (nodeId: string) => {
    let n = 0;
    for (const { value } of c2.store.cachedTenants()) n += value.usage.vmsPerNode[nodeId] ?? 0;
    return n;
  };
  const deps = {
    store: c2.store,
    agents: cluster.agents.caller(),
    knowsNode: (nodeId: string) => c2.view.get(nodeId) !== undefined,
    knownUnheard: (nodeId: string) => knownUnheard({ leases, countingOn, clock: cluster.clock }, nodeId),
  };
  return { cluster, c2, vm, leases, deps };
}

const lease = (bootId: string) => new TextEncoder().encode(JSON.stringify({ identity: 'agent-z', bootId }));

describe('a resize or move of a node the view has not heard from yet', () => {
  it('is unavailable with a retry hint when placements count on the node, and resizes once the node has reported', async () => {
    const { cluster, c2, vm, deps } = await startedWhileSilent();
    const resize = { requestId: 'rs-1', allocationId: vm.allocation.id, resources: { memoryMiB: 2048, vcpus: 1 } };
    const early = await resizeAllocation(deps, resize, 't');
    expect(early).toMatchObject({ ok: false, error: { code: 'unavailable', details: { nodeId: 'a', reason: 'node_unheard' } } });
    if (!early.ok) expect(early.error.details?.['retryAfterMs']).toBeGreaterThan(0);
    const moves = inProcessMoveDeps(cluster, c2, { holdMs: 60_000, knowsNode: deps.knowsNode, knownUnheard: deps.knownUnheard });
    const moved = await moveAllocation(moves, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't');
    expect(moved).toMatchObject({ ok: false, error: { code: 'unavailable', details: { reason: 'node_unheard' } } });

    c2.refresh(); // a reports
    expect(unwrap(await resizeAllocation(deps, resize, 't')).granted.memoryMiB).toBe(2048);
  });

  it('is unavailable when the node holds a live lease, and not_found once that lease is deleted or for a node nobody knows', async () => {
    const { cluster, deps, leases } = await startedWhileSilent();
    const resize = (allocationId: string) =>
      resizeAllocation(deps, { requestId: `rs-${allocationId}`, allocationId, resources: { memoryMiB: 2048, vcpus: 1 } }, 't');
    expect(await resize('z:1')).toMatchObject({ ok: false, error: { code: 'not_found' } });
    leases.renewed('z', lease('boot-1'));
    expect(await resize('z:1')).toMatchObject({
      ok: false,
      error: { code: 'unavailable', details: { nodeId: 'z', reason: 'node_unheard' } },
    });
    cluster.clock.advance(leases.ttlMs + 1); // expired unrenewed
    expect(await resize('z:1')).toMatchObject({ ok: false, error: { code: 'not_found' } });
    leases.renewed('z', lease('boot-2'));
    leases.deleted('z');
    expect(await resize('z:1')).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(await resize('nobody:1')).toMatchObject({ ok: false, error: { code: 'not_found' } });
  });
});
