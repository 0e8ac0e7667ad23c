import { request, type ClientRequest, type IncomingMessage } from 'node:http';

/** A node as one coordinator's dashboard feed last showed it. */
interface Seen {
  seq: number;
  bootId: string;
  liveness: string;
  allocationCount: number;
}

interface Row {
  nodeId: string;
  seq: number;
  bootId: string;
  liveness: string;
  allocationCount: number;
}

/**
 * One coordinator's view, as its dashboard feed (GET /api/events/stream, server-sent events) shows it to any page: the
 * `snapshot` on connect, then `delta`s (changed node rows, removed ids) every tick. Counts the bytes it receives, and
 * calls onRow for every row with the time it arrived, so staleness is measured at the coordinator's edge, the way an
 * operator (or a second scheduler reading the view) would see it.
 */
export class ViewWatch {
  readonly url: string;
  readonly nodes = new Map<string, Seen>();
  bytes = 0;
  snapshots = 0;
  deltas = 0;
  /** When the first snapshot arrived (performance.now()), and how many nodes it held. */
  firstSnapshot: { at: number; nodes: number } | undefined;
  #req: ClientRequest | undefined;
  #buffer = '';
  #closed = false;
  /** Every row received, with its arrival in epoch ms. */
  #onRow: (row: Row, at: number) => void;
  #onChange: () => void = () => undefined;

  constructor(url: string, onRow: (row: Row, at: number) => void = () => undefined) {
    this.url = url;
    this.#onRow = onRow;
  }

  /** Nodes shown ready. */
  ready(): number {
    let n = 0;
    for (const s of this.nodes.values()) if (s.liveness === 'ready') n += 1;
    return n;
  }

  /** Connects (retrying until the server answers) and resolves once the first snapshot arrived. */
  async open(timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const connected = await new Promise<boolean>((resolve) => {
        const req = request(`${this.url}/api/events/stream`, { headers: { accept: 'text/event-stream' } }, (res: IncomingMessage) => {
          if (res.statusCode !== 200) {
            res.resume();
            resolve(false);
            return;
          }
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            this.bytes += Buffer.byteLength(chunk);
            this.#feed(chunk);
            if (this.firstSnapshot !== undefined) resolve(true);
          });
          res.on('end', () => resolve(false));
        });
        req.on('error', () => resolve(false));
        req.end();
        this.#req = req;
      });
      if (connected || this.#closed) return;
      if (performance.now() > deadline) throw new Error(`${this.url}: no dashboard feed within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Resolves once `predicate` holds (checked after every message), or rejects after timeoutMs. */
  until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onChange = () => undefined;
        reject(new Error(`${this.url}: ${what} not within ${timeoutMs} ms (${this.ready()} ready of ${this.nodes.size})`));
      }, timeoutMs);
      this.#onChange = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.#onChange = () => undefined;
        resolve();
      };
    });
  }

  close(): void {
    this.#closed = true;
    this.#req?.destroy();
  }

  #feed(chunk: string): void {
    this.#buffer += chunk;
    for (let end = this.#buffer.indexOf('\n\n'); end >= 0; end = this.#buffer.indexOf('\n\n')) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data === '') continue;
      const at = performance.now();
      // Rows are stamped with the wall clock: the workers stamp their changes with it (one machine, one clock).
      const wall = Date.now();
      if (event === 'snapshot') {
        const m = JSON.parse(data) as { nodes: Row[] };
        this.snapshots += 1;
        this.nodes.clear();
        for (const row of m.nodes) this.#row(row, wall);
        this.firstSnapshot ??= { at, nodes: m.nodes.length };
      } else if (event === 'delta') {
        const m = JSON.parse(data) as { nodes?: Row[]; removed?: string[] };
        this.deltas += 1;
        for (const row of m.nodes ?? []) this.#row(row, wall);
        for (const id of m.removed ?? []) this.nodes.delete(id);
      }
      this.#onChange();
    }
  }

  #row(row: Row, wall: number): void {
    this.nodes.set(row.nodeId, { seq: row.seq, bootId: row.bootId, liveness: row.liveness, allocationCount: row.allocationCount });
    this.#onRow(row, wall);
  }
}
