import { decode, USAGE_STREAM, usageSubject } from '@allot/protocol';
import { UsageSnapshotSchema } from '@allot/core';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startLocalCluster, waitFor, type LocalCluster } from '../harness/index.ts';

/*
 * A real agent and a real coordinator: heartbeats of an unchanged host leave the per-core list out (what the stream
 * stores), the coordinator's view still shows it, and a change reaches the view with its new list within the staleness
 * bound (docs/architecture.md, "Heartbeats").
 */
const HEARTBEAT_MS = 300;
/** The fleet's staleness target (issue 16): a change is in the view within this. */
const STALENESS_BOUND_MS = 1_000;
let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await startLocalCluster({
    agents: [{ nodeId: 'h1', simulatedHost: { cores: 16, memoryMiB: 65_536 } }],
    heartbeatMs: HEARTBEAT_MS,
  });
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

async function lastStored() {
  const jsm = await jetstreamManager(cluster.nc);
  const m = await jsm.streams.getMessage(USAGE_STREAM, { last_by_subj: usageSubject('h1') });
  if (m === null) throw new Error('no usage message stored for h1');
  const s = decode(UsageSnapshotSchema, m.data, Number.POSITIVE_INFINITY);
  if (!s.ok) throw new Error(s.error.message);
  return s.value;
}

async function viewOf() {
  const r = await cluster.sched('node', { nodeId: 'h1' });
  if (!r.ok) throw new Error(r.error.message);
  return r.value.snapshot;
}

describe('usage heartbeats', () => {
  it('store no per-core list for an unchanged host, yet the view shows it; a change is in the view within the bound', async () => {
    await waitFor(async () => (await lastStored()).cpu.cores.length === 0, { timeoutMs: 5_000, message: 'a heartbeat without the list' });
    const beat = await lastStored();
    const shown = await viewOf();
    expect(shown.cpu.cores).toHaveLength(16);
    expect(shown.cpu.coresDigest).toBe(beat.cpu.coresDigest);

    const placed = await cluster.sched('place', {
      request: { requestId: 'hb-excl-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 2 }, cpu: { exclusive: true } },
    });
    if (!placed.ok) throw new Error(placed.error.message);
    const answered = performance.now();
    await waitFor(async () => (await viewOf()).cpu.cores.filter((c) => c.allocationId === placed.value.allocation.id).length === 2, {
      timeoutMs: STALENESS_BOUND_MS,
      message: 'the exclusive cores in the view',
    });
    expect(performance.now() - answered).toBeLessThan(STALENESS_BOUND_MS);
    // The next heartbeats leave the new list out again; the view keeps it.
    await waitFor(async () => (await lastStored()).cpu.cores.length === 0 && (await lastStored()).seq === (await viewOf()).seq, {
      timeoutMs: 5_000,
      message: 'a heartbeat without the new list',
    });
    expect((await viewOf()).cpu.cores.filter((c) => c.role === 'exclusive')).toHaveLength(2);
  });
});
