/** The part of a node:http ServerResponse the hub writes to (a fake in unit tests). */
export interface SseSink {
  write(chunk: string): boolean;
  readonly writableLength: number;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  end(): unknown;
  destroy(): unknown;
}

export interface SseHubOptions {
  /** The full state, sent on connect and to a client that fell behind. */
  readonly snapshot: () => unknown;
  /** A comment and an `hb` event this often (default 10 s), so proxies keep the stream open and the page knows it is live. */
  readonly heartbeatMs?: number;
  /** A client whose socket stays full this long is dropped (default 30 s); the page reconnects and gets a snapshot. */
  readonly stalledMs?: number;
  /** A client holding more than this many unsent bytes is dropped at once (default 16 MiB). */
  readonly maxBufferedBytes?: number;
  readonly now?: () => number;
}

interface Client {
  readonly sink: SseSink;
  /** The socket's buffer is full: nothing more is written until it drains. */
  blocked: boolean;
  blockedSince: number;
  /** A delta was skipped while blocked: the client gets a fresh snapshot on drain instead of the deltas it missed. */
  stale: boolean;
}

/** One SSE frame. Data is one JSON line (JSON.stringify never emits a raw newline). */
export function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Server-sent events to every connected page. Each broadcast is serialised once and written to every client.
 *
 * Memory per client is bounded: a client whose socket buffer is full (write() returned false) is written nothing more
 * until it drains; the deltas it misses are not queued but replaced by one fresh snapshot when it drains. So a slow
 * client holds at most one frame beyond the socket's high-water mark, and one that never drains is dropped.
 */
export class SseHub {
  readonly #clients = new Set<Client>();
  readonly #options: SseHubOptions;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #stalledMs: number;
  readonly #maxBuffered: number;
  readonly #now: () => number;
  /** unserialisable: broadcasts dropped because their data was not JSON (a bug or hostile data; never a crash). */
  readonly stats = { connected: 0, resyncs: 0, dropped: 0, frames: 0, unserialisable: 0, errors: 0 };

  constructor(options: SseHubOptions) {
    this.#options = options;
    this.#stalledMs = options.stalledMs ?? 30_000;
    this.#maxBuffered = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.#now = options.now ?? Date.now;
    this.#timer = setInterval(() => this.#safely(() => this.heartbeat()), options.heartbeatMs ?? 10_000);
    this.#timer.unref();
  }

  get size(): number {
    return this.#clients.size;
  }

  /** A new client (headers already sent): it gets the snapshot at once. */
  add(sink: SseSink): void {
    const client: Client = { sink, blocked: false, blockedSince: 0, stale: false };
    this.#clients.add(client);
    this.stats.connected += 1;
    sink.once('close', () => this.#clients.delete(client));
    // Tell EventSource to come back quickly after a restart of the coordinator.
    this.#write(client, `retry: 1000\n${frame('snapshot', this.#options.snapshot())}`);
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
      if (client.blocked) {
        client.stale = true;
        continue;
      }
      this.#write(client, text);
    }
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
    client.blocked = true;
    client.blockedSince = this.#now();
    client.sink.once('drain', () =>
      this.#safely(() => {
        if (!this.#clients.has(client)) return;
        client.blocked = false;
        if (!client.stale) return;
        client.stale = false;
        this.stats.resyncs += 1;
        this.#write(client, frame('snapshot', this.#options.snapshot()));
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

  #drop(client: Client): void {
    this.#clients.delete(client);
    this.stats.dropped += 1;
    client.sink.destroy();
  }
}
