import { unwrap } from '@allot/core';
import { describe, expect, it } from 'vitest';
import type { IntentStore } from './intents/intent-store.ts';
import { moveAllocation } from './moves/move.ts';
import { resizeAllocation } from './resize.ts';
import { inProcessCluster, inProcessMoveDeps } from './testing/fake-agents.ts';

/*
 * A resize and a move of one VM at once (simulator cluster seed 373 with --moves --lifecycle --batches): whichever
 * writes the placement's intent first wins, the other is refused. A move started while a shrink was in flight held its
 * destination at the old size, so the tenant ran more vCPUs than its limit on the hosts once the source shrank.
 */

async function placed() {
  const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8 }, b: { memoryMiB: 8192, cores: 8 } });
  const c = await cluster.coordinator('c1', { place: { timeoutRetries: 0 } });
  const vm = unwrap(
    await c.place({
      request: { requestId: 'vm-1', tenantId: 't', resources: { memoryMiB: 2048, vcpus: 4 } },
      placement: { strategy: 'manual', nodeId: 'a' },
    }),
  );
  await c.flow.settled();
  const moves = inProcessMoveDeps(cluster, c, { holdMs: 60_000 });
  const resizeDeps = { store: c.store, agents: cluster.agents.caller(), knowsNode: () => true, agentTimeoutMs: 100 };
  return { cluster, c, vm, moves, resizeDeps };
}

describe('a resize and a move of the same VM', () => {
  it('a move is refused while a resize of the VM is in flight (its destination would take the old size)', async () => {
    const { cluster, c, vm, moves, resizeDeps } = await placed();
    (cluster.agents.nodes.get('a') as { stall: Set<string> }).stall.add('resize'); // the shrink's answer never comes
    const shrink = await resizeAllocation(
      resizeDeps,
      { requestId: 'rs-1', allocationId: vm.allocation.id, resources: { memoryMiB: 1024, vcpus: 1 } },
      't',
    );
    expect(shrink.ok).toBe(false);
    expect(unwrap(await c.store.get('vm-1'))?.value.resizing?.requestId).toBe('rs-1');
    const moved = await moveAllocation(moves, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'b' }, 't');
    expect(moved).toMatchObject({ ok: false, error: { code: 'conflict', details: { reason: 'resizing', resizing: 'rs-1' } } });
    expect(cluster.agents.live('b')).toEqual([]);
  });

  it('a resize whose hold loses to a move marking the VM is refused, and the VM keeps its size', async () => {
    const { cluster, vm, moves, resizeDeps } = await placed();
    // The move lands between the resize's read of the intent and its hold's write.
    let raced = false;
    const store = new Proxy(resizeDeps.store, {
      get(target, prop, receiver) {
        if (prop === 'resized')
          return async (...args: Parameters<IntentStore['resized']>) => {
            if (!raced) {
              raced = true;
              unwrap(await moveAllocation(moves, { requestId: 'mv-1', allocationId: vm.allocation.id, to: 'b' }, 't'));
            }
            return target.resized(...args);
          };
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const shrink = await resizeAllocation(
      { ...resizeDeps, store },
      { requestId: 'rs-1', allocationId: vm.allocation.id, resources: { memoryMiB: 1024, vcpus: 1 } },
      't',
    );
    expect(raced).toBe(true);
    expect(shrink).toMatchObject({ ok: false, error: { code: 'conflict', details: { reason: 'moving', moveRequestId: 'mv-1' } } });
    expect(cluster.agents.live('a').map((a) => a.granted.vcpus)).toEqual([4]);
    expect(cluster.agents.live('b').map((a) => a.granted.vcpus)).toEqual([4]);
  });
});
