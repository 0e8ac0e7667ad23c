import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemProbe } from './system-probe.ts';

function recordingLogger() {
  const warnings: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  return { warnings, warn: (obj: Record<string, unknown>, msg: string) => warnings.push({ obj, msg }) };
}

describe.runIf(process.platform === 'linux')('the real probe on this Linux machine', () => {
  it('reads one logical core per CPU Node sees, from /sys', async () => {
    const logger = recordingLogger();
    const topology = await new SystemProbe({ logger }).topology();
    expect(topology.source).toBe('probe');
    expect(topology.cores.map((c) => c.id)).toEqual(cpus().map((_, i) => i));
    expect(logger.warnings).toEqual([]);
  });

  it('reads total memory within 1% of what the OS reports, in whole MiB', async () => {
    const sample = await new SystemProbe().sample();
    const osMiB = totalmem() / 2 ** 20;
    expect(Number.isInteger(sample.memory.totalMiB)).toBe(true);
    expect(Math.abs(sample.memory.totalMiB - osMiB) / osMiB).toBeLessThan(0.01);
    expect(sample.memory.usedMiB + sample.memory.availableMiB).toBe(sample.memory.totalMiB);
    expect(sample.memory.usedMiB).toBeGreaterThan(0);
  });

  it('samples every core per mille between 0 and 1000, and keeps the latest without waiting', async () => {
    const probe = new SystemProbe();
    const topology = await probe.topology();
    expect(probe.latest()).toBeUndefined();
    await probe.sample();
    const sample = await probe.sample();
    expect([...sample.cpu.perCorePermille.keys()].sort((a, b) => a - b)).toEqual(topology.cores.map((c) => c.id));
    for (const permille of [...sample.cpu.perCorePermille.values(), sample.cpu.totalPermille]) {
      expect(Number.isInteger(permille)).toBe(true);
      expect(permille).toBeGreaterThanOrEqual(0);
      expect(permille).toBeLessThanOrEqual(1000);
    }
    expect(probe.latest()).toBe(sample);
  });
});

describe('a host whose /sys and /proc cannot be read', () => {
  let empty: string;
  beforeAll(async () => {
    empty = await mkdtemp(join(tmpdir(), 'allot-nosys-'));
  });
  afterAll(async () => {
    await rm(empty, { recursive: true, force: true });
  });

  it('uses the configured fallback topology, marked config, and says so once', async () => {
    const logger = recordingLogger();
    const probe = new SystemProbe({
      logger,
      platform: 'linux',
      sysRoot: empty,
      procRoot: empty,
      fallback: { cores: 8, threadsPerCore: 2, numaNodes: 2, sockets: 2 },
    });
    const topology = await probe.topology();
    await probe.topology();
    expect(topology.source).toBe('config');
    expect(topology.cores).toHaveLength(8);
    expect(new Set(topology.cores.map((c) => c.core)).size).toBe(4);
    expect(new Set(topology.cores.map((c) => c.numa))).toEqual(new Set([0, 1]));
    const topologyWarnings = logger.warnings.filter((w) => w.msg.includes('topology'));
    expect(topologyWarnings).toHaveLength(1);
    expect(topologyWarnings[0]?.obj).toMatchObject({ using: { cores: 8, threadsPerCore: 2, numaNodes: 2, sockets: 2 } });
    expect(JSON.stringify(topologyWarnings[0]?.obj.unreadable)).toContain(empty);
  });

  it('falls back to what Node reports for samples, warning once however often it samples', async () => {
    const logger = recordingLogger();
    const probe = new SystemProbe({ logger, platform: 'linux', sysRoot: empty, procRoot: empty });
    for (let i = 0; i < 3; i++) {
      const sample = await probe.sample();
      expect(sample.memory.totalMiB).toBe(Math.floor(totalmem() / 2 ** 20));
      expect(sample.cpu.perCorePermille.size).toBe(cpus().length);
    }
    expect(logger.warnings.map((w) => w.obj.unreadable)).toEqual([join(empty, 'meminfo'), join(empty, 'stat')]);
  });

  it('keeps the cores read from /sys and uses the configured NUMA nodes when only NUMA is missing', async () => {
    // Two physical cores with two threads each, and no /sys/devices/system/node (a kernel without NUMA).
    const sysRoot = join(empty, 'no-numa');
    for (const [cpu, coreId, siblings] of [
      [0, 0, '0,2'],
      [1, 1, '1,3'],
      [2, 0, '0,2'],
      [3, 1, '1,3'],
    ] as const) {
      const dir = join(sysRoot, 'devices/system/cpu', `cpu${cpu}`, 'topology');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'core_id'), `${coreId}`);
      await writeFile(join(dir, 'physical_package_id'), '0');
      await writeFile(join(dir, 'thread_siblings_list'), siblings);
    }
    const logger = recordingLogger();
    const topology = await new SystemProbe({ logger, platform: 'linux', sysRoot, fallback: { numaNodes: 2 } }).topology();
    expect(topology).toEqual({
      source: 'config',
      cores: [
        { id: 0, core: 0, socket: 0, numa: 0 },
        { id: 1, core: 1, socket: 0, numa: 1 },
        { id: 2, core: 0, socket: 0, numa: 0 },
        { id: 3, core: 1, socket: 0, numa: 1 },
      ],
    });
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.obj).toMatchObject({
      using: { numaNodes: 2 },
      unreadable: [join(sysRoot, 'devices/system/cpu/online'), join(sysRoot, 'devices/system/node')],
    });
  });
});
