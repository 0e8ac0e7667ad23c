import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSysTopology } from './sys-topology.ts';

/**
 * A 2-socket, 2-NUMA-node host with SMT, numbered as Linux numbers such a box: cpu0-3 are the first threads of the
 * four physical cores, cpu4-7 their siblings. core_id restarts on each socket and has gaps (0 and 4), as on real Xeons.
 */
const HOST = [
  { cpu: 0, coreId: 0, socket: 0, siblings: '0,4' },
  { cpu: 1, coreId: 4, socket: 0, siblings: '1,5' },
  { cpu: 2, coreId: 0, socket: 1, siblings: '2,6' },
  { cpu: 3, coreId: 4, socket: 1, siblings: '3,7' },
  { cpu: 4, coreId: 0, socket: 0, siblings: '0,4' },
  { cpu: 5, coreId: 4, socket: 0, siblings: '1,5' },
  { cpu: 6, coreId: 0, socket: 1, siblings: '2,6' },
  { cpu: 7, coreId: 4, socket: 1, siblings: '3,7' },
];

let root: string;

async function writeHost(options: { numa?: boolean; skipCoreIdOf?: number; online?: boolean } = {}): Promise<void> {
  const cpuDir = join(root, 'devices/system/cpu');
  await mkdir(cpuDir, { recursive: true });
  if (options.online !== false) await writeFile(join(cpuDir, 'online'), '0-7\n');
  for (const c of HOST) {
    const dir = join(cpuDir, `cpu${c.cpu}`, 'topology');
    await mkdir(dir, { recursive: true });
    if (options.skipCoreIdOf !== c.cpu) await writeFile(join(dir, 'core_id'), `${c.coreId}\n`);
    await writeFile(join(dir, 'physical_package_id'), `${c.socket}\n`);
    await writeFile(join(dir, 'thread_siblings_list'), `${c.siblings}\n`);
  }
  if (options.numa !== false) {
    await mkdir(join(root, 'devices/system/node/node0'), { recursive: true });
    await mkdir(join(root, 'devices/system/node/node1'), { recursive: true });
    await writeFile(join(root, 'devices/system/node/node0/cpulist'), '0-1,4-5\n');
    await writeFile(join(root, 'devices/system/node/node1/cpulist'), '2-3,6-7\n');
  }
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'allot-sys-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('reading the CPU topology from /sys', () => {
  it('gives SMT siblings the same physical core, unique across sockets, with their NUMA node and socket', async () => {
    await writeHost();
    const reading = await readSysTopology(root);
    expect(reading.numaKnown).toBe(true);
    expect(reading.unreadable).toEqual([]);
    expect(reading.cores).toEqual([
      { id: 0, core: 0, socket: 0, numa: 0 },
      { id: 1, core: 1, socket: 0, numa: 0 },
      { id: 2, core: 2, socket: 1, numa: 1 },
      { id: 3, core: 3, socket: 1, numa: 1 },
      { id: 4, core: 0, socket: 0, numa: 0 },
      { id: 5, core: 1, socket: 0, numa: 0 },
      { id: 6, core: 2, socket: 1, numa: 1 },
      { id: 7, core: 3, socket: 1, numa: 1 },
    ]);
  });

  it('finds the CPUs from the cpu<N> directories when the online list is missing', async () => {
    await writeHost({ online: false });
    const reading = await readSysTopology(root);
    expect(reading.cores?.map((c) => c.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(reading.unreadable).toEqual([join(root, 'devices/system/cpu/online')]);
  });

  it('says NUMA is unknown, and why, when the kernel has no node directory', async () => {
    await writeHost({ numa: false });
    const reading = await readSysTopology(root);
    expect(reading.cores).toHaveLength(8);
    expect(reading.numaKnown).toBe(false);
    expect(reading.unreadable).toEqual([join(root, 'devices/system/node')]);
  });

  it('gives no cores, naming the missing file, when one CPU has no core_id', async () => {
    await writeHost({ skipCoreIdOf: 5 });
    const reading = await readSysTopology(root);
    expect(reading.cores).toBeUndefined();
    expect(reading.unreadable).toEqual([join(root, 'devices/system/cpu/cpu5/topology/core_id')]);
  });

  it('gives no cores when there is no /sys at all', async () => {
    const reading = await readSysTopology(join(root, 'nowhere'));
    expect(reading.cores).toBeUndefined();
    expect(reading.unreadable.length).toBeGreaterThan(0);
  });
});
