import { errorOf, ok, type AllotError, type AllocationRequest, type Result } from '@allot/core';
import { CpuSlice } from '../cpu/cpu-slice.ts';
import { NumaMemorySlice } from '../memory/numa-memory-slice.ts';
import type { ResourceSlice, SliceFigures } from './slice.ts';

/*
 * Single-NUMA-node fitting, as Nova's NUMA fitting (hw:numa_nodes=1) and the kubelet's topology manager
 * (single-numa-node) do it: a request whose cores must be on one node (`cpu.numa: require`) and that names no node for
 * its memory gets its cores, its memory and its hugepages from ONE node, any node where all three fit. The memory slice
 * lists the nodes where the memory and hugepages fit; the CPU slice's policy chooses among those only (first-fit the
 * lowest id, round-robin from its cursor, best-fit and affinity-aware the tightest), so whenever the node the policy
 * would choose anyway has the memory, the grant is exactly what it was before this fitting existed. The memory then
 * goes to the node the cores got (NumaMemorySlice.bindToCores), in the same turn, all or nothing. take and check both
 * go through here, so `check` predicts what allocate does. The allocation records its grant (cores and memory node),
 * so a restart restores it and never decides again.
 */

type Slices = ReadonlyMap<string, ResourceSlice>;

/**
 * The NUMA nodes a request's cores may use: undefined when it is not bound to one node (any node, as the policy
 * chooses), else the nodes where its memory and hugepages fit now, or the refusal when no node has them.
 */
export function numaCells(slices: Slices, request: AllocationRequest): Result<readonly number[] | undefined> {
  const memory = slices.get('memory');
  if (!(memory instanceof NumaMemorySlice) || !memory.boundToCores(request)) return ok(undefined);
  return memory.fittingNodes(request);
}

/**
 * A refusal of the CPU slice when its choice was limited to `cells`, said as what it is: when the cores fit on some
 * other node, no one node has room for all of it (the nodes of each named); when they fit on none, the CPU's own
 * refusal without the limit. Other slices' refusals are returned as they are.
 */
export function refusalInCells(slices: Slices, request: AllocationRequest, cells: readonly number[], refusal: AllotError): AllotError {
  const cpu = slices.get('cpu');
  if (!(cpu instanceof CpuSlice) || refusal.code !== 'insufficient_capacity') return refusal;
  const anywhere = cpu.check(request);
  if (!anywhere.ok) return anywhere.error;
  const coreNodes = [...new Set(cpu.topology.cores.map((c) => c.numa))].sort((a, b) => a - b).filter((n) => cpu.check(request, [n]).ok);
  const vcpus = request.resources.vcpus;
  const cores = `${vcpus} ${request.cpu.exclusive ? 'exclusive' : 'shared'} ${vcpus === 1 ? 'core' : 'cores'}`;
  const huge = request.memory?.hugepages;
  const memory = huge === undefined ? 'its memory fits' : 'its memory and hugepages fit';
  const figures: SliceFigures = cpu.figures(request);
  return errorOf(
    'insufficient_capacity',
    `no NUMA node has room for all of it: ${memory} on node ${cells.join(', ')}, its ${cores} on node ${coreNodes.join(', ')}`,
    {
      ...figures,
      resourceType: 'cpu',
      reason: 'numa_cell',
      memoryNodes: [...cells],
      coreNodes,
      boundToCores: true,
    },
  );
}
