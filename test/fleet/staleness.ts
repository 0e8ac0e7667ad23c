import type { Change } from './worker.ts';

/** Rows remembered per node and coordinator: a change reported after its row arrived still finds when that was. */
const HISTORY = 8;

interface Pending {
  readonly seq: number;
  readonly at: number;
  /** When each coordinator first showed seq or later (epoch ms); undefined: not yet. */
  readonly seenAt: Array<number | undefined>;
}

/**
 * View staleness: from a host's change (its seq afterwards, when it was asked for) to the moment EVERY coordinator's
 * view shows that seq or a later one. The workers report changes in batches (every 100 ms) and a coordinator's row may
 * arrive first, so the rows of the last few seqs per node are remembered.
 */
export class StalenessTracker {
  readonly #coordinators: number;
  readonly #pending = new Map<string, Pending[]>();
  readonly #rows: Array<Map<string, Array<readonly [seq: number, at: number]>>>;
  /** Staleness of every change all coordinators showed, ms, in the order they completed. */
  samples: number[] = [];
  changes = 0;

  constructor(coordinators: number) {
    this.#coordinators = coordinators;
    this.#rows = Array.from({ length: coordinators }, () => new Map());
  }

  /** Starts a new measurement window: samples and changes not yet seen are forgotten. */
  reset(): void {
    this.samples = [];
    this.changes = 0;
    this.#pending.clear();
  }

  /** Changes not yet shown by every coordinator. */
  get outstanding(): number {
    let n = 0;
    for (const list of this.#pending.values()) n += list.length;
    return n;
  }

  addChanges(changes: readonly Change[]): void {
    for (const [nodeId, seq, at] of changes) {
      this.changes += 1;
      const seenAt = Array.from({ length: this.#coordinators }, (_, c) => this.#rows[c]?.get(nodeId)?.find(([s]) => s >= seq)?.[1]);
      const p: Pending = { seq, at, seenAt };
      if (this.#complete(p)) continue;
      const list = this.#pending.get(nodeId) ?? [];
      list.push(p);
      this.#pending.set(nodeId, list);
    }
  }

  /** Coordinator c showed the node at this seq at `at` (epoch ms). */
  onRow(c: number, nodeId: string, seq: number, at: number): void {
    const rows = this.#rows[c];
    if (rows === undefined) return;
    const history = rows.get(nodeId) ?? [];
    history.push([seq, at]);
    if (history.length > HISTORY) history.shift();
    rows.set(nodeId, history);
    const list = this.#pending.get(nodeId);
    if (list === undefined) return;
    const left = list.filter((p) => {
      if (p.seq <= seq && p.seenAt[c] === undefined) p.seenAt[c] = at;
      return !this.#complete(p);
    });
    if (left.length === 0) this.#pending.delete(nodeId);
    else this.#pending.set(nodeId, left);
  }

  #complete(p: Pending): boolean {
    let last = 0;
    for (const at of p.seenAt) {
      if (at === undefined) return false;
      last = Math.max(last, at);
    }
    this.samples.push(Math.max(0, last - p.at));
    return true;
  }
}
