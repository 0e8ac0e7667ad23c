import { decode, encode } from '@allot/protocol';
import { EpochMsSchema, err, NodeIdSchema, ok, RequestIdSchema, TaintSchema, type Result, type Taint } from '@allot/core';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Bucket, BucketChange } from './store/bucket.ts';
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

const PREFIX = 'taint.';
const MAX_ROUNDS = 16;

export interface NodeTaintsOptions {
  readonly bucket: Bucket;
  readonly clock: CoordinatorClock;
  readonly coordinatorId: string;
  readonly logger: Logger;
  /** Called with a node's taints as they change (empty: none). */
  readonly onChange: (nodeId: string, taints: readonly Taint[]) => void;
}

/** The taint records: followed from the bucket, written by compare-and-set. */
export class NodeTaints {
  readonly #o: NodeTaintsOptions;
  readonly #records = new Map<string, { record: NodeTaintsRecord; revision: number }>();
  #stop: (() => void) | undefined;

  constructor(options: NodeTaintsOptions) {
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

  of(nodeId: string): readonly Taint[] {
    return this.#records.get(nodeId)?.record.taints ?? [];
  }

  /** Adds the taint, replacing one of the same key and effect (as `kubectl taint` does). Answers the node's taints. */
  async set(nodeId: string, taint: Taint, requestId: string): Promise<Result<readonly Taint[]>> {
    return this.#update(nodeId, requestId, (held) => [...held.filter((t) => t.key !== taint.key || t.effect !== taint.effect), taint]);
  }

  /** Removes the node's taints of this key (and effect, when given). Answers the node's taints. */
  async remove(nodeId: string, key: string, effect: Taint['effect'] | undefined, requestId: string): Promise<Result<readonly Taint[]>> {
    return this.#update(nodeId, requestId, (held) => held.filter((t) => t.key !== key || (effect !== undefined && t.effect !== effect)));
  }

  async #update(nodeId: string, requestId: string, change: (held: readonly Taint[]) => Taint[]): Promise<Result<readonly Taint[]>> {
    const key = `${PREFIX}${nodeId}`;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const read = await this.#o.bucket.get(key);
      if (!read.ok) return read;
      let held: readonly Taint[] = [];
      if (read.value !== null) {
        const decoded = decode(NodeTaintsRecordSchema, read.value.value, Number.POSITIVE_INFINITY);
        if (!decoded.ok) return err('internal', `taint record ${key} is invalid: ${decoded.error.message}`, { key });
        held = decoded.value.taints;
      }
      const taints = change(held);
      if (taints.length > 32) return err('invalid_request', `node ${nodeId} would have more than 32 taints`, { nodeId });
      if (JSON.stringify(taints) === JSON.stringify(held)) return ok(held);
      const record: NodeTaintsRecord = { nodeId, taints, at: this.#o.clock.wall(), requestId, coordinatorId: this.#o.coordinatorId };
      const written = await this.#o.bucket.write([{ key, value: encode(record), expectedRevision: read.value?.revision ?? 0 }]);
      if (written.ok) {
        this.#remember(nodeId, record, written.value[0] as number);
        return ok(taints);
      }
      if (written.error.code !== 'conflict') return written;
    }
    return err('unavailable', `taint record ${key} kept changing; retry`, { nodeId });
  }

  #onChange(change: BucketChange): void {
    if (!change.key.startsWith(PREFIX)) return;
    const nodeId = change.key.slice(PREFIX.length);
    if ('deleted' in change) {
      if (this.#records.delete(nodeId)) this.#o.onChange(nodeId, []);
      return;
    }
    const decoded = decode(NodeTaintsRecordSchema, change.value, Number.POSITIVE_INFINITY);
    if (!decoded.ok || decoded.value.nodeId !== nodeId) {
      this.#o.logger.warn(
        { key: change.key, error: decoded.ok ? 'names another node' : decoded.error.message },
        'invalid taint record ignored',
      );
      return;
    }
    this.#remember(nodeId, decoded.value, change.revision);
  }

  /** Keeps the newest revision (own writes may overtake the watch) and tells the view. */
  #remember(nodeId: string, record: NodeTaintsRecord, revision: number): void {
    const held = this.#records.get(nodeId);
    if (held !== undefined && held.revision >= revision) return;
    this.#records.set(nodeId, { record, revision });
    this.#o.onChange(nodeId, record.taints);
  }
}
