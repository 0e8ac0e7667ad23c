/**
 * Released allocations kept for late retries, found by allocation id. Ids are `<nodeId>:<counter>` with a counter that
 * only grows, and the retained ones are the recently released, so a power-of-two table indexed by the counter holds
 * nearly all of them; an id whose cell is taken by another retained allocation (counters a multiple of the table size
 * apart, e.g. a VM that lived through a million others) or that does not have this node's shape goes to a small
 * overflow map. The table doubles while the retained count passes half its size.
 *
 * Written by hand rather than a Map keyed by the id strings because, at the default 100,000 retained allocations, such
 * a Map cost ~1.5 us per allocation's set, get and delete (cache misses in a large hash table), a tenth of a whole
 * allocate+release pair; the table costs ~0.1 us (packages/managers/bench).
 */
export class RetainedById<T extends { readonly allocation: { readonly id: string } }> {
  readonly #prefix: string;
  #cells: (T | undefined)[];
  #mask: number;
  #count = 0;
  readonly #overflow = new Map<string, T>();

  constructor(nodeId: string, initialSize = 1024) {
    this.#prefix = `${nodeId}:`;
    this.#cells = new Array<T | undefined>(initialSize).fill(undefined);
    this.#mask = initialSize - 1;
  }

  get size(): number {
    return this.#count;
  }

  get(id: string): T | undefined {
    const n = this.#counterOf(id);
    if (n >= 0) {
      const cell = this.#cells[n & this.#mask];
      if (cell !== undefined && cell.allocation.id === id) return cell;
    }
    return this.#overflow.size === 0 ? undefined : this.#overflow.get(id);
  }

  /** Adds or replaces the entry of `entry.allocation.id`. */
  set(entry: T): void {
    if (this.#count + 1 > this.#cells.length >> 1) this.#grow();
    this.#place(entry);
  }

  /** Removes `entry` if it is the one stored under its id. */
  delete(entry: T): void {
    const id = entry.allocation.id;
    const n = this.#counterOf(id);
    if (n >= 0 && this.#cells[n & this.#mask] === entry) {
      this.#cells[n & this.#mask] = undefined;
      this.#count -= 1;
    } else if (this.#overflow.get(id) === entry) {
      this.#overflow.delete(id);
      this.#count -= 1;
    }
  }

  #place(entry: T): void {
    const id = entry.allocation.id;
    const n = this.#counterOf(id);
    if (n >= 0) {
      const at = n & this.#mask;
      const cell = this.#cells[at];
      if (cell === undefined || cell.allocation.id === id) {
        // An id that went to the overflow while its cell was taken moves back here once the cell is free: one entry.
        if (cell === undefined && !(this.#overflow.size > 0 && this.#overflow.delete(id))) this.#count += 1;
        this.#cells[at] = entry;
        return;
      }
    }
    if (!this.#overflow.has(id)) this.#count += 1;
    this.#overflow.set(id, entry);
  }

  #grow(): void {
    const old = this.#cells;
    const spilled = [...this.#overflow.values()];
    this.#cells = new Array<T | undefined>(old.length * 2).fill(undefined);
    this.#mask = this.#cells.length - 1;
    this.#overflow.clear();
    this.#count = 0;
    for (const entry of old) if (entry !== undefined) this.#place(entry);
    for (const entry of spilled) this.#place(entry);
  }

  /** The counter of an id of this node (`<nodeId>:<digits>`, no leading zero), or -1. */
  #counterOf(id: string): number {
    const prefix = this.#prefix;
    if (id.length <= prefix.length || id.length > prefix.length + 15 || !id.startsWith(prefix)) return -1;
    let n = 0;
    for (let k = prefix.length; k < id.length; k += 1) {
      const digit = id.charCodeAt(k) - 48;
      if (digit < 0 || digit > 9 || (digit === 0 && k === prefix.length)) return -1;
      n = n * 10 + digit;
    }
    return n;
  }
}
