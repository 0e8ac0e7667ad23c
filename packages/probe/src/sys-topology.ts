import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogicalCore } from '@allot/core';
import { parseCpuList } from './cpulist.ts';

/**
 * What /sys told us about the CPUs. `cores` is present when every online CPU's topology was read; NUMA nodes may
 * still be unknown (a kernel without NUMA support has no /sys/devices/system/node), which `numaKnown` says.
 * `unreadable` lists every path that could not be read or parsed, for the one warning the probe logs.
 */
export interface SysTopologyReading {
  readonly cores: readonly LogicalCore[] | undefined;
  readonly numaKnown: boolean;
  readonly unreadable: readonly string[];
}

interface RawCpu {
  readonly id: number;
  readonly coreId: number;
  readonly socket: number;
  readonly siblings: readonly number[];
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function readInt(path: string): Promise<number | undefined> {
  const text = await readText(path);
  if (text === undefined) return undefined;
  const value = Number(text.trim());
  return Number.isInteger(value) ? value : undefined;
}

/** Online CPU ids from `cpu/online`, or from the cpu<N> directories when that file is missing. */
async function onlineCpus(cpuDir: string, unreadable: string[]): Promise<number[] | undefined> {
  const onlinePath = join(cpuDir, 'online');
  const text = await readText(onlinePath);
  const parsed = text === undefined ? undefined : parseCpuList(text);
  if (parsed !== undefined && parsed.length > 0) return parsed;
  unreadable.push(onlinePath);
  try {
    const ids = (await readdir(cpuDir)).flatMap((name) => {
      const match = /^cpu(\d+)$/.exec(name);
      return match ? [Number(match[1])] : [];
    });
    return ids.length > 0 ? ids.sort((a, b) => a - b) : undefined;
  } catch {
    unreadable.push(cpuDir);
    return undefined;
  }
}

async function readCpu(cpuDir: string, id: number, unreadable: string[]): Promise<RawCpu | undefined> {
  const dir = join(cpuDir, `cpu${id}`, 'topology');
  const [coreId, socket, siblingsText] = await Promise.all([
    readInt(join(dir, 'core_id')),
    readInt(join(dir, 'physical_package_id')),
    readText(join(dir, 'thread_siblings_list')),
  ]);
  const siblings = siblingsText === undefined ? undefined : parseCpuList(siblingsText);
  if (coreId === undefined) unreadable.push(join(dir, 'core_id'));
  if (socket === undefined) unreadable.push(join(dir, 'physical_package_id'));
  if (siblings === undefined || !siblings.includes(id)) unreadable.push(join(dir, 'thread_siblings_list'));
  if (coreId === undefined || socket === undefined || siblings === undefined || !siblings.includes(id)) return undefined;
  // Some platforms report physical_package_id -1 when they do not know it: one socket.
  return { id, coreId, socket: Math.max(0, socket), siblings };
}

/** logical CPU id -> NUMA node, from node<N>/cpulist; undefined when the node directory cannot be read. */
async function readNuma(nodeDir: string, unreadable: string[]): Promise<Map<number, number> | undefined> {
  let names: string[];
  try {
    names = await readdir(nodeDir);
  } catch {
    unreadable.push(nodeDir);
    return undefined;
  }
  const nodes = names.flatMap((name) => {
    const match = /^node(\d+)$/.exec(name);
    return match ? [Number(match[1])] : [];
  });
  if (nodes.length === 0) {
    unreadable.push(join(nodeDir, 'node<N>'));
    return undefined;
  }
  const cpuToNode = new Map<number, number>();
  for (const node of nodes) {
    const path = join(nodeDir, `node${node}`, 'cpulist');
    const text = await readText(path);
    const cpus = text === undefined ? undefined : parseCpuList(text);
    if (cpus === undefined) {
      unreadable.push(path);
      return undefined;
    }
    for (const cpu of cpus) cpuToNode.set(cpu, node);
  }
  return cpuToNode;
}

/**
 * Reads the CPU topology under a /sys root (`/sys` on a host, a fixture directory in tests).
 * Physical core ids are made unique across sockets: core_id restarts at 0 on every socket and may have gaps, so
 * the SMT sibling groups are numbered densely in (socket, core_id) order.
 */
export async function readSysTopology(sysRoot: string): Promise<SysTopologyReading> {
  const unreadable: string[] = [];
  const cpuDir = join(sysRoot, 'devices', 'system', 'cpu');
  const ids = await onlineCpus(cpuDir, unreadable);
  if (ids === undefined) return { cores: undefined, numaKnown: false, unreadable };

  const raw = await Promise.all(ids.map((id) => readCpu(cpuDir, id, unreadable)));
  const cpuToNode = await readNuma(join(sysRoot, 'devices', 'system', 'node'), unreadable);
  const complete = raw.filter((cpu): cpu is RawCpu => cpu !== undefined);
  if (complete.length !== ids.length) return { cores: undefined, numaKnown: cpuToNode !== undefined, unreadable };

  const groupOf = (cpu: RawCpu): number => cpu.siblings[0] ?? cpu.id;
  const leaders = new Map<number, RawCpu>();
  for (const cpu of complete) if (!leaders.has(groupOf(cpu))) leaders.set(groupOf(cpu), cpu);
  const ordered = [...leaders.entries()].sort(([ga, a], [gb, b]) => a.socket - b.socket || a.coreId - b.coreId || ga - gb);
  const physicalId = new Map<number, number>(ordered.map(([group], index) => [group, index]));

  let numaKnown = cpuToNode !== undefined;
  const cores = complete.map((cpu) => {
    const numa = cpuToNode?.get(cpu.id);
    if (cpuToNode !== undefined && numa === undefined) numaKnown = false;
    return { id: cpu.id, core: physicalId.get(groupOf(cpu)) ?? 0, socket: cpu.socket, numa: numa ?? 0 };
  });
  if (cpuToNode !== undefined && !numaKnown)
    unreadable.push(join(sysRoot, 'devices', 'system', 'node', 'node<N>', 'cpulist (some CPUs in no node)'));
  return { cores, numaKnown, unreadable };
}
