import { EpochMsSchema, err, NodeIdSchema, ok, RequestIdSchema, TaintSchema, type Result, type Taint } from '@allot/core';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Bucket } from './store/bucket.ts';
import { NodeRecords } from './store/node-records.ts';
import type { CoordinatorClock } from './store/clock.ts';

/**
 * The operators' taints on a node: `taint.<nodeId>` in the placements bucket, beside the decommission records and for
 * the same reasons (every coordinator owns and watches that bucket, values stay until overwritten). Taints are
 * coordinator state, not the agent's: NoSchedule is a scheduling rule (as in Kubernetes, where the kubelet does not
 * enforce it either), every coordinator follows the records, and a taint set on a node that is down holds when it returns.
 */
export const NodeTaintsRecordSchema = z.object({
  nodeId: NodeIdSchema,
  taints: z.array(TaintSchema).max(32),
  /** Wall time of the last change, the request that made it, and the coordinator that wrote it (for operators). */
  at: EpochMsSchema,
  requestId: RequestIdSchema,
  coordinatorId: z.string().max(64),
});
export type NodeTaintsRecord = z.infer<typeof NodeTaintsRecordSchema>;

/** At most this many taints on one node (the record's schema says the same). */
const MAX_TAINTS = 32;

export interface NodeTaintsOptions {
  readonly bucket: Bucket;
  readonly clock: CoordinatorClock;
  readonly coordinatorId: string;
  readonly logger: Logger;
  /** Called with a node's taints as they change (empty: none). */
  readonly onChange: (nodeId: string, taints: readonly Taint[]) => void;
}

/** The taint records: followed from the bucket, written by compare-and-set (store/node-records.ts). */
export class NodeTaints {
  readonly #o: NodeTaintsOptions;
  readonly #records: NodeRecords<NodeTaintsRecord>;

  constructor(options: NodeTaintsOptions) {
    this.#o = options;
    this.#records = new NodeRecords({
      bucket: options.bucket,
      logger: options.logger,
      prefix: 'taint.',
      schema: NodeTaintsRecordSchema,
      what: 'taint record',
      onRecord: (nodeId, record) => options.onChange(nodeId, record?.taints ?? []),
    });
  }

  /** Follows the records; resolves once those stored now are known. */
  start(): Promise<void> {
    return this.#records.start();
  }

  stop(): void {
    this.#records.stop();
  }

  of(nodeId: string): readonly Taint[] {
    return this.#records.get(nodeId)?.taints ?? [];
  }

  /** Adds the taint, replacing one of the same key and effect (as `kubectl taint` does). Answers the node's taints. */
  set(nodeId: string, taint: Taint, requestId: string): Promise<Result<readonly Taint[]>> {
    return this.#update(nodeId, requestId, (held) => [...held.filter((t) => t.key !== taint.key || t.effect !== taint.effect), taint]);
  }

  /** Removes the node's taints of this key (and effect, when given). Answers the node's taints. */
  remove(nodeId: string, key: string, effect: Taint['effect'] | undefined, requestId: string): Promise<Result<readonly Taint[]>> {
    return this.#update(nodeId, requestId, (held) => held.filter((t) => t.key !== key || (effect !== undefined && t.effect !== effect)));
  }

  async #update(nodeId: string, requestId: string, change: (held: readonly Taint[]) => Taint[]): Promise<Result<readonly Taint[]>> {
    const written = await this.#records.update(nodeId, (record) => {
      const held = record?.taints ?? [];
      const taints = change(held);
      if (taints.length > MAX_TAINTS) return err('invalid_request', `node ${nodeId} would have more than ${MAX_TAINTS} taints`, { nodeId });
      if (JSON.stringify(taints) === JSON.stringify(held)) return ok(record);
      return ok({ nodeId, taints, at: this.#o.clock.wall(), requestId, coordinatorId: this.#o.coordinatorId });
    });
    return written.ok ? ok(written.value?.taints ?? []) : written;
  }
}
