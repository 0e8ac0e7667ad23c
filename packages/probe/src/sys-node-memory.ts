import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HugepagePool, NodeMemory } from '@allot/core';

/**
 * What /sys says about memory per NUMA node: `nodes` ascending by id, undefined when no node's meminfo could be read
 * (no NUMA support, or not Linux); `unreadable` lists what could not be read or parsed, for one warning.
 */
export interface NodeMemoryReading {
  readonly nodes: readonly NodeMemory[] | undefined;
  readonly unreadable: readonly string[];
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function readCount(path: string): Promise<number | undefined> {
  const text = await readText(path);
  const value = text === undefined ? Number.NaN : Number(text.trim());
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** `Node 0 MemTotal:  32768000 kB` -> whole MiB, or undefined. */
export function parseNodeMemTotalMiB(meminfo: string): number | undefined {
  const match = /^Node\s+\d+\s+MemTotal:\s+(\d+)\s+kB\s*$/m.exec(meminfo);
  if (match === null) return undefined;
  const kib = Number(match[1]);
  return Number.isSafeInteger(kib) ? Math.floor(kib / 1024) : undefined;
}

/** The hugepage pools under node<N>/hugepages (hugepages-2048kB/{nr,free}_hugepages, ...). */
async function readHugepages(dir: string, unreadable: string[]): Promise<HugepagePool[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return []; // a kernel without hugetlbfs has no such directory: no pools, not a problem
  }
  const pools: HugepagePool[] = [];
  for (const name of names) {
    const match = /^hugepages-(\d+)kB$/.exec(name);
    if (match === null) continue;
    const total = await readCount(join(dir, name, 'nr_hugepages'));
    const free = await readCount(join(dir, name, 'free_hugepages'));
    if (total === undefined || free === undefined || free > total) {
      unreadable.push(join(dir, name));
      continue;
    }
    pools.push({ sizeKiB: Number(match[1]), total, free });
  }
  return pools.sort((a, b) => a.sizeKiB - b.sizeKiB);
}

/** Reads `<sysRoot>/devices/system/node/node<N>/{meminfo,hugepages}` for every node. Never throws. */
export async function readNodeMemory(sysRoot: string): Promise<NodeMemoryReading> {
  const nodeDir = join(sysRoot, 'devices/system/node');
  const unreadable: string[] = [];
  let names: string[];
  try {
    names = await readdir(nodeDir);
  } catch {
    return { nodes: undefined, unreadable: [nodeDir] };
  }
  const ids = names.flatMap((name) => {
    const match = /^node(\d+)$/.exec(name);
    return match === null ? [] : [Number(match[1])];
  });
  const nodes: NodeMemory[] = [];
  for (const node of ids.sort((a, b) => a - b)) {
    const meminfo = join(nodeDir, `node${node}`, 'meminfo');
    const text = await readText(meminfo);
    const totalMiB = text === undefined ? undefined : parseNodeMemTotalMiB(text);
    if (totalMiB === undefined) {
      unreadable.push(meminfo);
      continue;
    }
    nodes.push({ node, totalMiB, hugepages: await readHugepages(join(nodeDir, `node${node}`, 'hugepages'), unreadable) });
  }
  return { nodes: nodes.length === 0 ? undefined : nodes, unreadable };
}

/**
 * A simulated host's memory per node: the total split evenly over the nodes (the remainder MiB to the lowest ids,
 * so the parts add up), and the given hugepage pools on every node, all free.
 */
export function splitNodeMemory(
  totalMiB: number,
  numaNodes: number,
  hugepages: readonly { sizeKiB: number; perNode: number }[] = [],
): NodeMemory[] {
  const nodes = Math.max(1, Math.floor(numaNodes));
  const share = Math.floor(totalMiB / nodes);
  const remainder = totalMiB - share * nodes;
  return Array.from({ length: nodes }, (_, node) => ({
    node,
    totalMiB: share + (node < remainder ? 1 : 0),
    hugepages: [...hugepages].sort((a, b) => a.sizeKiB - b.sizeKiB).map((h) => ({ sizeKiB: h.sizeKiB, total: h.perNode, free: h.perNode })),
  }));
}
