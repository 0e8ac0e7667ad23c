import type { RandomSource } from './random.ts';
import type { CandidateSource, CapacityEntry, CapacityNeed } from './snapshot.ts';

export function entryFits(entry: CapacityEntry, need: CapacityNeed): boolean {
  return entry.freeMemoryMiB >= need.memoryMiB && (need.exclusive ? entry.idleCores : entry.sharedVcpuFit) >= need.vcpus;
}

export type EntryOrder = (a: CapacityEntry, b: CapacityEntry) => number;
/** A predicate that is false for a prefix of the order and true for the rest (a lower bound). */
export type LowerBound = (entry: CapacityEntry) => boolean;

interface TreapNode {
  entry: CapacityEntry;
  priority: number;
  left: TreapNode | null;
  right: TreapNode | null;
  size: number;
  maxMemory: number;
  maxShared: number;
  maxIdle: number;
}

function refresh(n: TreapNode): TreapNode {
  const l = n.left;
  const r = n.right;
  n.size = 1 + (l ? l.size : 0) + (r ? r.size : 0);
  n.maxMemory = Math.max(n.entry.freeMemoryMiB, l ? l.maxMemory : -1, r ? r.maxMemory : -1);
  n.maxShared = Math.max(n.entry.sharedVcpuFit, l ? l.maxShared : -1, r ? r.maxShared : -1);
  n.maxIdle = Math.max(n.entry.idleCores, l ? l.maxIdle : -1, r ? r.maxIdle : -1);
  return n;
}

function canContain(n: TreapNode, need: CapacityNeed): boolean {
  return n.maxMemory >= need.memoryMiB && (need.exclusive ? n.maxIdle : n.maxShared) >= need.vcpus;
}

/** Splits into [entries where !atOrAfter, entries where atOrAfter]; atOrAfter must be monotone in the order. */
function split(n: TreapNode | null, atOrAfter: LowerBound): [TreapNode | null, TreapNode | null] {
  if (n === null) return [null, null];
  if (atOrAfter(n.entry)) {
    const [l, r] = split(n.left, atOrAfter);
    n.left = r;
    return [l, refresh(n)];
  }
  const [l, r] = split(n.right, atOrAfter);
  n.right = l;
  return [refresh(n), r];
}

function merge(a: TreapNode | null, b: TreapNode | null): TreapNode | null {
  if (a === null) return b;
  if (b === null) return a;
  if (a.priority > b.priority) {
    a.right = merge(a.right, b);
    return refresh(a);
  }
  b.left = merge(a, b.left);
  return refresh(b);
}

/**
 * An ordered set of capacity entries: a treap (randomised balanced tree) whose nodes also carry the size and the
 * maximum free memory, shared-vCPU fit and idle cores of their subtree. Insert and remove are O(log n) expected; a walk
 * skips every subtree that cannot hold the request, so finding the next fitting entry costs O(log n) and a walk that
 * yields k entries costs O(k log n). Hand-written: no maintained npm package offers an order-statistic tree with custom
 * subtree aggregates, and the aggregates are what makes pruning possible.
 */
export class CapacityTree {
  #root: TreapNode | null = null;
  readonly #order: EntryOrder;
  readonly #random: RandomSource;

  constructor(order: EntryOrder, random: RandomSource) {
    this.#order = order;
    this.#random = random;
  }

  get size(): number {
    return this.#root ? this.#root.size : 0;
  }

  /** Adds an entry; an entry equal in the order must not already be present (remove it first). */
  insert(entry: CapacityEntry): void {
    const order = this.#order;
    const node = refresh({ entry, priority: this.#random(), left: null, right: null, size: 1, maxMemory: 0, maxShared: 0, maxIdle: 0 });
    const [l, r] = split(this.#root, (e) => order(e, entry) >= 0);
    this.#root = merge(merge(l, node), r);
  }

  /** Removes the entry equal to this one in the order; returns whether one was there. */
  remove(entry: CapacityEntry): boolean {
    const order = this.#order;
    const [l, rest] = split(this.#root, (e) => order(e, entry) >= 0);
    const [middle, r] = split(rest, (e) => order(e, entry) > 0);
    this.#root = merge(l, r);
    return middle !== null;
  }

  /** How many entries fall before the lower bound. O(log n). */
  countBefore(atOrAfter: LowerBound): number {
    let n = this.#root;
    let count = 0;
    while (n !== null) {
      if (atOrAfter(n.entry)) n = n.left;
      else {
        count += 1 + (n.left ? n.left.size : 0);
        n = n.right;
      }
    }
    return count;
  }

  /** The entry at this 0-based position in the order. O(log n). */
  at(rank: number): CapacityEntry | undefined {
    let n = this.#root;
    let r = rank;
    while (n !== null) {
      const leftSize = n.left ? n.left.size : 0;
      if (r < leftSize) n = n.left;
      else if (r === leftSize) return n.entry;
      else {
        r -= leftSize + 1;
        n = n.right;
      }
    }
    return undefined;
  }

  /**
   * The entries at or after the lower bound that fit the need, in ascending or descending order. `before`, when given,
   * ends an ascending walk at the first entry it accepts (used to wrap around).
   */
  walk(need: CapacityNeed, direction: 'ascending' | 'descending', from: LowerBound = () => true, before?: LowerBound): CandidateSource {
    return new TreeWalk(this.#root, need, direction, from, before);
  }

  /**
   * The fitting entries at or after the lower bound, starting at a uniformly random position among them and wrapping
   * around: every fitting node is equally likely to come first, and the walk stays O(log n) per entry.
   */
  walkFromRandom(need: CapacityNeed, from: LowerBound, random: RandomSource): CandidateSource {
    const skipped = this.countBefore(from);
    const span = this.size - skipped;
    if (span <= 0) return { next: () => undefined };
    const start = this.at(skipped + Math.floor(random() * span));
    if (start === undefined) return { next: () => undefined };
    const order = this.#order;
    const atOrAfterStart: LowerBound = (e) => order(e, start) >= 0;
    const first = this.walk(need, 'ascending', atOrAfterStart);
    const second = this.walk(need, 'ascending', from, atOrAfterStart);
    let onSecond = false;
    return {
      next: () => {
        if (!onSecond) {
          const e = first.next();
          if (e !== undefined) return e;
          onSecond = true;
        }
        return second.next();
      },
    };
  }

  /** Every entry in ascending order (for tests and full scans). */
  *entries(): IterableIterator<CapacityEntry> {
    const stack: TreapNode[] = [];
    let n = this.#root;
    while (n !== null || stack.length > 0) {
      while (n !== null) {
        stack.push(n);
        n = n.left;
      }
      const top = stack.pop() as TreapNode;
      yield top.entry;
      n = top.right;
    }
  }
}

/** An in-order walk with an explicit stack (no recursion, no generator chain), pruning subtrees that cannot fit. */
class TreeWalk implements CandidateSource {
  readonly #stack: TreapNode[] = [];
  readonly #need: CapacityNeed;
  readonly #ascending: boolean;
  readonly #from: LowerBound;
  readonly #before: LowerBound | undefined;
  #done = false;

  constructor(
    root: TreapNode | null,
    need: CapacityNeed,
    direction: 'ascending' | 'descending',
    from: LowerBound,
    before: LowerBound | undefined,
  ) {
    this.#need = need;
    this.#ascending = direction === 'ascending';
    this.#from = from;
    this.#before = before;
    this.#descend(root);
  }

  /** Pushes the path towards the first entry in walk order, skipping what is below the bound or cannot fit. */
  #descend(start: TreapNode | null): void {
    let n = start;
    while (n !== null) {
      if (!canContain(n, this.#need)) return;
      // Below the lower bound: this node and its left subtree are out, only the right subtree may qualify.
      if (!this.#from(n.entry)) {
        n = n.right;
        continue;
      }
      this.#stack.push(n);
      n = this.#ascending ? n.left : n.right;
    }
  }

  next(): CapacityEntry | undefined {
    if (this.#done) return undefined;
    while (this.#stack.length > 0) {
      const n = this.#stack.pop() as TreapNode;
      if (this.#before !== undefined && this.#before(n.entry)) break;
      this.#descend(this.#ascending ? n.right : n.left);
      if (entryFits(n.entry, this.#need)) return n.entry;
    }
    this.#done = true;
    this.#stack.length = 0;
    return undefined;
  }
}
