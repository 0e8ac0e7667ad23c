/** The part of a node:http ServerResponse the hub writes to (a fake in unit tests). */
export interface SseSink {
  write(chunk: string): boolean;
  readonly writableLength: number;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  end(): unknown;
  destroy(): unknown;
}

/**
 * How a client that fell behind is brought up to date without a snapshot: what it missed is folded into a backlog of
 * its own (what changed, not the deltas themselves), and on drain it is sent the current state of just that.
 */
export interface CatchUp<B> {
  /** An empty backlog, for a client whose socket just filled. */
  start(): B;
  /** Folds a broadcast the client missed into its backlog; false when the backlog grew past its bound (a snapshot then). */
  add(backlog: B, event: string, data: unknown): boolean;
  /** The frames that bring the client up to date (may be ''). */
  frames(backlog: B): string;
}

export interface SseHubOptions<B = unknown> {
  /** The full state as JSON, sent on connect and to a client that fell too far behind. */
  readonly snapshotJson: () => string;
  /** Without it, a client that fell behind gets a snapshot when it drains. */
  readonly catchUp?: CatchUp<B>;
  /** A comment and an `hb` event this often (default 10 s), so proxies keep the stream open and the page knows it is live. */
  readonly heartbeatMs?: number;
  /** A client whose socket stays full this long is dropped (default 30 s); the page reconnects and gets a snapshot. */
  readonly stalledMs?: number;
  /** A client holding more than this many unsent bytes is dropped at once (default 16 MiB). */
  readonly maxBufferedBytes?: number;
  /**
   * Unsent bytes held for all clients together at most (default 64 MiB): past it the client holding the most is
   * dropped, so pages that stop reading cannot hold 64 x 16 MiB (at 10,000 nodes a snapshot alone is 5.6 MiB).
   */
  readonly maxTotalBufferedBytes?: number;
  readonly now?: () => number;
}

interface Client {
  readonly sink: SseSink;
  /** The socket's buffer is full: nothing more is written until it drains. */
  blocked: boolean;
  blockedSince: number;
  /** What it missed while blocked (catch-up), sent as the current state of those parts on drain. */
  backlog: unknown;
  /** It missed more than a backlog holds (or there is no catch-up): the client gets a fresh snapshot on drain. */
  stale: boolean;
}

/** One SSE frame. Data is one JSON line (JSON.stringify never emits a raw newline). */
export function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** An SSE frame whose data is JSON already. */
function frameJson(event: string, json: string): string {
  return `event: ${event}\ndata: ${json}\n\n`;
}

/**
 * Server-sent events to every connected page. Each broadcast is serialised once and written to every client.
 *
 * Memory per client is bounded: a client whose socket buffer is full (write() returned false) is written nothing more
 * until it drains; the deltas it misses are not queued but folded into its backlog (catch-up: which rows changed, not
 * the rows), and when it drains it is sent one delta with the current state of what changed, at its own pace. A client
 * that missed more than its backlog holds gets one fresh snapshot instead. So a slow client holds at most one frame
 * beyond the socket's high-water mark plus its backlog's bound, and one that never drains is dropped after stalledMs.
 */
export class SseHub<B = unknown> {
  readonly #clients = new Set<Client>();
  readonly #options: SseHubOptions<B>;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #stalledMs: number;
  readonly #maxBuffered: number;
  readonly #maxTotalBuffered: number;
  readonly #now: () => number;
  /** unserialisable: broadcasts dropped because their data was not JSON (a bug or hostile data; never a crash). */
  readonly stats = { connected: 0, resyncs: 0, catchUps: 0, dropped: 0, frames: 0, unserialisable: 0, errors: 0 };

  constructor(options: SseHubOptions<B>) {
    this.#options = options;
    this.#stalledMs = options.stalledMs ?? 30_000;
    this.#maxBuffered = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.#maxTotalBuffered = options.maxTotalBufferedBytes ?? 64 * 1024 * 1024;
    this.#now = options.now ?? Date.now;
    this.#timer = setInterval(() => this.#safely(() => this.heartbeat()), options.heartbeatMs ?? 10_000);
    this.#timer.unref();
  }

  get size(): number {
    return this.#clients.size;
  }

  /** A new client (headers already sent): it gets the snapshot at once. */
  add(sink: SseSink): void {
    const client: Client = { sink, blocked: false, blockedSince: 0, backlog: undefined, stale: false };
    this.#clients.add(client);
    this.stats.connected += 1;
    sink.once('close', () => this.#clients.delete(client));
    // Tell EventSource to come back quickly after a restart of the coordinator.
    this.#write(client, `retry: 1000\n${frameJson('snapshot', this.#options.snapshotJson())}`);
  }

  broadcast(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    let text: string;
    try {
      text = frame(event, data);
    } catch {
      // Called from stream consumers and timers: a throw here would take the coordinator down.
      this.stats.unserialisable += 1;
      return;
    }
    for (const client of this.#clients) {
      if (client.blocked) this.#miss(client, event, data);
      else this.#write(client, text);
    }
  }

  #miss(client: Client, event: string, data: unknown): void {
    if (client.stale) return;
    const catchUp = this.#options.catchUp;
    if (catchUp === undefined) {
      client.stale = true;
      return;
    }
    client.backlog ??= catchUp.start();
    if (catchUp.add(client.backlog as B, event, data)) return;
    client.backlog = undefined;
    client.stale = true;
  }

  /** Keeps the streams open, and drops clients stalled for too long. */
  heartbeat(): void {
    const now = this.#now();
    const text = `: hb\n${frame('hb', { now })}`;
    for (const client of this.#clients) {
      if (client.blocked) {
        if (now - client.blockedSince > this.#stalledMs) this.#drop(client);
        continue;
      }
      this.#write(client, text);
    }
  }

  close(): void {
    clearInterval(this.#timer);
    for (const client of this.#clients) client.sink.end();
    this.#clients.clear();
  }

  #write(client: Client, text: string): void {
    this.stats.frames += 1;
    const flushed = client.sink.write(text);
    if (client.sink.writableLength > this.#maxBuffered) {
      this.#drop(client);
      return;
    }
    if (flushed) return;
    this.#boundTotal();
    if (!this.#clients.has(client)) return;
    client.blocked = true;
    client.blockedSince = this.#now();
    client.sink.once('drain', () =>
      this.#safely(() => {
        if (!this.#clients.has(client)) return;
        client.blocked = false;
        if (client.stale) {
          client.stale = false;
          client.backlog = undefined;
          this.stats.resyncs += 1;
          this.#write(client, frameJson('snapshot', this.#options.snapshotJson()));
          return;
        }
        const backlog = client.backlog;
        if (backlog === undefined || this.#options.catchUp === undefined) return;
        client.backlog = undefined;
        this.stats.catchUps += 1;
        const text = this.#options.catchUp.frames(backlog as B);
        if (text !== '') this.#write(client, text);
      }),
    );
  }

  /** Timer and socket callbacks: a throw there (a snapshot that cannot be built or serialised) is counted, never thrown. */
  #safely(body: () => void): void {
    try {
      body();
    } catch {
      this.stats.errors += 1;
    }
  }

  /** Drops the clients holding the most unsent bytes until all of them together hold at most maxTotalBufferedBytes. */
  #boundTotal(): void {
    for (;;) {
      let total = 0;
      let largest: Client | undefined;
      for (const c of this.#clients) {
        total += c.sink.writableLength;
        if (largest === undefined || c.sink.writableLength > largest.sink.writableLength) largest = c;
      }
      if (total <= this.#maxTotalBuffered || largest === undefined) return;
      this.#drop(largest);
    }
  }

  #drop(client: Client): void {
    this.#clients.delete(client);
    this.stats.dropped += 1;
    client.sink.destroy();
  }
}
