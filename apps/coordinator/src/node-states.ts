import { decode, encode } from '@allot/protocol';
import { EpochMsSchema, err, NodeIdSchema, ok, RequestIdSchema, type Result } from '@allot/core';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Bucket, BucketChange } from './store/bucket.ts';
import type { CoordinatorClock } from './store/clock.ts';

/**
 * The operators' durable word on a node: `node.<nodeId>` in the placements bucket (KV allot_placements). That bucket,
 * because every coordinator already owns and watches it (no new bucket, no new permission) and it keeps values until
 * they are overwritten (no max_age, unlike the node leases of allot_nodes). Every coordinator follows the records, so
 * a decommission made on one holds on all of them and across restarts.
 */
export const NodeStateRecordSchema = z.object({
  nodeId: NodeIdSchema,
  state: z.enum(['decommissioned', 'recommissioned']),
  /** Wall time of the write, for operators. */
  at: EpochMsSchema,
  requestId: RequestIdSchema,
  reason: z.string().max(256).optional(),
  /** Set once nothing of the node remains: it is out of the view and every count; its agent, should it come back, is refused. */
  removedAt: EpochMsSchema.optional(),
  coordinatorId: z.string().max(64),
});
export type NodeStateRecord = z.infer<typeof NodeStateRecordSchema>;

export function nodeStateKey(nodeId: string): string {
  return `node.${nodeId}`;
}

function nodeIdOfKey(key: string): string | undefined {
  return key.startsWith('node.') ? key.slice('node.'.length) : undefined;
}

/** A recommissioned record is only a tombstone for watchers: it expires after this long. */
const RECOMMISSIONED_TTL_MS = 24 * 3_600_000;

/** Rounds of compare-and-set lost to another coordinator writing the same record. */
const MAX_ROUNDS = 16;

export interface NodeStatesOptions {
  readonly bucket: Bucket;
  readonly clock: CoordinatorClock;
  readonly coordinatorId: string;
  readonly logger: Logger;
  /** Called with each node's record as it changes (undefined: the node is not decommissioned). */
  readonly onChange: (nodeId: string, record: NodeStateRecord | undefined) => void;
}

/** The decommission records: followed from the bucket, written by compare-and-set. */
export class NodeStates {
  readonly #o: NodeStatesOptions;
  readonly #records = new Map<string, { record: NodeStateRecord; revision: number }>();
  #stop: (() => void) | undefined;

  constructor(options: NodeStatesOptions) {
    this.#o = options;
  }

  /** Follows the records; resolves once those stored now are known (before the view is rebuilt, so replayed snapshots of removed nodes are refused). */
  async start(): Promise<void> {
    const watch = await this.#o.bucket.watch((change) => this.#onChange(change));
    this.#stop = () => watch.stop();
    await watch.caughtUp;
  }

  stop(): void {
    this.#stop?.();
  }

  /** The node's record while it is decommissioned. */
  decommissioned(nodeId: string): NodeStateRecord | undefined {
    const held = this.#records.get(nodeId)?.record;
    return held?.state === 'decommissioned' ? held : undefined;
  }

  /** Every decommissioned node's record. */
  all(): NodeStateRecord[] {
    return [...this.#records.values()].map((r) => r.record).filter((r) => r.state === 'decommissioned');
  }

  /** Writes the node decommissioned (kept as it is when it already is: the first reason and time stand). */
  async decommission(nodeId: string, requestId: string, reason: string | undefined): Promise<Result<NodeStateRecord>> {
    const written = await this.#update(nodeId, (held) =>
      held?.state === 'decommissioned'
        ? held
        : {
            nodeId,
            state: 'decommissioned',
            at: this.#o.clock.wall(),
            requestId,
            ...(reason === undefined ? {} : { reason }),
            coordinatorId: this.#o.coordinatorId,
          },
    );
    if (!written.ok) return written;
    return written.value === undefined ? err('internal', `node ${nodeId}: decommission record not written`) : ok(written.value);
  }

  /** Marks a decommissioned node removed (nothing of it remains). No-op when it is not decommissioned or already removed. */
  async markRemoved(nodeId: string): Promise<Result<NodeStateRecord | undefined>> {
    return this.#update(nodeId, (held) =>
      held?.state !== 'decommissioned' || held.removedAt !== undefined
        ? held
        : { ...held, removedAt: this.#o.clock.wall(), coordinatorId: this.#o.coordinatorId },
    );
  }

  /** Undoes a decommission; answers whether the node was decommissioned. */
  async recommission(nodeId: string, requestId: string, reason: string | undefined): Promise<Result<boolean>> {
    let was = false;
    const written = await this.#update(nodeId, (held) => {
      was = held?.state === 'decommissioned';
      return was
        ? {
            nodeId,
            state: 'recommissioned',
            at: this.#o.clock.wall(),
            requestId,
            ...(reason === undefined ? {} : { reason }),
            coordinatorId: this.#o.coordinatorId,
          }
        : held;
    });
    return written.ok ? ok(was) : written;
  }

  /** Read, change, compare-and-set; a record another coordinator wrote meanwhile is re-read and the change applied to it. */
  async #update(
    nodeId: string,
    change: (held: NodeStateRecord | undefined) => NodeStateRecord | undefined,
  ): Promise<Result<NodeStateRecord | undefined>> {
    const key = nodeStateKey(nodeId);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const read = await this.#o.bucket.get(key);
      if (!read.ok) return read;
      let held: NodeStateRecord | undefined;
      if (read.value !== null) {
        const decoded = decode(NodeStateRecordSchema, read.value.value, Number.POSITIVE_INFINITY);
        if (!decoded.ok) return err('internal', `node record ${key} is invalid: ${decoded.error.message}`, { key });
        held = decoded.value;
      }
      const next = change(held);
      if (next === held || next === undefined) return ok(held);
      const ttl = next.state === 'recommissioned' ? { ttlMs: RECOMMISSIONED_TTL_MS } : {};
      const written = await this.#o.bucket.write([{ key, value: encode(next), expectedRevision: read.value?.revision ?? 0, ...ttl }]);
      if (written.ok) {
        this.#remember(nodeId, next, written.value[0] as number);
        return ok(next);
      }
      if (written.error.code !== 'conflict') return written;
    }
    return err('unavailable', `node record ${key} kept changing; retry`, { nodeId });
  }

  #onChange(change: BucketChange): void {
    const nodeId = nodeIdOfKey(change.key);
    if (nodeId === undefined) return;
    if ('deleted' in change) {
      if (this.#records.delete(nodeId)) this.#o.onChange(nodeId, undefined);
      return;
    }
    const decoded = decode(NodeStateRecordSchema, change.value, Number.POSITIVE_INFINITY);
    if (!decoded.ok || decoded.value.nodeId !== nodeId) {
      this.#o.logger.warn(
        { key: change.key, error: decoded.ok ? 'names another node' : decoded.error.message },
        'invalid node record ignored',
      );
      return;
    }
    this.#remember(nodeId, decoded.value, change.revision);
  }

  /** Keeps the newest revision (own writes may overtake the watch) and tells the view. */
  #remember(nodeId: string, record: NodeStateRecord, revision: number): void {
    const held = this.#records.get(nodeId);
    if (held !== undefined && held.revision >= revision) return;
    this.#records.set(nodeId, { record, revision });
    this.#o.onChange(nodeId, record.state === 'decommissioned' ? record : undefined);
  }
}
