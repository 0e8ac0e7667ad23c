import { decode, encode } from '@allot/protocol';
import { err, ok, type Result } from '@allot/core';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Bucket, BucketChange } from './bucket.ts';

/** Rounds of compare-and-set lost to another coordinator writing the same record. */
const MAX_ROUNDS = 16;

export interface NodeRecordsOptions<R extends { readonly nodeId: string }> {
  readonly bucket: Bucket;
  readonly logger: Logger;
  /** The records' keys are `<prefix><nodeId>` (`node.`, `taint.`). */
  readonly prefix: string;
  readonly schema: z.ZodType<R>;
  /** Names the records in errors and logs ("node record", "taint record"). */
  readonly what: string;
  /** Called with a node's record when a newer revision is known, undefined once it is deleted. */
  readonly onRecord: (nodeId: string, record: R | undefined) => void;
  /** A per-message TTL for a record about to be written, if it should expire. */
  readonly ttlMsOf?: (record: R) => number | undefined;
}

/**
 * One record per node in the placements bucket, followed by every coordinator and written by compare-and-set: the
 * operators' decommissions and taints both live this way, so the watch, the read-change-write loop and the revision
 * bookkeeping are this one class.
 */
export class NodeRecords<R extends { readonly nodeId: string }> {
  readonly #o: NodeRecordsOptions<R>;
  readonly #records = new Map<string, { record: R; revision: number }>();
  #stop: (() => void) | undefined;

  constructor(options: NodeRecordsOptions<R>) {
    this.#o = options;
  }

  /** Follows the records; resolves once those stored now are known. */
  async start(): Promise<void> {
    const watch = await this.#o.bucket.watch((change) => this.#onChange(change));
    this.#stop = () => watch.stop();
    await watch.caughtUp;
  }

  stop(): void {
    this.#stop?.();
  }

  get(nodeId: string): R | undefined {
    return this.#records.get(nodeId)?.record;
  }

  all(): R[] {
    return [...this.#records.values()].map((r) => r.record);
  }

  /**
   * Read, change, compare-and-set; a record another coordinator wrote meanwhile is re-read and the change applied to
   * it. `change` answers the record to write, the held one (or undefined) to write nothing, or an error to stop.
   */
  async update(nodeId: string, change: (held: R | undefined) => Result<R | undefined>): Promise<Result<R | undefined>> {
    const key = `${this.#o.prefix}${nodeId}`;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const read = await this.#o.bucket.get(key);
      if (!read.ok) return read;
      let held: R | undefined;
      if (read.value !== null) {
        const decoded = decode(this.#o.schema, read.value.value, Number.POSITIVE_INFINITY);
        if (!decoded.ok) return err('internal', `${this.#o.what} ${key} is invalid: ${decoded.error.message}`, { key });
        held = decoded.value;
      }
      const next = change(held);
      if (!next.ok) return next;
      if (next.value === held || next.value === undefined) return ok(held);
      const ttlMs = this.#o.ttlMsOf?.(next.value);
      const write = {
        key,
        value: encode(next.value),
        expectedRevision: read.value?.revision ?? 0,
        ...(ttlMs === undefined ? {} : { ttlMs }),
      };
      const written = await this.#o.bucket.write([write]);
      if (written.ok) {
        this.#remember(nodeId, next.value, written.value[0] as number);
        return ok(next.value);
      }
      if (written.error.code !== 'conflict') return written;
    }
    return err('unavailable', `${this.#o.what} ${key} kept changing; retry`, { nodeId });
  }

  #onChange(change: BucketChange): void {
    if (!change.key.startsWith(this.#o.prefix)) return;
    const nodeId = change.key.slice(this.#o.prefix.length);
    if ('deleted' in change) {
      if (this.#records.delete(nodeId)) this.#o.onRecord(nodeId, undefined);
      return;
    }
    const decoded = decode(this.#o.schema, change.value, Number.POSITIVE_INFINITY);
    if (!decoded.ok || decoded.value.nodeId !== nodeId) {
      this.#o.logger.warn(
        { key: change.key, error: decoded.ok ? 'names another node' : decoded.error.message },
        `invalid ${this.#o.what} ignored`,
      );
      return;
    }
    this.#remember(nodeId, decoded.value, change.revision);
  }

  /** Keeps the newest revision (own writes may overtake the watch) and tells the owner. */
  #remember(nodeId: string, record: R, revision: number): void {
    const held = this.#records.get(nodeId);
    if (held !== undefined && held.revision >= revision) return;
    this.#records.set(nodeId, { record, revision });
    this.#o.onRecord(nodeId, record);
  }
}
