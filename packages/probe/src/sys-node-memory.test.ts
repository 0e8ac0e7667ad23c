import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseNodeMemTotalMiB, readNodeMemory, splitNodeMemory } from './sys-node-memory.ts';
import { SimulatedProbe } from './simulated-probe.ts';
import { SystemProbe } from './system-probe.ts';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'allot-sys-node-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** node<N>/meminfo and hugepages as Linux writes them (sizes in kB, counts in pages). */
async function writeNode(
  node: number,
  memTotalKiB: number | string,
  hugepages: Record<string, { nr: string; free: string }> = {},
): Promise<void> {
  const dir = join(root, 'devices/system/node', `node${node}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'meminfo'), `Node ${node} MemTotal:       ${memTotalKiB} kB\nNode ${node} MemFree:        1024 kB\n`);
  for (const [size, counts] of Object.entries(hugepages)) {
    const h = join(dir, 'hugepages', `hugepages-${size}kB`);
    await mkdir(h, { recursive: true });
    await writeFile(join(h, 'nr_hugepages'), `${counts.nr}\n`);
    await writeFile(join(h, 'free_hugepages'), `${counts.free}\n`);
  }
}

describe('memory per NUMA node from /sys', () => {
  it('reads each node total and its 2 MiB and 1 GiB hugepage pools', async () => {
    await writeNode(0, 16_777_216, { '2048': { nr: '512', free: '500' }, '1048576': { nr: '4', free: '4' } });
    await writeNode(1, 16_776_192, { '2048': { nr: '0', free: '0' } });
    const reading = await readNodeMemory(root);
    expect(reading.unreadable).toEqual([]);
    expect(reading.nodes).toEqual([
      {
        node: 0,
        totalMiB: 16_384,
        hugepages: [
          { sizeKiB: 2048, total: 512, free: 500 },
          { sizeKiB: 1_048_576, total: 4, free: 4 },
        ],
      },
      { node: 1, totalMiB: 16_383, hugepages: [{ sizeKiB: 2048, total: 0, free: 0 }] },
    ]);
  });

  it('reports what it cannot parse instead of guessing, and no nodes without NUMA support', async () => {
    await writeNode(0, 'lots');
    await writeNode(1, 1024, { '2048': { nr: '4', free: '9' } });
    const reading = await readNodeMemory(root);
    expect(reading.nodes).toEqual([{ node: 1, totalMiB: 1, hugepages: [] }]);
    expect(reading.unreadable).toHaveLength(2);
    expect(await readNodeMemory(join(root, 'nowhere'))).toMatchObject({ nodes: undefined });
  });

  it('parses only the MemTotal line', () => {
    expect(parseNodeMemTotalMiB('Node 3 MemFree: 2048 kB\nNode 3 MemTotal: 4096 kB\n')).toBe(4);
    expect(parseNodeMemTotalMiB('MemTotal: 4096 kB')).toBeUndefined();
  });

  it('splits a simulated host evenly, the parts adding up to the total', () => {
    const nodes = splitNodeMemory(65_537, 2, [{ sizeKiB: 2048, perNode: 64 }]);
    expect(nodes.map((n) => n.totalMiB)).toEqual([32_769, 32_768]);
    expect(nodes[1]?.hugepages).toEqual([{ sizeKiB: 2048, total: 64, free: 64 }]);
  });
});

describe('the probes report memory per NUMA node', () => {
  it('SystemProbe reads it from /sys once', async () => {
    await writeNode(0, 8_388_608, { '1048576': { nr: '2', free: '1' } });
    const probe = new SystemProbe({ sysRoot: root, procRoot: join(root, 'proc'), platform: 'linux' });
    const first = await probe.nodeMemory();
    expect(first).toEqual([{ node: 0, totalMiB: 8192, hugepages: [{ sizeKiB: 1_048_576, total: 2, free: 1 }] }]);
    await writeNode(1, 1024);
    expect(await probe.nodeMemory()).toBe(first);
  });

  it('SimulatedProbe splits its configured memory over its NUMA nodes', async () => {
    const probe = SimulatedProbe.create({ cores: 8, sockets: 1, numaNodes: 2, threadsPerCore: 2, memoryMiB: 65_536 });
    if (!probe.ok) throw new Error(probe.error.message);
    expect((await probe.value.nodeMemory()).map((n) => [n.node, n.totalMiB])).toEqual([
      [0, 32_768],
      [1, 32_768],
    ]);
  });
});
