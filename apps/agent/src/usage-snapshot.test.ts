import { unwrap, UsageSnapshotSchema } from '@allot/core';
import { MemoryJournal, type HostManager } from '@allot/managers';
import { SimulatedProbe } from '@allot/probe';
import { encode } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { AgentConfigSchema } from './config/index.ts';
import { createHostManager } from './host.ts';
import { buildUsageSnapshot, CoreListElision, coreListRefreshMs, IdleStatus } from './usage-snapshot.ts';

const config = AgentConfigSchema.parse({ nodeId: 'n1', stateDir: '/nonexistent' });
const ctx = { nodeId: 'n1', bootId: 'b', labels: {}, heartbeatMs: 2000, overcommit: { memory: 1, cpu: 1 } };

async function hostOf(numaNodes = 2) {
  const probe = unwrap(SimulatedProbe.create({ cores: 16, sockets: numaNodes, numaNodes, threadsPerCore: 1, memoryMiB: 65_536 }));
  return unwrap(await createHostManager(config, probe, new MemoryJournal()));
}

async function snapshotOf(host: HostManager) {
  const view = unwrap(await host.getHostView());
  return UsageSnapshotSchema.parse(buildUsageSnapshot(view, unwrap(await host.healthCheck()), ctx, Date.now()));
}

/** What a publish loop does: shape the snapshot, publish it, tell the elision it was stored. */
function publish(elision: CoreListElision, snapshot: ReturnType<typeof buildUsageSnapshot>, now: number, stored = true) {
  const wire = elision.forPublish(snapshot, now);
  if (stored) elision.published(wire, now);
  return wire;
}

describe('usage heartbeats without the per-core list', () => {
  it('counts cores per NUMA node and digests the layout in every snapshot', async () => {
    const host = await hostOf();
    const s = await snapshotOf(host);
    expect(s.cpu.cores).toHaveLength(16);
    expect(s.cpu.numa).toMatchObject([
      { node: 0, sharedCores: 8, exclusiveCores: 0, reservedCores: 0 },
      { node: 1, sharedCores: 8, exclusiveCores: 0, reservedCores: 0 },
    ]);
    expect(s.cpu.coresDigest).toMatch(/^[\w-]{8,64}$/);
    expect((await snapshotOf(host)).cpu.coresDigest).toBe(s.cpu.coresDigest);
  });

  it('sends the list once, then heartbeats of an unchanged host carry none (a fifth of the bytes)', async () => {
    const host = await hostOf();
    const elision = new CoreListElision(60_000);
    const first = publish(elision, await snapshotOf(host), 0);
    expect(first.cpu.cores).toHaveLength(16);
    const beat = publish(elision, await snapshotOf(host), 2_000);
    expect(beat.cpu.cores).toEqual([]);
    expect(beat.cpu.coresDigest).toBe(first.cpu.coresDigest);
    expect(beat.cpu.numa).toEqual(first.cpu.numa);
    expect(encode(beat).length).toBeLessThan(encode(first).length / 2);
  });

  it('sends the list again at once when a core changed hands, and when the last one was not stored', async () => {
    const host = await hostOf();
    const elision = new CoreListElision(60_000);
    publish(elision, await snapshotOf(host), 0);
    unwrap(await host.allocate({ requestId: 'r1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 2 }, cpu: { exclusive: true } }));
    const changed = publish(elision, await snapshotOf(host), 100, false);
    expect(changed.cpu.cores.filter((c) => c.role === 'exclusive')).toHaveLength(2);
    // The stream did not store it: the next one still carries the list.
    const retried = publish(elision, await snapshotOf(host), 200);
    expect(retried.cpu.cores).toHaveLength(16);
    expect(publish(elision, await snapshotOf(host), 2_200).cpu.cores).toEqual([]);
  });

  it('sends the list at least every refresh period, so utilization refreshes and a coordinator started since gets it', async () => {
    const host = await hostOf();
    const elision = new CoreListElision(60_000);
    publish(elision, await snapshotOf(host), 0);
    expect(publish(elision, await snapshotOf(host), 59_999).cpu.cores).toEqual([]);
    expect(publish(elision, await snapshotOf(host), 60_000).cpu.cores).toHaveLength(16);
    expect(publish(elision, await snapshotOf(host), 62_000).cpu.cores).toEqual([]);
  });

  it('with idle status every 60 s on 2 s ticks, carries the list once every 5 min, so a cold start replays heartbeats', async () => {
    const host = await hostOf();
    expect(coreListRefreshMs(2_000)).toBe(60_000); // the default heartbeat: as before
    const elision = new CoreListElision(coreListRefreshMs(60_000), 2_000);
    const idle = new IdleStatus(60_000, 2_000);
    const sent: { at: number; cores: number }[] = [];
    for (let at = 0; at <= 700_000; at += 2_000) {
      const snapshot = await snapshotOf(host);
      if (!idle.due(snapshot, 1, at)) continue;
      const wire = publish(elision, snapshot, at);
      idle.published(snapshot, 1, at);
      sent.push({ at, cores: wire.cpu.cores.length });
    }
    const withList = sent.filter((s) => s.cores > 0).map((s) => s.at);
    expect(sent.map((s) => s.at)).toEqual([
      0, 58_000, 116_000, 174_000, 232_000, 290_000, 348_000, 406_000, 464_000, 522_000, 580_000, 638_000, 696_000,
    ]);
    expect(withList).toEqual([0, 348_000, 696_000]);
  });
});

describe('status on change, and when idle every idleStatusMs', () => {
  it('sends each change at once and an unchanged status only once the idle period is due by the next tick', async () => {
    const host = await hostOf();
    const snapshot = await snapshotOf(host);
    const idle = new IdleStatus(10_000, 1_000);
    expect(idle.due(snapshot, 1, 0)).toBe(true);
    idle.published(snapshot, 1, 0);
    expect([1_000, 5_000, 8_999].map((at) => idle.due(snapshot, 1, at))).toEqual([false, false, false]);
    expect(idle.due(snapshot, 2, 1_000)).toBe(true); // a change announced
    expect(idle.due({ ...snapshot, health: { status: 'degraded', reasons: ['memory 91% used'] } }, 1, 1_000)).toBe(true);
    expect(idle.due(snapshot, 1, 9_000)).toBe(true);
  });

  it('with the default (idle period = heartbeat), sends on every tick as before', async () => {
    const host = await hostOf();
    const snapshot = await snapshotOf(host);
    const idle = new IdleStatus(2_000, 2_000);
    idle.published(snapshot, 1, 0);
    // A tick may fire a little before the heartbeat after the last publish was recorded.
    expect([1_990, 2_000, 4_000].map((at) => idle.due(snapshot, 1, at))).toEqual([true, true, true]);
  });
});
