import type { HostTopology } from '@allot/core';

/** Per-core state codes, kept in a Uint8Array. */
export const POOL = 0;
export const EXCLUSIVE = 1;
export const RESERVED = 2;

/**
 * The host's cores, indexed densely (index i = i-th lowest core id), with the mutable per-core state the policies
 * read: shared load, exclusive owner, reserved flag, and per-NUMA-node counters kept up to date on every change so a
 * policy can tell whether a node can hold a request without scanning it.
 *
 * A core is in the shared pool when its state is POOL. A core that a forced reconfiguration reserved while an
 * allocation still held it keeps its owner or its load until that allocation is freed, but state says RESERVED:
 * it is never granted again.
 */
export class CoreTable {
  readonly count: number;
  /** index -> logical core id, ascending. */
  readonly ids: Int32Array;
  /** logical core id -> index, -1 when the id is not on this host. */
  readonly indexById: Int32Array;
  /** index -> dense NUMA node index; nodeIds maps it back to the node id. */
  readonly nodeOf: Int32Array;
  readonly nodeIds: readonly number[];
  /** index -> dense physical core index; physThreads lists each physical core's logical indexes, ascending. */
  readonly physOf: Int32Array;
  readonly physThreads: readonly Int32Array[];
  /** The same, flattened for hot loops: physical core p's threads are physFlat[physStart[p] .. physStart[p + 1]). */
  readonly physStart: Int32Array;
  readonly physFlat: Int32Array;
  /** The physical core ids as the topology names them (reporting). */
  readonly physIds: Int32Array;
  readonly socketOf: Int32Array;
  /** Per NUMA node: its logical indexes (ascending) and its physical cores (ascending by first thread). */
  readonly nodeCores: readonly Int32Array[];
  readonly nodePhys: readonly Int32Array[];
  /** Every logical index, ascending: the whole-host scope. */
  readonly allCores: Int32Array;

  readonly state: Uint8Array;
  /** Shared vCPUs homed on each core. */
  readonly load: Int32Array;
  readonly owner: (string | undefined)[];
  /** Per node: pool cores, idle pool cores (zero load), and the shared load of all its cores. */
  readonly nodePool: Int32Array;
  readonly nodeIdle: Int32Array;
  readonly nodeLoad: Int32Array;
  poolCount = 0;
  idleCount = 0;
  reservedCount = 0;
  /** Cores held exclusively and not reserved. */
  exclusiveCount = 0;

  constructor(topology: HostTopology) {
    const sorted = [...topology.cores].sort((a, b) => a.id - b.id);
    const count = sorted.length;
    this.count = count;
    this.ids = Int32Array.from(sorted, (c) => c.id);
    this.indexById = new Int32Array((sorted[count - 1]?.id ?? 0) + 1).fill(-1);
    this.ids.forEach((id, i) => (this.indexById[id] = i));

    const nodeIds = [...new Set(sorted.map((c) => c.numa))].sort((a, b) => a - b);
    const nodeIndex = new Map(nodeIds.map((id, i) => [id, i]));
    this.nodeIds = nodeIds;
    this.nodeOf = Int32Array.from(sorted, (c) => nodeIndex.get(c.numa) ?? 0);
    this.socketOf = Int32Array.from(sorted, (c) => c.socket);

    // Physical cores in order of their first (lowest) thread id, so "lowest ids first" holds for them too.
    const physIndex = new Map<number, number>();
    const threads: number[][] = [];
    sorted.forEach((c, i) => {
      let p = physIndex.get(c.core);
      if (p === undefined) {
        p = threads.length;
        physIndex.set(c.core, p);
        threads.push([]);
      }
      threads[p]?.push(i);
    });
    this.physOf = Int32Array.from(sorted, (c) => physIndex.get(c.core) ?? 0);
    this.physThreads = threads.map((t) => Int32Array.from(t));
    this.physStart = new Int32Array(threads.length + 1);
    threads.forEach((t, p) => (this.physStart[p + 1] = (this.physStart[p] ?? 0) + t.length));
    this.physFlat = Int32Array.from(threads.flat());
    this.physIds = Int32Array.from(threads, (t) => sorted[t[0] ?? 0]?.core ?? 0);

    const nodeCores: number[][] = nodeIds.map(() => []);
    const nodePhys: number[][] = nodeIds.map(() => []);
    for (let i = 0; i < count; i += 1) nodeCores[this.nodeOf[i] ?? 0]?.push(i);
    this.physThreads.forEach((t, p) => nodePhys[this.nodeOf[t[0] ?? 0] ?? 0]?.push(p));
    this.nodeCores = nodeCores.map((c) => Int32Array.from(c));
    this.nodePhys = nodePhys.map((p) => Int32Array.from(p));
    this.allCores = Int32Array.from({ length: count }, (_, i) => i);

    this.state = new Uint8Array(count);
    this.load = new Int32Array(count);
    this.owner = new Array<string | undefined>(count).fill(undefined);
    this.nodePool = new Int32Array(nodeIds.length);
    this.nodeIdle = new Int32Array(nodeIds.length);
    this.nodeLoad = new Int32Array(nodeIds.length);
    this.recount();
  }

  get nodeCount(): number {
    return this.nodeIds.length;
  }

  /** Home one more (delta = 1) or one fewer (delta = -1) shared vCPU on core i. */
  addLoad(i: number, delta: number): void {
    const before = this.load[i] ?? 0;
    const after = before + delta;
    this.load[i] = after;
    const node = this.nodeOf[i] ?? 0;
    this.nodeLoad[node] = (this.nodeLoad[node] ?? 0) + delta;
    if (this.state[i] === POOL && (before === 0) !== (after === 0)) {
      const change = after === 0 ? 1 : -1;
      this.nodeIdle[node] = (this.nodeIdle[node] ?? 0) + change;
      this.idleCount += change;
    }
  }

  /** Take an idle pool core out of the pool for an exclusive allocation. */
  claim(i: number, allocationId: string): void {
    const node = this.nodeOf[i] ?? 0;
    this.state[i] = EXCLUSIVE;
    this.owner[i] = allocationId;
    this.nodePool[node] = (this.nodePool[node] ?? 0) - 1;
    this.nodeIdle[node] = (this.nodeIdle[node] ?? 0) - 1;
    this.poolCount -= 1;
    this.idleCount -= 1;
    this.exclusiveCount += 1;
  }

  /** Give an exclusive core back: to the pool, or, when it was reserved meanwhile, to the host. */
  release(i: number): void {
    this.owner[i] = undefined;
    if (this.state[i] !== EXCLUSIVE) return;
    const node = this.nodeOf[i] ?? 0;
    this.state[i] = POOL;
    this.exclusiveCount -= 1;
    this.nodePool[node] = (this.nodePool[node] ?? 0) + 1;
    this.poolCount += 1;
    if (this.load[i] === 0) {
      this.nodeIdle[node] = (this.nodeIdle[node] ?? 0) + 1;
      this.idleCount += 1;
    }
  }

  /** Mark exactly these indexes reserved; every other core goes back to exclusive (when owned) or the pool. */
  setReserved(reserved: ReadonlySet<number>): void {
    for (let i = 0; i < this.count; i += 1) {
      this.state[i] = reserved.has(i) ? RESERVED : this.owner[i] === undefined ? POOL : EXCLUSIVE;
    }
    this.recount();
  }

  /** Rebuild every counter from the per-core arrays (construction and reconfiguration, never per request). */
  private recount(): void {
    this.nodePool.fill(0);
    this.nodeIdle.fill(0);
    this.nodeLoad.fill(0);
    this.poolCount = 0;
    this.idleCount = 0;
    this.reservedCount = 0;
    this.exclusiveCount = 0;
    for (let i = 0; i < this.count; i += 1) {
      const node = this.nodeOf[i] ?? 0;
      const load = this.load[i] ?? 0;
      this.nodeLoad[node] = (this.nodeLoad[node] ?? 0) + load;
      const state = this.state[i];
      if (state === RESERVED) this.reservedCount += 1;
      else if (state === EXCLUSIVE) this.exclusiveCount += 1;
      else {
        this.poolCount += 1;
        this.nodePool[node] = (this.nodePool[node] ?? 0) + 1;
        if (load === 0) {
          this.idleCount += 1;
          this.nodeIdle[node] = (this.nodeIdle[node] ?? 0) + 1;
        }
      }
    }
  }

  /**
   * The cores the host keeps when no explicit list is configured: whole physical cores in order of their lowest
   * thread id (SMT siblings together), the last one partly when the count is odd.
   */
  lowestReserved(count: number): Set<number> {
    const chosen = new Set<number>();
    for (const threads of this.physThreads) {
      for (const i of threads) {
        if (chosen.size >= count) return chosen;
        chosen.add(i);
      }
    }
    return chosen;
  }
}
