import type { CpuPolicy, NumaPolicy } from '@allot/core';
import { POOL } from './core-table.ts';
import type { CoreTable } from './core-table.ts';

/** The thread policies that take only whole idle physical cores (prefer is the ordinary selector, whole cores first). */
export type WholeCorePolicy = 'isolate' | 'require';

/** Why a whole-core choice failed, for the refusal's message and figures. */
export type WholeCoreShortage = 'no_smt' | 'smt_alignment' | 'numa' | 'cores';

/**
 * Chooses exclusive cores for the isolate and require thread policies, from wholly idle physical cores only (every
 * thread in the shared pool with no shared load), so a grant never shares a physical core with anyone:
 * - isolate: one vCPU per physical core, on its lowest thread; its other threads go to `siblings`, held idle.
 * - require: every thread of each physical core; vCPUs must add up to whole cores exactly.
 *
 * The scope follows the request and the core policy as CoreSelector's does: one NUMA node when numa is prefer or
 * require or the policy wants one (affinity-aware, best-fit), chosen first-fit (lowest node), round-robin (from the
 * cursor's node) or tightest (best-fit, affinity-aware); inside the scope, physical cores in id order, round-robin
 * starting at the cursor. Scratch buffers are allocated once.
 */
export class WholeCoreSelector {
  /** vCPU cores of the last choice (logical indexes, ascending) and the idle siblings an isolate choice holds. */
  readonly picked: Int32Array;
  readonly siblings: Int32Array;
  siblingCount = 0;
  numaFallback = false;
  lastTaken = -1;
  shortage: WholeCoreShortage = 'cores';
  private readonly table: CoreTable;
  private readonly allPhys: Int32Array;
  /** Per dense node: what its wholly idle cores offer (isolate: cores, require: threads); refreshed per choice. */
  private readonly nodeUnits: Int32Array;
  private readonly hasSmt: boolean;
  /** The one thread count every physical core has, 0 when they differ. */
  readonly uniformThreads: number;
  /** Per dense NUMA node, 1 when a one-node choice may use it; null: every node (set by the pool around one select). */
  allowedNodes: Uint8Array | null = null;

  constructor(table: CoreTable) {
    this.table = table;
    this.picked = new Int32Array(table.count);
    this.siblings = new Int32Array(table.count);
    this.allPhys = Int32Array.from({ length: table.physThreads.length }, (_, p) => p);
    this.nodeUnits = new Int32Array(table.nodeCount);
    const sizes = new Set(table.physThreads.map((t) => t.length));
    this.hasSmt = table.physThreads.some((t) => t.length > 1);
    this.uniformThreads = sizes.size === 1 ? (table.physThreads[0]?.length ?? 0) : 0;
  }

  /** Wholly idle physical cores, host-wide and on the roomiest node (refusal figures; fresh after select()). */
  wholeIdle(): { host: number; largestNode: number } {
    const t = this.table;
    let host = 0;
    let largestNode = 0;
    for (let node = 0; node < t.nodeCount; node += 1) {
      let count = 0;
      const phys = t.nodePhys[node] ?? this.allPhys;
      for (let q = 0; q < phys.length; q += 1) if (this.isWholeIdle(phys[q] ?? 0)) count += 1;
      host += count;
      largestNode = Math.max(largestNode, count);
    }
    return { host, largestNode };
  }

  /** Choose n vCPUs; returns n, or -1 with `shortage` saying why none could be chosen. */
  select(policy: CpuPolicy, threadPolicy: WholeCorePolicy, n: number, numa: NumaPolicy, cursor: number): number {
    const t = this.table;
    this.siblingCount = 0;
    this.numaFallback = false;
    this.lastTaken = -1;
    if (threadPolicy === 'require') {
      if (!this.hasSmt) return this.fail('no_smt');
      if (this.uniformThreads > 0 && n % this.uniformThreads !== 0) return this.fail('smt_alignment');
    }
    for (let node = 0; node < t.nodeCount; node += 1) this.nodeUnits[node] = this.unitsIn(t.nodePhys[node] ?? this.allPhys, threadPolicy);
    const wantsOneNode = numa !== 'any' || policy === 'affinity-aware' || policy === 'best-fit';
    if (wantsOneNode && t.nodeCount > 1) {
      const node = this.chooseNode(policy, n, cursor);
      if (node >= 0) {
        const count = this.take(t.nodePhys[node] ?? this.allPhys, threadPolicy, n, policy === 'round-robin' ? cursor : -1);
        if (count === n) return n;
      }
      if (numa === 'require') return this.fail('numa');
      this.numaFallback = numa === 'prefer' || policy === 'affinity-aware';
    }
    this.siblingCount = 0;
    const count = this.take(this.allPhys, threadPolicy, n, policy === 'round-robin' ? cursor : -1);
    if (count !== n)
      return this.fail(threadPolicy === 'require' && this.unitsIn(this.allPhys, threadPolicy) >= n ? 'smt_alignment' : 'cores');
    return n;
  }

  private fail(shortage: WholeCoreShortage): number {
    this.shortage = shortage;
    this.siblingCount = 0;
    return -1;
  }

  /** Every thread of physical core p is in the pool with no shared load. */
  isWholeIdle(p: number): boolean {
    const { state, load, physStart, physFlat } = this.table;
    const last = physStart[p + 1] ?? 0;
    for (let k = physStart[p] ?? 0; k < last; k += 1) {
      const i = physFlat[k] ?? 0;
      if (state[i] !== POOL || (load[i] ?? 0) !== 0) return false;
    }
    return true;
  }

  private threadsOf(p: number): number {
    return (this.table.physStart[p + 1] ?? 0) - (this.table.physStart[p] ?? 0);
  }

  private unitsIn(phys: Int32Array, threadPolicy: WholeCorePolicy): number {
    let units = 0;
    for (let q = 0; q < phys.length; q += 1) {
      const p = phys[q] ?? 0;
      if (this.isWholeIdle(p)) units += threadPolicy === 'isolate' ? 1 : this.threadsOf(p);
    }
    return units;
  }

  private chooseNode(policy: CpuPolicy, n: number, cursor: number): number {
    const t = this.table;
    const nodes = t.nodeCount;
    const allowed = this.allowedNodes;
    if (policy === 'first-fit' || policy === 'round-robin') {
      const start = policy === 'round-robin' ? (t.nodeOf[cursor] ?? 0) : 0;
      for (let k = 0; k < nodes; k += 1) {
        const node = (start + k) % nodes;
        if ((this.nodeUnits[node] ?? 0) >= n && (allowed === null || allowed[node] === 1)) return node;
      }
      return -1;
    }
    // best-fit and affinity-aware: the tightest node that fits, leaving roomier nodes for larger requests.
    let best = -1;
    for (let node = 0; node < nodes; node += 1) {
      const units = this.nodeUnits[node] ?? 0;
      if (units >= n && (allowed === null || allowed[node] === 1) && (best < 0 || units < (this.nodeUnits[best] ?? 0))) best = node;
    }
    return best;
  }

  /**
   * Take wholly idle physical cores of `phys` (from the first whose lowest thread is at or past `cursor` when
   * cursor >= 0, wrapping) until n vCPUs are chosen; picked ends ascending. Returns how many vCPUs were chosen.
   */
  private take(phys: Int32Array, threadPolicy: WholeCorePolicy, n: number, cursor: number): number {
    const { physStart, physFlat } = this.table;
    const len = phys.length;
    let start = 0;
    if (cursor >= 0) {
      while (start < len && (physFlat[physStart[phys[start] ?? 0] ?? 0] ?? 0) < cursor) start += 1;
      if (start === len) start = 0;
    }
    let count = 0;
    this.siblingCount = 0;
    for (let k = 0, at = start; k < len && count < n; k += 1, at = at + 1 === len ? 0 : at + 1) {
      const p = phys[at] ?? 0;
      if (!this.isWholeIdle(p)) continue;
      const first = physStart[p] ?? 0;
      const last = physStart[p + 1] ?? 0;
      if (threadPolicy === 'isolate') {
        this.picked[count++] = physFlat[first] ?? 0;
        for (let j = first + 1; j < last; j += 1) this.siblings[this.siblingCount++] = physFlat[j] ?? 0;
      } else {
        if (last - first > n - count) continue; // would leave part of a core to someone else
        for (let j = first; j < last; j += 1) this.picked[count++] = physFlat[j] ?? 0;
      }
      this.lastTaken = physFlat[last - 1] ?? 0;
    }
    sortAscending(this.picked, count);
    sortAscending(this.siblings, this.siblingCount);
    return count;
  }
}

/** Insertion sort of a[0..count): a grant is a handful of cores, and this allocates nothing. */
function sortAscending(a: Int32Array, count: number): void {
  for (let k = 1; k < count; k += 1) {
    const v = a[k] ?? 0;
    let j = k - 1;
    while (j >= 0 && (a[j] ?? 0) > v) {
      a[j + 1] = a[j] ?? 0;
      j -= 1;
    }
    a[j + 1] = v;
  }
}
