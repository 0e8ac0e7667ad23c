import { EpochMsSchema, err, NodeIdSchema, ok, RequestIdSchema, type Result } from '@allot/core';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Bucket } from './store/bucket.ts';
import { NodeRecords } from './store/node-records.ts';
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

/** A recommissioned record is only a tombstone for watchers: it expires after this long. */
const RECOMMISSIONED_TTL_MS = 24 * 3_600_000;

export interface NodeStatesOptions {
  readonly bucket: Bucket;
  readonly clock: CoordinatorClock;
  readonly coordinatorId: string;
  readonly logger: Logger;
  /** Called with each node's record as it changes (undefined: the node is not decommissioned). */
  readonly onChange: (nodeId: string, record: NodeStateRecord | undefined) => void;
}

/** The decommission records: followed from the bucket, written by compare-and-set (store/node-records.ts). */
export class NodeStates {
  readonly #o: NodeStatesOptions;
  readonly #records: NodeRecords<NodeStateRecord>;

  constructor(options: NodeStatesOptions) {
    this.#o = options;
    this.#records = new NodeRecords({
      bucket: options.bucket,
      logger: options.logger,
      prefix: 'node.',
      schema: NodeStateRecordSchema,
      what: 'node record',
      onRecord: (nodeId, record) => options.onChange(nodeId, record?.state === 'decommissioned' ? record : undefined),
      ttlMsOf: (record) => (record.state === 'recommissioned' ? RECOMMISSIONED_TTL_MS : undefined),
    });
  }

  /** Follows the records; resolves once those stored now are known (before the view is rebuilt, so replayed snapshots of removed nodes are refused). */
  start(): Promise<void> {
    return this.#records.start();
  }

  stop(): void {
    this.#records.stop();
  }

  /** The node's record while it is decommissioned. */
  decommissioned(nodeId: string): NodeStateRecord | undefined {
    const held = this.#records.get(nodeId);
    return held?.state === 'decommissioned' ? held : undefined;
  }

  /** Every decommissioned node's record. */
  all(): NodeStateRecord[] {
    return this.#records.all().filter((r) => r.state === 'decommissioned');
  }

  /** Writes the node decommissioned (kept as it is when it already is: the first reason and time stand). */
  async decommission(nodeId: string, requestId: string, reason: string | undefined): Promise<Result<NodeStateRecord>> {
    const written = await this.#records.update(nodeId, (held) =>
      ok(
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
      ),
    );
    if (!written.ok) return written;
    return written.value === undefined ? err('internal', `node ${nodeId}: decommission record not written`) : ok(written.value);
  }

  /** Marks a decommissioned node removed (nothing of it remains). No-op when it is not decommissioned or already removed. */
  markRemoved(nodeId: string): Promise<Result<NodeStateRecord | undefined>> {
    return this.#records.update(nodeId, (held) =>
      ok(
        held?.state !== 'decommissioned' || held.removedAt !== undefined
          ? held
          : { ...held, removedAt: this.#o.clock.wall(), coordinatorId: this.#o.coordinatorId },
      ),
    );
  }

  /** Undoes a decommission; answers whether the node was decommissioned. */
  async recommission(nodeId: string, requestId: string, reason: string | undefined): Promise<Result<boolean>> {
    let was = false;
    const written = await this.#records.update(nodeId, (held) => {
      was = held?.state === 'decommissioned';
      return ok(
        was
          ? {
              nodeId,
              state: 'recommissioned' as const,
              at: this.#o.clock.wall(),
              requestId,
              ...(reason === undefined ? {} : { reason }),
              coordinatorId: this.#o.coordinatorId,
            }
          : held,
      );
    });
    return written.ok ? ok(was) : written;
  }
}
