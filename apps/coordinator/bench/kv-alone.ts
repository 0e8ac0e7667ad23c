/*
 * The KV writes of one place, measured alone on the placements bucket (no coordinator, no agents): the counting batch
 * (the intent's create + its tenant's usage record, one atomic batch), a group-committed batch of 100 tenants (what a
 * busy coordinator sends: 100 intents + 100 usage records) and the `placed` compare-and-set (one key).
 * Shared by place.bench.ts (the bound of each run) and batch.bench.ts (one server against a 3-server cluster).
 */
import { encode, KV_PLACEMENTS } from '@allot/protocol';
import { ensureKv } from '@allot/nats';
import { inFlight, quantile } from '../../../test/harness/bench.ts';
import { jetstream, type NatsConnection } from '../src/nats-deps.ts';
import { NatsBucket } from '../src/store/nats-bucket.ts';

export interface KvAlone {
  /** One 2-key batch at a time: its latency. */
  readonly batchP50Ms: number;
  /** 2-key batches on distinct usage keys, `batchWindow` in flight (what a coordinator sends for many tenants). */
  readonly batchesPerSecond: number;
  readonly batchWindow: number;
  /** One group-committed batch at a time (GROUP_TENANTS intent creates + as many usage records): its latency. */
  readonly groupBatchP50Ms: number;
  readonly groupBatchMessages: number;
  /** One single-key compare-and-set (the `placed` write) at a time: its latency. */
  readonly casP50Ms: number;
  /** Single-key creates then compare-and-sets, `casWindow` in flight: pairs per second. */
  readonly casPerSecond: number;
  readonly casWindow: number;
}

/** Tenants of the group batch measured alone: 100 intents + 100 usage records, what a busy coordinator sends. */
export const GROUP_TENANTS = 100;

const INTENT = encode({
  requestId: 'x'.repeat(36),
  tenantId: 'bench',
  hash: 'h'.repeat(64),
  state: 'pending',
  nodeId: 'n-0',
  attempt: 1,
  refusedBy: [],
  coordinatorId: 'bench',
  updatedAt: Date.now(),
  memoryMiB: 16,
  vcpus: 1,
});
const USAGE = encode({ version: 2, tenantId: 'bench', usage: { vms: 1, vcpus: 1, memoryMiB: 16, vmsPerNode: { 'n-0': 1 } } });

/** Measures on the placements bucket (created with the coordinator's settings and `replicas` when absent). */
export async function measureKvAlone(
  nc: NatsConnection,
  opts: { tag: string; replicas: number; count: number; batchWindow: number; casWindow: number },
): Promise<KvAlone> {
  const kv = await ensureKv(jetstream(nc), KV_PLACEMENTS, {
    history: 1,
    replicas: opts.replicas,
    allowAtomic: true,
    allowMsgTtl: true,
    expiryMarkerTtlMs: 60 * 60_000,
  });
  if (!kv.ok) throw new Error(kv.error.message);
  const bucket = new NatsBucket(nc, kv.value, KV_PLACEMENTS);
  const batch = async (key: string) => {
    const r = await bucket.write([
      { key: `intent.alone-${key}`, value: INTENT, expectedRevision: 0 },
      { key: `usage.alone-${key}`, value: USAGE, expectedRevision: 0 },
    ]);
    if (!r.ok) throw new Error(`batch ${key}: ${r.error.message}`);
  };
  const group = async (key: string) => {
    const tenants = Array.from({ length: GROUP_TENANTS }, (_, t) => t);
    const r = await bucket.write([
      ...tenants.map((t) => ({ key: `intent.group-${key}-${t}`, value: INTENT, expectedRevision: 0 })),
      ...tenants.map((t) => ({ key: `usage.group-${key}-${t}`, value: USAGE, expectedRevision: 0 })),
    ]);
    if (!r.ok) throw new Error(`group batch ${key}: ${r.error.message}`);
  };
  const cas = async (key: string) => {
    const created = await bucket.write([{ key: `intent.cas-${key}`, value: INTENT, expectedRevision: 0 }]);
    if (!created.ok) throw new Error(created.error.message);
    const updated = await bucket.write([{ key: `intent.cas-${key}`, value: INTENT, expectedRevision: created.value[0] as number }]);
    if (!updated.ok) throw new Error(updated.error.message);
  };
  const sequential = async (n: number, one: (i: number) => Promise<void>) => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await one(i);
      ms.push(performance.now() - t0);
    }
    return quantile(
      ms.sort((a, b) => a - b),
      0.5,
    );
  };
  const SEQ = Math.min(300, opts.count);
  const batchP50Ms = await sequential(SEQ, (i) => batch(`${opts.tag}-s${i}`));
  const groupBatchP50Ms = await sequential(Math.min(50, SEQ), (i) => group(`${opts.tag}-g${i}`));
  // A create+CAS pair sequentially is two round trips: half of it is one write's latency.
  const casP50Ms = (await sequential(SEQ, (i) => cas(`${opts.tag}-s${i}`))) / 2;
  const batches = await inFlight(opts.count, opts.batchWindow, (i) => batch(`${opts.tag}-p${i}`));
  const pairs = await inFlight(opts.count, opts.casWindow, (i) => cas(`${opts.tag}-p${i}`));
  return {
    batchP50Ms: +batchP50Ms.toFixed(3),
    batchesPerSecond: Math.round(opts.count / (batches.ms / 1000)),
    batchWindow: opts.batchWindow,
    groupBatchP50Ms: +groupBatchP50Ms.toFixed(3),
    groupBatchMessages: 2 * GROUP_TENANTS,
    casP50Ms: +casP50Ms.toFixed(3),
    casPerSecond: Math.round(opts.count / (pairs.ms / 1000)),
    casWindow: opts.casWindow,
  };
}
