import type { CpuPolicy, NumaPolicy } from '@allot/core';
import { POOL } from './core-table.ts';
import type { CoreTable } from './core-table.ts';

/**
 * The four placement policies, as pure functions of the core table. The caller has already checked the whole-host
 * figures (enough pool cores or idle cores, enough shared vCPU capacity), so a choice fails only when a NUMA
 * requirement cannot be met; select() then returns undefined.
 *
 * Cost: one or two passes over the cores in scope, plus a counting sort (O(cores + max load)) for the policies that
 * order by load; scratch buffers are allocated once, so a select allocates nothing.
 *
 * A shared core qualifies when it is in the pool; an exclusive core when it is in the pool with zero shared load,
 * so every cpuset already handed out stays valid.
 */
export class CoreSelector {
  private readonly table: CoreTable;
  /**
   * The last choice, read by the pool right after select() (no result object, so a select allocates nothing):
   * picked[0..count) are logical indexes, ascending; numaFallback says the grant had to span nodes when one was
   * wanted; lastTaken is the last core in round-robin visiting order (its cursor moves past it), -1 otherwise.
   */
  readonly picked: Int32Array;
  numaFallback = false;
  lastTaken = -1;
  private readonly items: Int32Array;
  private readonly keys: Int32Array;
  private readonly ordered: Int32Array;
  private histogram = new Int32Array(64);
  private readonly allPhys: Int32Array;
  /**
   * Cores a choice must not pick although they qualify (1 = blocked): a growing allocation's own cores, so a shared
   * grant never homes two vCPUs on one core. All zero outside selectMore.
   */
  private readonly blocked: Uint8Array;
  /** Thread policy prefer, during one select: exclusive cores come whole physical cores first, whatever the policy. */
  private wholeCoresFirst = false;
  /** Per dense NUMA node, 1 when a one-node choice may use it; null: every node (set by the pool around one select). */
  allowedNodes: Uint8Array | null = null;

  constructor(table: CoreTable) {
    this.table = table;
    this.picked = new Int32Array(table.count);
    this.items = new Int32Array(table.count);
    this.keys = new Int32Array(table.count);
    this.ordered = new Int32Array(table.count);
    this.allPhys = Int32Array.from({ length: table.physThreads.length }, (_, p) => p);
    this.blocked = new Uint8Array(table.count);
  }

  /**
   * Choose n more cores for an allocation that holds `held` (logical indexes) into picked (ascending), by the policy,
   * within NUMA node `node` (a dense index) or over the whole host when node is -1; returns how many were found
   * (fewer than n when the scope cannot give them). The held cores are never chosen again.
   */
  selectMore(
    policy: CpuPolicy,
    n: number,
    exclusive: boolean,
    held: ArrayLike<number>,
    node: number,
    softCap: number,
    cursor: number,
  ): number {
    const t = this.table;
    this.lastTaken = -1;
    this.numaFallback = false;
    for (let k = 0; k < held.length; k += 1) this.blocked[held[k] ?? 0] = 1;
    try {
      const cores = node < 0 ? t.allCores : (t.nodeCores[node] ?? t.allCores);
      const phys = node < 0 ? this.allPhys : (t.nodePhys[node] ?? this.allPhys);
      return this.sortPicked(this.pick(policy, cores, phys, 0, n, exclusive, softCap, cursor));
    } finally {
      for (let k = 0; k < held.length; k += 1) this.blocked[held[k] ?? 0] = 0;
    }
  }

  /**
   * Choose n cores into picked (ascending) and return how many: n, or -1 when a NUMA requirement cannot be met.
   * `softCap` is the per-core load first-fit packs up to (ceil of the ratio); `cursor` is the round-robin start index.
   */
  select(
    policy: CpuPolicy,
    n: number,
    exclusive: boolean,
    numa: NumaPolicy,
    softCap: number,
    cursor: number,
    wholeCoresFirst = false,
  ): number {
    this.wholeCoresFirst = wholeCoresFirst && exclusive;
    try {
      return this.selectScoped(policy, n, exclusive, numa, softCap, cursor);
    } finally {
      this.wholeCoresFirst = false;
    }
  }

  private selectScoped(policy: CpuPolicy, n: number, exclusive: boolean, numa: NumaPolicy, softCap: number, cursor: number): number {
    const t = this.table;
    this.lastTaken = -1;
    this.numaFallback = false;
    // affinity-aware always wants one node; best-fit's exclusive choice is the tightest node; the others only when asked.
    const wantsOneNode = numa !== 'any' || policy === 'affinity-aware' || (policy === 'best-fit' && exclusive);
    let count: number;
    if (wantsOneNode && t.nodeCount > 1) {
      const node = this.chooseNode(policy, n, exclusive, cursor);
      if (node >= 0) {
        count = this.pick(policy, t.nodeCores[node] ?? t.allCores, t.nodePhys[node] ?? this.allPhys, 0, n, exclusive, softCap, cursor);
        return this.sortPicked(count);
      }
      if (numa === 'require') return -1;
      this.numaFallback = numa === 'prefer' || policy === 'affinity-aware';
    }
    count =
      policy === 'affinity-aware'
        ? this.spanNodes(n, exclusive)
        : this.pick(policy, t.allCores, this.allPhys, 0, n, exclusive, softCap, cursor);
    return this.sortPicked(count);
  }

  /** Sort picked[0..count) ascending: insertion sort, since a grant is a handful of cores and this allocates nothing. */
  private sortPicked(count: number): number {
    const a = this.picked;
    for (let k = 1; k < count; k += 1) {
      const v = a[k] ?? 0;
      let j = k - 1;
      while (j >= 0 && (a[j] ?? 0) > v) {
        a[j + 1] = a[j] ?? 0;
        j -= 1;
      }
      a[j + 1] = v;
    }
    return count;
  }

  /** The largest number of cores one NUMA node could give such a request now (for refusals). */
  largestNodeFree(exclusive: boolean): number {
    const avail = exclusive ? this.table.nodeIdle : this.table.nodePool;
    let best = 0;
    for (const a of avail) if (a > best) best = a;
    return best;
  }

  /** The NUMA node a policy would use for a one-node grant, or -1 when none can hold n cores. */
  private chooseNode(policy: CpuPolicy, n: number, exclusive: boolean, cursor: number): number {
    const t = this.table;
    const avail = exclusive ? t.nodeIdle : t.nodePool;
    const nodes = t.nodeCount;
    const allowed = this.allowedNodes;
    if (policy === 'first-fit') {
      for (let node = 0; node < nodes; node += 1) if ((avail[node] ?? 0) >= n && (allowed === null || allowed[node] === 1)) return node;
      return -1;
    }
    if (policy === 'round-robin') {
      const start = t.nodeOf[cursor] ?? 0;
      for (let k = 0; k < nodes; k += 1) {
        const node = (start + k) % nodes;
        if ((avail[node] ?? 0) >= n && (allowed === null || allowed[node] === 1)) return node;
      }
      return -1;
    }
    // best-fit and affinity-aware: exclusive takes the tightest node (fewest idle cores that still fit), leaving the
    // roomier nodes for larger requests; shared takes the least-loaded node per pool core.
    let best = -1;
    for (let node = 0; node < nodes; node += 1) {
      const a = avail[node] ?? 0;
      if (a < n || (allowed !== null && allowed[node] !== 1)) continue;
      if (best < 0) best = node;
      else if (exclusive) {
        if (a < (avail[best] ?? 0)) best = node;
      } else {
        // load/pool compared as cross products, to stay in integers.
        const lhs = (t.nodeLoad[node] ?? 0) * (t.nodePool[best] ?? 0);
        const rhs = (t.nodeLoad[best] ?? 0) * a;
        if (lhs < rhs) best = node;
      }
    }
    return best;
  }

  /** affinity-aware when no node can hold the request: as few nodes as possible, the roomiest first. */
  private spanNodes(n: number, exclusive: boolean): number {
    const t = this.table;
    const avail = exclusive ? t.nodeIdle : t.nodePool;
    const nodes = Array.from({ length: t.nodeCount }, (_, i) => i).sort((a, b) => (avail[b] ?? 0) - (avail[a] ?? 0) || a - b);
    let count = 0;
    for (const node of nodes) {
      if (count >= n) break;
      const want = Math.min(n - count, avail[node] ?? 0);
      if (want > 0)
        count = this.pick(
          'affinity-aware',
          t.nodeCores[node] ?? t.allCores,
          t.nodePhys[node] ?? this.allPhys,
          count,
          want,
          exclusive,
          0,
          0,
        );
    }
    return count;
  }

  /** Pick `want` cores from the scope into picked[offset..]; returns offset + how many were picked. */
  private pick(
    policy: CpuPolicy,
    cores: Int32Array,
    phys: Int32Array,
    offset: number,
    want: number,
    exclusive: boolean,
    softCap: number,
    cursor: number,
  ): number {
    if (this.wholeCoresFirst) return this.wholePhysicalCores(phys, offset, want);
    switch (policy) {
      case 'first-fit':
        return this.firstFit(cores, offset, want, exclusive, softCap);
      case 'round-robin':
        return this.roundRobin(cores, offset, want, exclusive, cursor);
      case 'best-fit':
        return exclusive ? this.fewestIdleThreadsFirst(phys, offset, want) : this.leastLoaded(cores, offset, want);
      case 'affinity-aware':
        return exclusive ? this.wholePhysicalCores(phys, offset, want) : this.siblingsByLoad(phys, offset, want);
    }
  }

  private qualifies(i: number, exclusive: boolean): boolean {
    const t = this.table;
    return t.state[i] === POOL && this.blocked[i] === 0 && (!exclusive || t.load[i] === 0);
  }

  /** Lowest ids first; shared cores only up to the soft per-core cap, then (if still short) any pool core. */
  private firstFit(cores: Int32Array, offset: number, want: number, exclusive: boolean, softCap: number): number {
    const { state, load } = this.table;
    const { picked, blocked } = this;
    // One load bound covers both modes: an exclusive core must carry no load, a shared one less than the soft cap.
    const below = exclusive ? 1 : softCap;
    let count = offset;
    const end = offset + want;
    for (let k = 0; k < cores.length && count < end; k += 1) {
      const i = cores[k] ?? 0;
      if (state[i] === POOL && blocked[i] === 0 && (load[i] ?? 0) < below) picked[count++] = i;
    }
    if (!exclusive) {
      for (let k = 0; k < cores.length && count < end; k += 1) {
        const i = cores[k] ?? 0;
        if (state[i] === POOL && blocked[i] === 0 && (load[i] ?? 0) >= softCap) picked[count++] = i;
      }
    }
    return count;
  }

  /** From the cursor onwards, wrapping inside the scope: n distinct qualifying cores. */
  private roundRobin(cores: Int32Array, offset: number, want: number, exclusive: boolean, cursor: number): number {
    const len = cores.length;
    let start = 0;
    while (start < len && (cores[start] ?? 0) < cursor) start += 1;
    if (start === len) start = 0; // the cursor is past this scope's last core: wrap to its first
    const { state, load } = this.table;
    const below = exclusive ? 1 : Number.MAX_SAFE_INTEGER;
    let count = offset;
    const end = offset + want;
    for (let k = 0, at = start; k < len && count < end; k += 1, at = at + 1 === len ? 0 : at + 1) {
      const i = cores[at] ?? 0;
      if (state[i] === POOL && this.blocked[i] === 0 && (load[i] ?? 0) < below) {
        this.picked[count++] = i;
        this.lastTaken = i;
      }
    }
    return count;
  }

  /** best-fit shared: the least-loaded pool cores, lowest ids among equals. */
  private leastLoaded(cores: Int32Array, offset: number, want: number): number {
    const t = this.table;
    // Fast path, same answer: when enough idle cores exist they come first in the stable order anyway.
    const idle = this.firstFit(cores, offset, want, true, 0);
    if (idle === offset + want) return idle;
    let n = 0;
    for (let k = 0; k < cores.length; k += 1) {
      const i = cores[k] ?? 0;
      if (t.state[i] !== POOL || this.blocked[i] === 1) continue;
      this.items[n] = i;
      this.keys[n] = t.load[i] ?? 0;
      n += 1;
    }
    this.countingSort(n);
    let count = offset;
    for (let k = 0; k < n && count < offset + want; k += 1) this.picked[count++] = this.ordered[k] ?? 0;
    return count;
  }

  /**
   * best-fit exclusive: physical cores with the fewest idle threads first (finishing a half-used physical core
   * strands nothing; splitting a whole one strands its sibling), lowest ids among equals.
   */
  private fewestIdleThreadsFirst(phys: Int32Array, offset: number, want: number): number {
    const n = this.collectPhys(phys, true);
    this.countingSort(n);
    let count = offset;
    const end = offset + want;
    for (let k = 0; k < n && count < end; k += 1) count = this.takeThreads(this.ordered[k] ?? 0, count, end, true);
    return count;
  }

  /** affinity-aware shared: physical cores by combined load, both threads of one before the next. */
  private siblingsByLoad(phys: Int32Array, offset: number, want: number): number {
    // Fast path, same answer: unloaded physical cores come first in the stable order, in id order.
    const quick = this.unloadedPhys(phys, offset, offset + want);
    if (quick === offset + want) return quick;
    const n = this.collectPhys(phys, false);
    this.countingSort(n);
    let count = offset;
    const end = offset + want;
    for (let k = 0; k < n && count < end; k += 1) count = this.takeThreads(this.ordered[k] ?? 0, count, end, false);
    return count;
  }

  /**
   * affinity-aware exclusive: whole idle physical cores first (all their threads), largest first while they fit in
   * what is left; the remainder from the physical core whose idle threads match it most closely.
   */
  private wholePhysicalCores(phys: Int32Array, offset: number, want: number): number {
    const n = this.collectPhys(phys, true);
    let maxIdle = 0;
    for (let k = 0; k < n; k += 1) maxIdle = Math.max(maxIdle, this.keys[k] ?? 0);
    let count = offset;
    const end = offset + want;
    for (let size = maxIdle; size >= 1 && count < end; size -= 1) {
      for (let k = 0; k < n && count < end; k += 1) {
        if (this.keys[k] !== size || size > end - count) continue;
        count = this.takeThreads(this.items[k] ?? 0, count, end, true);
        this.keys[k] = 0;
      }
    }
    if (count < end) {
      // Every physical core left has more idle threads than we still need: split the closest fit.
      let best = -1;
      for (let k = 0; k < n; k += 1) {
        const idle = this.keys[k] ?? 0;
        if (idle > 0 && (best < 0 || idle < (this.keys[best] ?? 0))) best = k;
      }
      if (best >= 0) count = this.takeThreads(this.items[best] ?? 0, count, end, true);
    }
    return count;
  }

  /** Take the pool threads of physical cores whose pool threads carry no load, in id order, up to end. */
  private unloadedPhys(phys: Int32Array, offset: number, end: number): number {
    const { state, load, physStart, physFlat } = this.table;
    let count = offset;
    for (let q = 0; q < phys.length && count < end; q += 1) {
      const p = phys[q] ?? 0;
      const last = physStart[p + 1] ?? 0;
      let unloaded = true;
      for (let k = physStart[p] ?? 0; k < last; k += 1) {
        const i = physFlat[k] ?? 0;
        if (state[i] === POOL && (this.blocked[i] === 1 || (load[i] ?? 0) > 0)) unloaded = false;
      }
      if (unloaded) count = this.takeThreads(p, count, end, false);
    }
    return count;
  }

  /** items/keys := the physical cores with at least one qualifying thread, keyed by idle-thread count or by load. */
  private collectPhys(phys: Int32Array, exclusive: boolean): number {
    const { state, load, physStart, physFlat } = this.table;
    let n = 0;
    for (let q = 0; q < phys.length; q += 1) {
      const p = phys[q] ?? 0;
      let qualifying = 0;
      let sum = 0;
      const end = physStart[p + 1] ?? 0;
      for (let k = physStart[p] ?? 0; k < end; k += 1) {
        const i = physFlat[k] ?? 0;
        const l = load[i] ?? 0;
        if (state[i] !== POOL || this.blocked[i] === 1 || (exclusive && l !== 0)) continue;
        qualifying += 1;
        sum += l;
      }
      if (qualifying === 0) continue;
      this.items[n] = p;
      this.keys[n] = exclusive ? qualifying : sum;
      n += 1;
    }
    return n;
  }

  private takeThreads(p: number, count: number, end: number, exclusive: boolean): number {
    const { physStart, physFlat } = this.table;
    const last = physStart[p + 1] ?? 0;
    for (let k = physStart[p] ?? 0; k < last && count < end; k += 1) {
      const i = physFlat[k] ?? 0;
      if (this.qualifies(i, exclusive)) this.picked[count++] = i;
    }
    return count;
  }

  /**
   * ordered[0..n) := items[0..n) stably sorted by keys. A counting sort (keys are small loads or thread counts):
   * O(n + max key) with no allocation, where Array.prototype.sort would cost n log n and a closure per compare.
   */
  private countingSort(n: number): void {
    let maxKey = 0;
    for (let k = 0; k < n; k += 1) maxKey = Math.max(maxKey, this.keys[k] ?? 0);
    if (this.histogram.length < maxKey + 2) this.histogram = new Int32Array(Math.max(maxKey + 2, this.histogram.length * 2));
    const h = this.histogram;
    h.fill(0, 0, maxKey + 2);
    for (let k = 0; k < n; k += 1) h[(this.keys[k] ?? 0) + 1] = (h[(this.keys[k] ?? 0) + 1] ?? 0) + 1;
    for (let key = 1; key <= maxKey + 1; key += 1) h[key] = (h[key] ?? 0) + (h[key - 1] ?? 0);
    for (let k = 0; k < n; k += 1) {
      const key = this.keys[k] ?? 0;
      const at = h[key] ?? 0;
      this.ordered[at] = this.items[k] ?? 0;
      h[key] = at + 1;
    }
  }
}
