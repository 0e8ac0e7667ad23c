import { EventEmitter } from 'node:events';
import type { SseSink } from '../http/sse.ts';

/** A page's response for the feed tests: its socket buffer fills after `capacity` bytes until drain() is called. */
export class FakeSseSink extends EventEmitter implements SseSink {
  chunks: string[] = [];
  writableLength = 0;
  destroyed = false;
  ended = false;
  capacity: number;
  constructor(capacity: number) {
    super();
    this.capacity = capacity;
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    this.writableLength += chunk.length;
    return this.writableLength < this.capacity;
  }
  drain(): void {
    this.writableLength = 0;
    this.emit('drain');
  }
  end(): void {
    this.ended = true;
    this.emit('close');
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
  /** Everything written so far. */
  get text(): string {
    return this.chunks.join('');
  }
  /** The SSE event names written so far, in order. */
  events(): string[] {
    return this.chunks.flatMap((c) => [...c.matchAll(/^event: (\w+)$/gm)].map((m) => m[1] as string));
  }
}
