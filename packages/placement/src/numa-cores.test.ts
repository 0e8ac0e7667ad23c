import { describe, expect, it } from 'vitest';
import type { NodeView, NumaCores, NumaMemoryUsage, PlacementOptions } from '@allot/core';
import { ClusterIndex } from './cluster-index.ts';
import { decide } from './decide.ts';
import { allocationRequest, nodeView } from './fixtures.ts';
import { seededRandom } from './random.ts';

/*
 * Exclusive cores counted per NUMA node from the agent's published figures (cpu.numa: pool cores and the idle ones
 * among them), for a request bound to one node with its memory (FitsNumaMemory's single-node fit).
 */

const opts: PlacementOptions = { constraints: [], allowPreemption: false };

function host(id: string, cores: NumaCores[], memory: NumaMemoryUsage[]): NodeView {
  const view = nodeView({ id, cores: 8, numaNodes: 2, sharedVcpusCommitted: 2 });
  const snapshot = view.snapshot;
  return { ...view, snapshot: { ...snapshot, cpu: { ...snapshot.cpu, numa: cores }, memory: { ...snapshot.memory, numa: memory } } };
}

const cell = (node: number, idleCores: number): NumaCores => ({ node, sharedCores: 4, exclusiveCores: 0, reservedCores: 0, idleCores });
const mem = (node: number, freeMiB: number): NumaMemoryUsage => ({
  node,
  capacityMiB: 8192,
  pinnedMiB: 8192 - freeMiB,
  freeMiB,
  hugepages: [],
});

describe('a request bound to one NUMA node with exclusive cores', () => {
  it('needs the idle cores and the memory on the same node: shared load on the node with the memory does not count', () => {
    // Node 0: the memory, its 4 pool cores carrying shared vCPUs (2 idle); node 1: 4 idle cores, no memory.
    const split = host('split', [cell(0, 2), cell(1, 4)], [mem(0, 4096), mem(1, 512)]);
    const together = host('together', [cell(0, 4), cell(1, 4)], [mem(0, 4096), mem(1, 512)]);
    const request = allocationRequest(2048, 4, { cpu: { exclusive: true, numa: 'require' } });
    const decided = decide(ClusterIndex.of([split, together], { random: seededRandom(1) }), request, opts, { random: seededRandom(2) });
    if (!decided.ok) throw new Error(decided.error.message);
    expect(decided.value.candidates).toEqual(['together']);
    expect(decided.value.rejected).toEqual({ 'no NUMA node fits its cores and memory together': 1 });
  });
});

describe('a request bound to one NUMA node with a thread policy', () => {
  it('needs whole idle physical cores and the memory on the same node', () => {
    // SMT 2. Node 0: the memory, 4 idle threads but only 1 whole idle core; node 1: 2 whole idle cores, no memory.
    const smt = (node: number, idleCores: number, wholeIdleCores: number): NumaCores => ({
      ...cell(node, idleCores),
      wholeIdleCores,
      threadsPerCore: 2,
    });
    const split = host('split', [smt(0, 4, 1), smt(1, 4, 2)], [mem(0, 4096), mem(1, 512)]);
    const together = host('together', [smt(0, 4, 2), smt(1, 4, 2)], [mem(0, 4096), mem(1, 512)]);
    const request = allocationRequest(2048, 2, { cpu: { exclusive: true, numa: 'require', threadPolicy: 'isolate' } });
    const decided = decide(ClusterIndex.of([split, together], { random: seededRandom(1) }), request, opts, { random: seededRandom(2) });
    if (!decided.ok) throw new Error(decided.error.message);
    expect(decided.value.candidates).toEqual(['together']);
    expect(decided.value.rejected).toEqual({ 'no NUMA node fits its cores and memory together': 1 });
  });
});
