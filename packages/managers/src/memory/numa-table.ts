import {
  err,
  errorOf,
  ok,
  type AllotError,
  type AllocationRequest,
  type MemoryGrant,
  type NodeMemory,
  type NumaMemoryUsage,
  type Result,
} from '@allot/core';

/** kube's name of a hugepage resource: `hugepages-2Mi`, `hugepages-1Gi`. */
function hugepageName(pageSizeMiB: number): string {
  return pageSizeMiB % 1024 === 0 ? `hugepages-${pageSizeMiB / 1024}Gi` : `hugepages-${pageSizeMiB}Mi`;
}

interface PagePool {
  readonly total: number;
  used: number;
}

/** One NUMA node as accounted: its regular memory (the node's total less its hugepage pools) and its pools by page size. */
interface NodeBook {
  readonly node: number;
  readonly capacityMiB: number;
  pinnedMiB: number;
  readonly pages: Map<number, PagePool>;
}

/** What one allocation holds per node: its pinned MiB (0 when its memory floats) and its grant. */
interface Holding {
  memoryMiB: number;
  readonly grant: MemoryGrant;
}

/** Free pages of one size on a node (0 when the node has no such pool). */
function freePagesOf(book: NodeBook, sizeMiB: number): number {
  const pool = book.pages.get(sizeMiB);
  return pool === undefined ? 0 : Math.max(0, pool.total - pool.used);
}

/**
 * Per-NUMA-node accounting of pinned memory and hugepages, beside the host-wide pool that counts every MiB.
 *
 * The rule, kept sound without tracking where floating memory lands: memory of a request that names a NUMA node is
 * pinned there (the node's pinned total never exceeds its capacity); memory of any other request floats (Nova's
 * unpinned instances, the kubelet's `none` policy) and is counted host-wide only. Floating memory can be spread over
 * whatever the pinned memory leaves, so when the host-wide bound is at most the nodes' total, every node's pinned plus
 * its share of the floating memory fits. A pinned request also needs host-wide room: its node's free figure is the
 * smaller of the two. Hugepages are counted in pages per node and size, apart from MiB: they are not regular memory.
 */
export class NumaTable {
  readonly #nodes = new Map<number, NodeBook>();
  readonly #holdings = new Map<string, Holding>();

  constructor(nodes: readonly NodeMemory[]) {
    for (const n of nodes) {
      const pages = new Map<number, PagePool>();
      let hugeMiB = 0;
      for (const pool of n.hugepages) {
        // Sizes that are not whole MiB (64 KiB pages on some ARM hosts) are not offered.
        if (pool.sizeKiB % 1024 !== 0) continue;
        const sizeMiB = pool.sizeKiB / 1024;
        pages.set(sizeMiB, { total: pool.total, used: 0 });
        hugeMiB += sizeMiB * pool.total;
      }
      this.#nodes.set(n.node, { node: n.node, capacityMiB: Math.max(0, n.totalMiB - hugeMiB), pinnedMiB: 0, pages });
    }
  }

  get nodeCount(): number {
    return this.#nodes.size;
  }

  /** The sum of the nodes' regular memory (their hugepage pools left out). */
  get capacityMiB(): number {
    let sum = 0;
    for (const n of this.#nodes.values()) sum += n.capacityMiB;
    return sum;
  }

  /** MiB pinned on all nodes together. */
  get pinnedMiB(): number {
    let sum = 0;
    for (const n of this.#nodes.values()) sum += n.pinnedMiB;
    return sum;
  }

  /** What a request naming `node` could take now: the node's room, never more than the host's. */
  nodeFree(node: number, hostFree: number): number {
    const book = this.#nodes.get(node);
    return book === undefined ? 0 : Math.max(0, Math.min(book.capacityMiB - book.pinnedMiB, hostFree));
  }

  /** True when the request needs this table (a NUMA node or hugepages); other requests float host-wide. */
  static involves(request: AllocationRequest): boolean {
    return request.memory?.numaNode !== undefined || request.memory?.hugepages !== undefined;
  }

  /**
   * Where the request's memory and hugepages would go now, or the refusal naming the NUMA node and its figures.
   * Changes nothing. `hostFree`: the host-wide free MiB (a pinned request needs that too).
   */
  place(request: AllocationRequest, hostFree: number): Result<MemoryGrant> {
    const options = request.memory;
    const memoryMiB = request.resources.memoryMiB;
    const grant: MemoryGrant = {};
    const pinned = options?.numaNode;
    if (pinned !== undefined) {
      const book = this.#nodes.get(pinned);
      if (book === undefined) return this.#unknownNode(pinned, memoryMiB);
      const free = this.nodeFree(pinned, hostFree);
      if (memoryMiB > free)
        return err(
          'insufficient_capacity',
          `memory: NUMA node ${pinned} has ${free} MiB free of ${book.capacityMiB} MiB, requested ${memoryMiB} MiB`,
          {
            resourceType: 'memory',
            numaNode: pinned,
            requested: memoryMiB,
            free,
            effectiveCapacity: book.capacityMiB,
            reason: 'numa_memory',
          },
        );
      grant.numaNode = pinned;
    }
    const huge = options?.hugepages;
    if (huge !== undefined) {
      const node = pinned ?? this.#nodeWithPages(huge.pageSizeMiB, huge.count);
      const name = hugepageName(huge.pageSizeMiB);
      if (node === undefined) {
        const most = this.#mostFreePages(huge.pageSizeMiB);
        return err('insufficient_capacity', `${name}: no NUMA node has ${huge.count} free pages (the most on one node: ${most})`, {
          resourceType: 'memory',
          hugepages: name,
          requested: huge.count,
          free: most,
          effectiveCapacity: this.#totalPages(huge.pageSizeMiB),
          reason: 'hugepages',
        });
      }
      const pool = this.#nodes.get(node)?.pages.get(huge.pageSizeMiB);
      const free = pool === undefined ? 0 : Math.max(0, pool.total - pool.used);
      if (huge.count > free)
        return err(
          'insufficient_capacity',
          `${name}: NUMA node ${node} has ${free} free of ${pool?.total ?? 0} pages, requested ${huge.count}`,
          {
            resourceType: 'memory',
            hugepages: name,
            numaNode: node,
            requested: huge.count,
            free,
            effectiveCapacity: pool?.total ?? 0,
            reason: 'hugepages',
          },
        );
      grant.hugepages = { pageSizeMiB: huge.pageSizeMiB, count: huge.count, numaNode: node };
    }
    return ok(grant);
  }

  #unknownNode(node: number, memoryMiB: number): Result<never> {
    const known = [...this.#nodes.keys()].join(', ');
    return err('insufficient_capacity', `memory: NUMA node ${node} does not exist on this host (its nodes: ${known || 'none known'})`, {
      resourceType: 'memory',
      numaNode: node,
      requested: memoryMiB,
      free: 0,
      effectiveCapacity: 0,
      reason: 'numa_node_unknown',
    });
  }

  /**
   * The nodes (ascending ids) where the request's memoryMiB and hugepages would both fit if taken there now: the NUMA
   * nodes a request bound to one node may take its cores from. `hostFree` as in place().
   */
  nodesFitting(request: AllocationRequest, hostFree: number): number[] {
    const memoryMiB = request.resources.memoryMiB;
    const huge = request.memory?.hugepages;
    const out: number[] = [];
    for (const book of this.#nodes.values()) {
      if (memoryMiB > this.nodeFree(book.node, hostFree)) continue;
      if (huge !== undefined && freePagesOf(book, huge.pageSizeMiB) < huge.count) continue;
      out.push(book.node);
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * Why no single node fits a request bound to one node (nodesFitting found none): no node has the memory, or none has
   * the pages, or the nodes with the memory are not those with the pages.
   */
  noNodeFits(request: AllocationRequest, hostFree: number): AllotError {
    const memoryMiB = request.resources.memoryMiB;
    const huge = request.memory?.hugepages;
    const withMemory: number[] = [];
    let most = 0;
    let largest = 0;
    for (const book of this.#nodes.values()) {
      const free = this.nodeFree(book.node, hostFree);
      most = Math.max(most, free);
      largest = Math.max(largest, book.capacityMiB);
      if (memoryMiB <= free) withMemory.push(book.node);
    }
    const bound = ' for a request bound to one NUMA node';
    // (Without hugepages, a node with the memory would have fitted: only the first case is left.)
    if (withMemory.length === 0 || huge === undefined)
      return errorOf(
        'insufficient_capacity',
        `memory: no NUMA node has ${memoryMiB} MiB free${bound} (the most on one node: ${most} MiB)`,
        {
          resourceType: 'memory',
          requested: memoryMiB,
          free: most,
          effectiveCapacity: largest,
          reason: 'numa_memory',
          boundToCores: true,
        },
      );
    const name = hugepageName(huge.pageSizeMiB);
    const withPages = [...this.#nodes.values()].filter((b) => freePagesOf(b, huge.pageSizeMiB) >= huge.count).map((b) => b.node);
    if (withPages.length === 0)
      return errorOf(
        'insufficient_capacity',
        `${name}: no NUMA node has ${huge.count} free pages${bound} (the most on one node: ${this.#mostFreePages(huge.pageSizeMiB)})`,
        {
          resourceType: 'memory',
          hugepages: name,
          requested: huge.count,
          free: this.#mostFreePages(huge.pageSizeMiB),
          effectiveCapacity: this.#totalPages(huge.pageSizeMiB),
          reason: 'hugepages',
          boundToCores: true,
        },
      );
    const list = (nodes: number[]) => nodes.sort((a, b) => a - b).join(', ');
    return errorOf(
      'insufficient_capacity',
      `no NUMA node has both ${memoryMiB} MiB and ${huge.count} ${name} free (the memory is free on node ${list(withMemory)}, the pages on node ${list(withPages)})`,
      {
        resourceType: 'memory',
        requested: memoryMiB,
        hugepages: name,
        memoryNodes: withMemory,
        hugepageNodes: withPages,
        reason: 'numa_cell',
        boundToCores: true,
      },
    );
  }

  /** The lowest node id with `count` free pages of the size (deterministic, so a replay or a peer predicts it). */
  #nodeWithPages(sizeMiB: number, count: number): number | undefined {
    let best: number | undefined;
    for (const book of this.#nodes.values()) {
      const pool = book.pages.get(sizeMiB);
      if (pool !== undefined && pool.total - pool.used >= count && (best === undefined || book.node < best)) best = book.node;
    }
    return best;
  }

  #mostFreePages(sizeMiB: number): number {
    let most = 0;
    for (const book of this.#nodes.values()) {
      const pool = book.pages.get(sizeMiB);
      if (pool !== undefined) most = Math.max(most, pool.total - pool.used);
    }
    return most;
  }

  #totalPages(sizeMiB: number): number {
    let sum = 0;
    for (const book of this.#nodes.values()) sum += book.pages.get(sizeMiB)?.total ?? 0;
    return sum;
  }

  /**
   * Records a holding without a capacity check (a take that `place` admitted, or a restore of what was admitted when
   * committed). A node or pool this host no longer has is created empty, so the books still add up.
   */
  install(allocationId: string, memoryMiB: number, grant: MemoryGrant): void {
    this.remove(allocationId);
    const pinned = grant.numaNode === undefined ? 0 : memoryMiB;
    if (grant.numaNode !== undefined) this.#book(grant.numaNode).pinnedMiB += pinned;
    const huge = grant.hugepages;
    if (huge !== undefined) {
      const book = this.#book(huge.numaNode);
      let pool = book.pages.get(huge.pageSizeMiB);
      if (pool === undefined) book.pages.set(huge.pageSizeMiB, (pool = { total: 0, used: 0 }));
      pool.used += huge.count;
    }
    this.#holdings.set(allocationId, { memoryMiB: pinned, grant });
  }

  #book(node: number): NodeBook {
    let book = this.#nodes.get(node);
    if (book === undefined) this.#nodes.set(node, (book = { node, capacityMiB: 0, pinnedMiB: 0, pages: new Map() }));
    return book;
  }

  /** Gives back what the allocation holds here; false when it holds nothing here. */
  remove(allocationId: string): boolean {
    const holding = this.#holdings.get(allocationId);
    if (holding === undefined) return false;
    this.#holdings.delete(allocationId);
    const { grant } = holding;
    if (grant.numaNode !== undefined) this.#book(grant.numaNode).pinnedMiB -= holding.memoryMiB;
    const huge = grant.hugepages;
    if (huge !== undefined) {
      const pool = this.#book(huge.numaNode).pages.get(huge.pageSizeMiB);
      if (pool !== undefined) pool.used -= huge.count;
    }
    return true;
  }

  grantOf(allocationId: string): MemoryGrant | undefined {
    return this.#holdings.get(allocationId)?.grant;
  }

  /** The NUMA node an allocation's memory is pinned to, if any. */
  pinnedNodeOf(allocationId: string): number | undefined {
    return this.#holdings.get(allocationId)?.grant.numaNode;
  }

  /** The room a pinned allocation could grow by on its node (the host-wide room is the host pool's to check). */
  nodeRoom(node: number): { free: number; capacityMiB: number } {
    const book = this.#nodes.get(node);
    return book === undefined
      ? { free: 0, capacityMiB: 0 }
      : { free: Math.max(0, book.capacityMiB - book.pinnedMiB), capacityMiB: book.capacityMiB };
  }

  clear(): void {
    for (const id of [...this.#holdings.keys()]) this.remove(id);
  }

  /** Per node, ascending by id: capacity, pinned, free for a request naming it (bounded by `hostFree`), hugepages. */
  usage(hostFree: number): NumaMemoryUsage[] {
    return [...this.#nodes.values()]
      .sort((a, b) => a.node - b.node)
      .map((book) => ({
        node: book.node,
        capacityMiB: book.capacityMiB,
        pinnedMiB: book.pinnedMiB,
        freeMiB: this.nodeFree(book.node, hostFree),
        hugepages: [...book.pages.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([pageSizeMiB, pool]) => ({ pageSizeMiB, total: pool.total, used: pool.used, free: Math.max(0, pool.total - pool.used) })),
      }));
  }
}
