import { unwrap, type Health } from '@allot/core';
import { describe, expect, it } from 'vitest';
import { topologyFixture } from '../cpu/index.ts';
import { ManagerFactory } from '../factory.ts';
import { FakeClock } from '../testing/fake-clock.ts';
import { FakeProbe } from '../testing/fake-probe.ts';
import { percentText } from './slice.ts';

const topology = topologyFixture({ sockets: 1, numaPerSocket: 1, coresPerNuma: 4, threadsPerCore: 1 });
const TOTAL_MIB = 32768;

/** A host of 32 GiB whose probe reports `usedMiB`; default thresholds (used: degraded 90%, unhealthy 98%; stale after 30 s). */
function host(usedMiB: number) {
  const clock = new FakeClock();
  const probe = new FakeProbe({ topology, now: () => clock.now() });
  probe.setMemory({ totalMiB: TOTAL_MIB, usedMiB, availableMiB: TOTAL_MIB - usedMiB });
  const h = unwrap(new ManagerFactory({ topology, memoryMiB: TOTAL_MIB, probe, clock }).host('n1').memory().cpu().build());
  return { host: h, probe, clock };
}

const reasons = (health: Health) => (health.status === 'degraded' || health.status === 'unhealthy' ? health.reasons : []);

describe('host health', () => {
  it('is Unhealthy when the memory really used reaches the unhealthy threshold, and says how much', async () => {
    const { host: h } = host(Math.ceil((TOTAL_MIB * 980) / 1000));
    const health = unwrap(await h.healthCheck());
    expect(health.status).toBe('unhealthy');
    expect(reasons(health)).toContain('memory: 98% of the capacity is really used (unhealthy at 98%)');
  });

  it('is only Degraded just below the unhealthy threshold, and Healthy below the degraded one', async () => {
    const below = unwrap(await host(Math.floor((TOTAL_MIB * 979) / 1000)).host.healthCheck());
    expect(below.status).toBe('degraded');
    expect(reasons(below).join()).toContain('really used (degraded at 90%)');
    expect(unwrap(await host(Math.floor((TOTAL_MIB * 899) / 1000)).host.healthCheck())).toEqual({ status: 'healthy' });
  });

  it('is Degraded when the last probe sample is older than probeStaleMs, and Healthy again after a fresh sample', async () => {
    const { host: h, probe, clock } = host(1024);
    expect(unwrap(await h.healthCheck())).toEqual({ status: 'healthy' });
    clock.advance(30_001);
    const stale = unwrap(await h.healthCheck());
    expect(stale.status).toBe('degraded');
    expect(reasons(stale)).toContain('memory: the last probe sample is 30001 ms old (stale after 30000 ms)');
    await probe.sample();
    expect(unwrap(await h.healthCheck())).toEqual({ status: 'healthy' });
  });
});

describe('health reasons for people', () => {
  it('give per-mille figures as percentages, with a decimal only where one is needed', () => {
    expect([percentText(980), percentText(985), percentText(1000), percentText(7)]).toEqual(['98%', '98.5%', '100%', '0.7%']);
  });

  it('follows thresholds set while running (a configuration reload), for the named resource only', async () => {
    const { host: h } = host(Math.floor((TOTAL_MIB * 950) / 1000));
    expect(unwrap(await h.healthCheck()).status).toBe('degraded');
    const raised = { committedDegradedPermille: 950, usedDegradedPermille: 960, usedUnhealthyPermille: 990, probeStaleMs: 30_000 };
    expect(h.setHealthThresholds('memory', raised)).toBe(true);
    expect(unwrap(await h.healthCheck())).toEqual({ status: 'healthy' });
    expect(h.setHealthThresholds('gpu', raised)).toBe(false);
  });
});
