import { TenantQuotaSchema, unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { inProcessCluster, inProcessMoveDeps } from '../testing/fake-agents.ts';
import { abortMove, confirmMove, moveAllocation } from './move.ts';

/*
 * Found by the simulator (cluster seed 16 with moves): a tenant released a VM whose move held a destination; the
 * source's quota went back while the held destination (counted 0, a move's) stayed reserved on its node, so the tenant
 * held more than its quota on the hosts until the hold expired, and could repeat it.
 */
describe('releasing a placement whose move holds a destination, or a moved one whose source may still run', () => {
  it('is refused until the move is confirmed or aborted, so no held destination outlives its counted source', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 }, b: { memoryMiB: 8192, cores: 8 } });
    const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 't', maxVms: 1 })));
    const deps = inProcessMoveDeps(cluster, c, { holdMs: 60_000 });
    const vm = unwrap(
      await c.place({
        request: { requestId: 'vm-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
        placement: { strategy: 'manual', nodeId: 'a' },
      }),
    );
    const move = unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'b' }, 't'));
    expect(move.state).toBe('held');

    const refused = await c.flow.release({ requestId: 'rel-1', placementRequestId: 'vm-1', tenantId: 't' });
    expect(!refused.ok && refused.error.code).toBe('conflict');
    expect(!refused.ok && refused.error.details?.['reason']).toBe('moving');
    expect(cluster.agents.live('a').map((a) => a.requestId)).toEqual(['vm-1']);
    // The quota still counts the VM: no second one fits while its destination is held.
    expect(
      (await c.place({ request: { requestId: 'vm-2', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } }, placement: {} })).ok,
    ).toBe(false);

    unwrap(await abortMove(deps, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'));
    unwrap(await c.flow.release({ requestId: 'rel-1', placementRequestId: 'vm-1', tenantId: 't' }));
    expect(cluster.agents.live('a')).toEqual([]);
    expect(cluster.agents.live('b')).toEqual([]);
  });

  it('releases a moved VM only once the source its move left running is released on its node (else refused, counted)', async () => {
    // Cluster seed 16 with moves: the confirm's release of the source met its node restarting, so the source stayed live
    // (left to the sweep) while its quota had moved to the destination; the tenant then released the destination and
    // placed again: one VM more on the hosts than its quota.
    const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 }, b: { memoryMiB: 8192, cores: 8 } });
    const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 't', maxVms: 1 })));
    const deps = inProcessMoveDeps(cluster, c, { holdMs: 60_000 });
    const vm = unwrap(
      await c.place({
        request: { requestId: 'vm-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
        placement: { strategy: 'manual', nodeId: 'a' },
      }),
    );
    const held = unwrap(await moveAllocation(deps, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'b' }, 't'));
    cluster.agents.setDown('a', true);
    // A confirm gives an unanswering source up only on a node taken as gone (decommissioned while lost); its agent may
    // still come back with it.
    const confirmed = unwrap(
      await confirmMove({ ...deps, nodeGone: () => true }, { requestId: 'mv-1', allocationId: vm.allocation.id }, 't'),
    );
    expect(confirmed.sourceReleased).toBe(false);
    const dest = held.destination.requestId;

    // The source's node does not answer: the destination's release is refused, and it keeps counting.
    const refused = await c.flow.release({ requestId: 'rel-dest', placementRequestId: dest, tenantId: 't' });
    expect(!refused.ok && refused.error.code).toBe('unavailable');
    expect(
      (await c.place({ request: { requestId: 'vm-2', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } }, placement: {} })).ok,
    ).toBe(false);

    // Back: the release first releases the source there, then the destination.
    cluster.agents.setDown('a', false);
    unwrap(await c.flow.release({ requestId: 'rel-dest', placementRequestId: dest, tenantId: 't' }));
    expect(cluster.agents.live('a')).toEqual([]);
    expect(cluster.agents.live('b')).toEqual([]);
  });
});
