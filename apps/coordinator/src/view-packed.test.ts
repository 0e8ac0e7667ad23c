import { PackedCores, UsageSnapshotSchema, unwrap, type AllocationRequest, type UsageSnapshot } from '@allot/core';
import { decode, encode } from '@allot/protocol';
import { decide, seededRandom } from '@allot/placement';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fullSnapshot as full, heartbeatSnapshot as heartbeat, type SyntheticNode } from './http/fixtures.ts';
import { rowOf } from './http/model.ts';
import { ClusterView } from './view.ts';

/*
 * The view holds each node's per-core list packed (@allot/core packed-cores.ts, view.ts heldForm): readers see the
 * list the agent sent, whatever way they read it, and nothing done per heartbeat, per dashboard row or per placement
 * decision unpacks it.
 */

const node: SyntheticNode = { nodeId: 'a', seq: 2, cores: 64, exclusive: { vm1: [4, 5, 6, 7], vm2: [40, 41] }, reservedCores: [0] };

afterEach(() => vi.restoreAllMocks());

describe('ClusterView: per-core lists held packed', () => {
  it('shows the list the agent sent, through reads, JSON and the wire codec, after heartbeats too', () => {
    const view = new ClusterView({ lostAfterMs: 30_000 });
    const sent = full(node, 'd1');
    view.apply(decodeOwn(sent));
    view.apply(decodeOwn(heartbeat({ ...node, memoryUsed: 7 }, 'd1')));
    const shown = view.get('a')?.snapshot;
    expect(shown?.cpu.cores).toStrictEqual(sent.cpu.cores);
    expect(shown?.memory.used).toBe(7);
    expect(JSON.parse(JSON.stringify(shown)).cpu.cores).toEqual(sent.cpu.cores);
    expect(unwrap(decode(UsageSnapshotSchema, encode(shown)))).toEqual({
      ...heartbeat({ ...node, memoryUsed: 7 }, 'd1'),
      cpu: { ...sent.cpu },
    });
  });

  it('unpacks no list for heartbeats, full reports, dashboard rows, cluster totals or placement decisions', () => {
    const unpack = vi.spyOn(PackedCores.prototype, 'unpack');
    const view = new ClusterView({ lostAfterMs: 30_000, index: { random: seededRandom(1) } });
    const ids = Array.from({ length: 200 }, (_, i) => `n${i}`);
    for (const id of ids) view.apply(full({ ...node, nodeId: id, seq: 1 }, 'd1'));
    for (const id of ids) view.apply(heartbeat({ ...node, nodeId: id, seq: 1 }, 'd1'));
    for (const id of ids.slice(0, 20)) view.apply(full({ ...node, nodeId: id, seq: 2, exclusive: { vm1: [4, 5, 6, 7] } }, 'd2'));
    for (const v of view.nodes()) rowOf(v);
    view.usage(0);
    view.health();
    for (const exclusive of [false, true])
      for (const numa of ['any', 'require'] as const) {
        const request: AllocationRequest = {
          requestId: 'r1',
          tenantId: 't1',
          resources: { memoryMiB: 1024, vcpus: 4 },
          priority: 0,
          cpu: { exclusive, numa },
          metadata: {},
        };
        expect(
          unwrap(decide(view.index, request, { constraints: [], allowPreemption: false }, { random: seededRandom(2) })).candidates.length,
        ).toBeGreaterThan(0);
      }
    expect(unpack).not.toHaveBeenCalled();
    expect(view.get('n0')?.snapshot.cpu.cores).toHaveLength(64);
    expect(unpack).toHaveBeenCalledTimes(1);
  });
});

/** The snapshot as the usage feed gets it: encoded by an agent, decoded and validated here. */
function decodeOwn(s: UsageSnapshot): UsageSnapshot {
  return unwrap(decode(UsageSnapshotSchema, encode(s)));
}
