import { err, ok, type UsageSnapshot } from '@allot/core';
import { largestNumaSharedCores } from '@allot/placement';
import { describe, expect, it } from 'vitest';
import { fullSnapshot as full, heartbeatSnapshot as heartbeat, syntheticSnapshot } from './http/fixtures.ts';
import type { AgentCaller } from './agents.ts';
import { withCoreList } from './core-list.ts';
import { ClusterView } from './view.ts';

const newView = () => new ClusterView({ lostAfterMs: 30_000 });

describe('ClusterView: heartbeats without the per-core list', () => {
  it('keeps showing the list it holds under the same digest, with the heartbeat’s fresh figures', () => {
    const view = newView();
    view.apply(full({ nodeId: 'a', seq: 3, memoryUsed: 100 }, 'd1'));
    view.apply(heartbeat({ nodeId: 'a', seq: 3, memoryUsed: 900 }, 'd1'));
    const shown = view.get('a')?.snapshot;
    expect(shown?.cpu.cores).toHaveLength(16);
    expect(shown?.cpu.cores[0]).toMatchObject({ id: 0, role: 'shared' });
    expect(shown?.memory.used).toBe(900);
  });

  it('shows a changed host’s new list, and no stale list when it holds none under the heartbeat’s digest', () => {
    const view = newView();
    view.apply(full({ nodeId: 'a', seq: 1 }, 'd1'));
    view.apply(full({ nodeId: 'a', seq: 2, exclusive: { vm1: [0, 1] } }, 'd2'));
    expect(
      view
        .get('a')
        ?.snapshot.cpu.cores.filter((c) => c.role === 'exclusive')
        .map((c) => c.id),
    ).toEqual([0, 1]);
    view.apply(heartbeat({ nodeId: 'a', seq: 2, exclusive: { vm1: [0, 1] } }, 'd2'));
    expect(view.get('a')?.snapshot.cpu.cores.filter((c) => c.role === 'exclusive')).toHaveLength(2);
    // A list this coordinator never received (its replay started after it): none shown rather than d2's as d3's.
    view.apply(heartbeat({ nodeId: 'a', seq: 3, exclusive: { vm1: [0, 1], vm2: [8, 9, 10] } }, 'd3'));
    expect(view.get('a')?.snapshot.cpu.cores).toEqual([]);
  });

  it('places `numa: require` by the NUMA counts when it holds no list (a cold start replays only the last heartbeat)', () => {
    const view = newView();
    view.apply(heartbeat({ nodeId: 'a', exclusive: { vm1: [0, 1, 2] } }, 'd1'));
    const node = view.get('a');
    expect(node?.snapshot.cpu.cores).toEqual([]);
    expect(node === undefined ? -1 : largestNumaSharedCores(node)).toBe(8);
  });

  it('takes an older agent’s full snapshots (no digest, no NUMA counts) as before', () => {
    const view = newView();
    view.apply(full({ nodeId: 'a', seq: 1 }, 'd1'));
    const old = syntheticSnapshot({ nodeId: 'a', seq: 2, exclusive: { vm1: [5] } });
    expect(old.cpu.coresDigest).toBeUndefined();
    view.apply(old);
    const shown = view.get('a');
    expect(shown?.snapshot.cpu.cores.find((c) => c.id === 5)?.role).toBe('exclusive');
    expect(shown === undefined ? -1 : largestNumaSharedCores(shown)).toBe(8);
  });
});

describe('a node whose per-core list this coordinator never received', () => {
  const caller = (answer: UsageSnapshot | undefined) => {
    const calls: string[] = [];
    return {
      calls,
      call: (nodeId: string, verb: string) => {
        calls.push(`${nodeId}.${verb}`);
        return Promise.resolve(answer === undefined ? err('timeout', 'no answer') : ok(answer));
      },
    } as unknown as AgentCaller & { calls: string[] };
  };

  it('is read with the list its agent sends when asked, which the view keeps', async () => {
    const view = newView();
    view.apply(heartbeat({ nodeId: 'a', seq: 2, exclusive: { vm1: [0, 1] } }, 'd2'));
    const agents = caller(full({ nodeId: 'a', seq: 2, exclusive: { vm1: [0, 1] } }, 'd2'));
    const read = await withCoreList(view, agents, 'a');
    expect(read?.snapshot.cpu.cores.filter((c) => c.allocationId === 'vm1').map((c) => c.id)).toEqual([0, 1]);
    expect(view.get('a')?.snapshot.cpu.cores).toHaveLength(16);
    await withCoreList(view, agents, 'a');
    expect(agents.calls).toEqual(['a.usage']);
  });

  it('is read as it is when the agent does not answer, or answers with another layout', async () => {
    const view = newView();
    view.apply(heartbeat({ nodeId: 'a', seq: 2 }, 'd2'));
    expect((await withCoreList(view, caller(undefined), 'a'))?.snapshot.cpu.cores).toEqual([]);
    const other = newView(); // this view would not ask again so soon (the next test)
    other.apply(heartbeat({ nodeId: 'a', seq: 2 }, 'd2'));
    const changed = await withCoreList(other, caller(full({ nodeId: 'a', seq: 3, exclusive: { vm2: [4] } }, 'd3')), 'a');
    expect(changed?.snapshot.cpu.cores).toEqual([]);
    expect(await withCoreList(view, caller(undefined), 'nobody')).toBeUndefined();
  });

  it('asks its agent once for many reads at once, and not again right after an ask that brought no list', async () => {
    const view = newView();
    view.apply(heartbeat({ nodeId: 'a', seq: 2 }, 'd2'));
    const agents = caller(undefined);
    // A reader (or a dashboard left open in many tabs) reading the node in a loop must not become a flood on its agent.
    await Promise.all(Array.from({ length: 50 }, () => withCoreList(view, agents, 'a')));
    await withCoreList(view, agents, 'a');
    expect(agents.calls).toEqual(['a.usage']);
  });
});
