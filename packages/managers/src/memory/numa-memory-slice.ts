import {
  ok,
  type Allocation,
  type AllocationRequest,
  type CpuGrant,
  type Health,
  type HealthThresholds,
  type HostProbe,
  type MemoryGrant,
  type MemoryUsage,
  type NodeMemory,
  type Result,
} from '@allot/core';
import type { Clock } from '../clock.ts';
import { CountingSlice } from '../counting/counting-slice.ts';
import type { ResizeAmounts, ResourceSlice, SliceChange, SliceConfig, SliceFigures } from '../host/slice.ts';
import { NumaTable } from './numa-table.ts';

export interface NumaMemorySliceOptions {
  readonly limits: SliceConfig['limits'];
  readonly thresholds: HealthThresholds;
  readonly clock: Clock;
  readonly probe?: HostProbe;
  /** The host's NUMA nodes and their hugepage pools (the probe's nodeMemory); none: no request may name a node. */
  readonly nodes: readonly NodeMemory[];
}

const NO_GRANT: Result<CpuGrant | null> = Object.freeze({ ok: true, value: null });

/**
 * The memory slice: every MiB counted host-wide by a CountingSlice (limits, overcommit, reservations, health, as
 * before), plus a NumaTable for what a request pins to a NUMA node and for hugepages. A request with neither is the
 * CountingSlice's alone. The grant (which node, which pages) is read by the host state onto the allocation, and a
 * restore installs exactly the grant the allocation carries.
 */
export class NumaMemorySlice implements ResourceSlice {
  readonly type = 'memory' as const;
  readonly #host: CountingSlice;
  readonly #table: NumaTable;

  constructor(options: NumaMemorySliceOptions) {
    this.#host = new CountingSlice({
      type: 'memory',
      limits: options.limits,
      thresholds: options.thresholds,
      clock: options.clock,
      probe: options.probe,
    });
    this.#table = new NumaTable(options.nodes);
  }

  get probe(): HostProbe | undefined {
    return this.#host.probe;
  }
  get thresholds(): HealthThresholds {
    return this.#host.thresholds;
  }
  set thresholds(value: HealthThresholds) {
    this.#host.thresholds = value;
  }

  /** The per-node books, for tests and figures. */
  get table(): NumaTable {
    return this.#table;
  }

  /** MiB, plus the hugepages' MiB: a hugepages-only request involves this slice too. */
  amountOf(request: AllocationRequest): number {
    const huge = request.memory?.hugepages;
    return request.resources.memoryMiB + (huge === undefined ? 0 : huge.pageSizeMiB * huge.count);
  }

  figures(request: AllocationRequest): SliceFigures {
    const node = request.memory?.numaNode;
    if (node === undefined) return this.#host.figures(request);
    return {
      requested: request.resources.memoryMiB,
      free: this.#table.nodeFree(node, this.#host.pool.available),
      effectiveCapacity: this.#table.nodeRoom(node).capacityMiB,
    };
  }

  /**
   * A request whose cores must be on one NUMA node (`cpu.numa: require`) and that names no node for its memory takes
   * its cores, memory and hugepages from one node (Nova's hw:numa_nodes=1, the kubelet's single-numa-node): the CPU
   * slice chooses among the nodes where the memory fits (`fittingNodes`, see host/numa-cell.ts), so the take counts
   * host-wide and `bindToCores` places the memory on the node the cores got.
   */
  boundToCores(request: AllocationRequest): boolean {
    return (
      request.cpu.numa === 'require' &&
      request.memory?.numaNode === undefined &&
      request.resources.vcpus > 0 &&
      this.amountOf(request) > 0 &&
      this.#table.nodeCount > 0
    );
  }

  /** The NUMA nodes where a bound request's memory and hugepages fit now (ascending), or the refusal when none does. */
  fittingNodes(request: AllocationRequest): Result<readonly number[]> {
    const hostFree = this.#host.pool.available;
    const nodes = this.#table.nodesFitting(request, hostFree);
    return nodes.length > 0 ? ok(nodes) : { ok: false, error: this.#table.noNodeFits(request, hostFree) };
  }

  check(request: AllocationRequest): Result<void> {
    if (NumaTable.involves(request) && !this.boundToCores(request)) {
      const placed = this.#table.place(request, this.#host.pool.available);
      if (!placed.ok) return placed;
    }
    return this.#host.check(request);
  }

  take(allocationId: string, request: AllocationRequest, reservation: boolean): Result<CpuGrant | null> {
    if (!NumaTable.involves(request) || this.boundToCores(request)) return this.#host.take(allocationId, request, reservation);
    const placed = this.#table.place(request, this.#host.pool.available);
    if (!placed.ok) return placed;
    const taken = this.#host.take(allocationId, request, reservation);
    if (!taken.ok) return taken;
    this.#table.install(allocationId, request.resources.memoryMiB, placed.value);
    return NO_GRANT;
  }

  /**
   * The second half of a take bound to its cores' NUMA node (see #boundToCores), once the CPU grant is known, in the
   * same turn: the memory and hugepages placed on that node, or the refusal naming it (the caller frees the take).
   */
  bindToCores(allocationId: string, request: AllocationRequest, cpu: CpuGrant | null): Result<void> {
    if (!this.boundToCores(request)) return ok(undefined);
    const node = cpu?.numaNodes.length === 1 ? cpu.numaNodes[0] : undefined;
    if (node === undefined) return ok(undefined);
    // The host-wide share is already taken: only the node's own room counts here.
    const placed = this.#table.place({ ...request, memory: { ...request.memory, numaNode: node } }, Number.MAX_SAFE_INTEGER);
    if (!placed.ok)
      return {
        ok: false,
        error: {
          ...placed.error,
          message: `${placed.error.message} (the NUMA node of its cores)`,
          details: { ...placed.error.details, boundToCores: true },
        },
      };
    this.#table.install(allocationId, request.resources.memoryMiB, placed.value);
    return ok(undefined);
  }

  /** Where the allocation's memory and hugepages were taken from (undefined: it floats and has no hugepages). */
  memoryGrantOf(allocationId: string): MemoryGrant | undefined {
    return this.#table.grantOf(allocationId);
  }

  /** Memory grows or shrinks on the node it is pinned to (a growth needs room there and host-wide); hugepages stay. */
  resize(allocation: Allocation, to: ResizeAmounts): Result<CpuGrant | null> {
    const growth = to.memoryMiB - allocation.granted.memoryMiB;
    const node = this.#table.pinnedNodeOf(allocation.id);
    if (node !== undefined && growth > 0) {
      const room = this.#table.nodeRoom(node);
      if (growth > room.free)
        return {
          ok: false,
          error: {
            code: 'insufficient_capacity',
            message: `memory: NUMA node ${node} has ${room.free} MiB free of ${room.capacityMiB} MiB, a growth of ${growth} MiB was asked`,
            details: {
              resourceType: 'memory',
              numaNode: node,
              requested: growth,
              free: room.free,
              effectiveCapacity: room.capacityMiB,
              from: allocation.granted.memoryMiB,
              to: to.memoryMiB,
              reason: 'numa_memory',
            },
          },
        };
    }
    const resized = this.#host.resize(allocation, to);
    if (!resized.ok) return resized;
    const grant = this.#table.grantOf(allocation.id);
    if (grant !== undefined) this.#table.install(allocation.id, to.memoryMiB, grant);
    return resized;
  }

  reshape(allocation: Allocation): Result<void> {
    const reshaped = this.#host.reshape(allocation);
    if (!reshaped.ok) return reshaped;
    this.#table.remove(allocation.id);
    if (allocation.memory !== undefined) this.#table.install(allocation.id, allocation.granted.memoryMiB, allocation.memory);
    return ok(undefined);
  }

  restore(allocation: Allocation, reservation: boolean): Result<void> {
    const restored = this.#host.restore(allocation, reservation);
    if (!restored.ok) return restored;
    if (allocation.memory !== undefined) this.#table.install(allocation.id, allocation.granted.memoryMiB, allocation.memory);
    return ok(undefined);
  }

  free(allocationId: string): boolean {
    const freed = this.#host.free(allocationId);
    return this.#table.remove(allocationId) || freed;
  }

  markActive(allocationId: string): void {
    this.#host.markActive(allocationId);
  }

  holds(allocationId: string): boolean {
    return this.#host.holds(allocationId);
  }

  get committed(): number {
    return this.#host.committed;
  }

  /** The host-wide figures, with per-NUMA-node memory and hugepages when the host knows its nodes. */
  usage(): MemoryUsage {
    const usage = this.#host.usage();
    if (this.#table.nodeCount === 0) return usage;
    return { ...usage, numa: this.#table.usage(this.#host.pool.available) };
  }

  config(): SliceConfig {
    return this.#host.config();
  }

  reconfigure(change: SliceChange, force: boolean): Result<SliceConfig> {
    return this.#host.reconfigure(change, force);
  }

  health(): Health {
    return this.#host.health();
  }

  reset(config?: SliceConfig): void {
    this.#host.reset(config);
    this.#table.clear();
  }
}

/** Records on a new allocation where its memory slice took its memory from (nothing when it floats without hugepages). */
export function attachMemoryGrant(slices: ReadonlyMap<string, ResourceSlice>, allocation: Allocation): void {
  const grant = slices.get('memory')?.memoryGrantOf?.(allocation.id);
  if (grant !== undefined) allocation.memory = grant;
}

/** After every slice took: a take bound to its cores' NUMA node is placed there, or refused (the caller frees all). */
export function bindMemoryToCores(
  slices: ReadonlyMap<string, ResourceSlice>,
  allocationId: string,
  request: AllocationRequest,
  cpu: CpuGrant | null,
): Result<void> {
  const memory = slices.get('memory');
  return memory instanceof NumaMemorySlice ? memory.bindToCores(allocationId, request, cpu) : ok(undefined);
}
