import { err, ok, type LogicalCore, type Result } from '@allot/core';

/**
 * The shape of a host when it cannot be read: configured for a simulated host, or the fallback of a real one.
 * `cores` counts logical cores (what a cpuset names), so physical cores = cores / threadsPerCore.
 */
export interface CoreLayout {
  readonly cores: number;
  readonly sockets: number;
  readonly numaNodes: number;
  readonly threadsPerCore: number;
}

/** A whole simulated host: its core layout and its memory, with hugepage pools on every NUMA node (none by default). */
export interface HostSize extends CoreLayout {
  readonly memoryMiB: number;
  /** 2 MiB hugepages on each NUMA node (out of the node's share of memoryMiB). */
  readonly hugepages2MiPerNode?: number;
  /** 1 GiB hugepages on each NUMA node (out of the node's share of memoryMiB). */
  readonly hugepages1GiPerNode?: number;
}

/** The hugepage pools a simulated host has on each node, as /sys names them (size in KiB). */
export function simulatedHugepages(size: HostSize): { sizeKiB: number; perNode: number }[] {
  const pools: { sizeKiB: number; perNode: number }[] = [];
  if ((size.hugepages2MiPerNode ?? 0) > 0) pools.push({ sizeKiB: 2048, perNode: size.hugepages2MiPerNode ?? 0 });
  if ((size.hugepages1GiPerNode ?? 0) > 0) pools.push({ sizeKiB: 1_048_576, perNode: size.hugepages1GiPerNode ?? 0 });
  return pools;
}

const MAX_CORES = 1 << 16;

/** Checks a layout is buildable; the error names the field, as everywhere in allot. */
export function validateLayout(layout: CoreLayout): Result<CoreLayout> {
  for (const field of ['cores', 'sockets', 'numaNodes', 'threadsPerCore'] as const) {
    const value = layout[field];
    if (!Number.isInteger(value) || value < 1 || value > MAX_CORES) {
      return err('invalid_request', `${field}: must be an integer between 1 and ${MAX_CORES}, got ${String(value)}`, { field, value });
    }
  }
  if (layout.cores % layout.threadsPerCore !== 0) {
    return err('invalid_request', `threadsPerCore: ${layout.cores} cores do not divide into ${layout.threadsPerCore} threads per core`, {
      field: 'threadsPerCore',
      cores: layout.cores,
      threadsPerCore: layout.threadsPerCore,
    });
  }
  const physical = layout.cores / layout.threadsPerCore;
  for (const field of ['sockets', 'numaNodes'] as const) {
    if (layout[field] > physical) {
      return err('invalid_request', `${field}: ${layout[field]} is more than the ${physical} physical cores`, {
        field,
        value: layout[field],
        physicalCores: physical,
      });
    }
  }
  return ok(layout);
}

/**
 * Lays out logical cores the way Linux numbers a typical x86 server: logical ids 0..P-1 are the first thread of
 * physical cores 0..P-1, ids P..2P-1 their second thread (SMT siblings are id and id+P). Physical cores are split
 * evenly, in order, over sockets and over NUMA nodes, so with 2 sockets and 2 nodes each socket is one node.
 * Call validateLayout first: this trusts its input.
 */
export function layoutCores(layout: CoreLayout): LogicalCore[] {
  const physical = layout.cores / layout.threadsPerCore;
  const cores: LogicalCore[] = [];
  for (let id = 0; id < layout.cores; id++) {
    const core = id % physical;
    cores.push({
      id,
      core,
      socket: Math.floor((core * layout.sockets) / physical),
      numa: Math.floor((core * layout.numaNodes) / physical),
    });
  }
  return cores;
}
