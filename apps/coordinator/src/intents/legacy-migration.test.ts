import { encode, PlaceRequestSchema, type PlaceReply } from '@allot/protocol';
import { err, type Allocation } from '@allot/core';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { requestHash } from '../intents.ts';
import type { Bucket } from '../store/bucket.ts';
import { MemoryBucket } from '../store/memory-bucket.ts';
import { inProcessCluster, type InProcessCluster } from '../testing/fake-agents.ts';
import { LEGACY_MIGRATION_KEY, migrateLegacyLayout } from './legacy-migration.ts';

/*
 * A deployment written by a version before usage records moved into allot_placements (commit db25bd8 and earlier):
 * tenant limits in KV allot_quotas (TenantQuotaRecord v1 under the tenant id), intents under the bare request id.
 */

const logger = pino({ level: 'silent' });
const NODES = { a: { memoryMiB: 8192, cores: 8 }, b: { memoryMiB: 8192, cores: 8 } };

function placeRequest(requestId: string, tenantId = 'acme') {
  return PlaceRequestSchema.parse({ request: { requestId, tenantId, resources: { memoryMiB: 512, vcpus: 1 } } });
}

/** What the earlier version left: acme limited to 2 VMs and holding one (old-1 on a), its intent and its quota record. */
async function oldDeployment(cluster: InProcessCluster) {
  const legacy = new MemoryBucket({ now: () => cluster.clock.wall() });
  const req = placeRequest('old-1');
  // The old coordinators sent no fence.
  const allocated = await cluster.agents.caller().call('a', 'allocate', req.request);
  if (!allocated.ok) throw new Error(allocated.error.message);
  const allocation = allocated.value as Allocation;
  const reply: PlaceReply = { nodeId: 'a', allocation, cpuset: [], preempted: [], attempts: 1 };
  const intent = {
    requestId: 'old-1',
    tenantId: 'acme',
    hash: requestHash(req),
    state: 'placed',
    nodeId: 'a',
    attempt: 1,
    refusedBy: [],
    reply,
    coordinatorId: 'old',
    updatedAt: 1,
    memoryMiB: 512,
    vcpus: 1,
  };
  const failedBeforeAnyNode = { ...intent, requestId: 'old-2', state: 'failed', attempt: 0, reply: undefined, nodeId: undefined };
  const quota = { tenantId: 'acme', maxVms: 2, placeRates: [], releaseRates: [] };
  const record = {
    version: 1,
    tenantId: 'acme',
    quota,
    usage: { vms: 1, vcpus: 1, memoryMiB: 512, vmsPerNode: { a: 1 } },
    live: [{ requestId: 'old-1', nodeId: 'a', memoryMiB: 512, vcpus: 1 }],
    recentlyReleased: [],
  };
  const written = await Promise.all([
    cluster.bucket.write([{ key: 'old-1', value: encode(intent), expectedRevision: 0 }]),
    cluster.bucket.write([{ key: 'old-2', value: encode(failedBeforeAnyNode), expectedRevision: 0 }]),
    legacy.write([{ key: 'acme', value: encode(record), expectedRevision: 0 }]),
    legacy.write([{ key: 'broken', value: encode({ version: 1 }), expectedRevision: 0 }]),
  ]);
  for (const w of written) if (!w.ok) throw new Error(w.error.message);
  return { legacy, allocation };
}

describe('legacy layout migration (allot_quotas and bare-key intents)', () => {
  it('keeps an upgraded tenant within the limits it had: its old VM counts and the old maxVms refuses the third', async () => {
    const cluster = inProcessCluster(NODES);
    const { legacy } = await oldDeployment(cluster);
    const c = await cluster.coordinator('c1');
    const migrated = await migrateLegacyLayout(c.store, legacy, logger);
    if (!migrated.ok) throw new Error(migrated.error.message);
    expect(migrated.value).toMatchObject({
      intentsAdopted: 1,
      intentsSkipped: 1,
      quotasSet: 1,
      quotasKept: 0,
      invalid: ['allot_quotas/broken'],
    });

    const second = await c.place({ request: { requestId: 'new-1', tenantId: 'acme', resources: { memoryMiB: 512, vcpus: 1 } } });
    expect(second.ok).toBe(true);
    const third = await c.place({ request: { requestId: 'new-2', tenantId: 'acme', resources: { memoryMiB: 512, vcpus: 1 } } });
    expect(third.ok || third.error.code).toBe('quota_exceeded');
    expect(cluster.agents.live('a').length + cluster.agents.live('b').length).toBe(2);
  });

  it('makes the old placement a placement of this version: counted, releasable by its tenant, a retry answers it', async () => {
    const cluster = inProcessCluster(NODES);
    const { legacy, allocation } = await oldDeployment(cluster);
    const c = await cluster.coordinator('c1');
    expect((await migrateLegacyLayout(c.store, legacy, logger)).ok).toBe(true);
    const counted = await c.store.usage('acme');
    expect(counted.ok && counted.value?.value.usage).toMatchObject({ vms: 1, vcpus: 1, memoryMiB: 512, vmsPerNode: { a: 1 } });

    const retried = await c.flow.place(placeRequest('old-1'));
    expect(retried.ok && retried.value.allocation.id).toBe(allocation.id);
    const released = await c.flow.release({ requestId: 'rel-old-1', placementRequestId: 'old-1', tenantId: 'acme' });
    expect(released.ok).toBe(true);
    expect(cluster.agents.live('a')).toHaveLength(0);
    const usage = await c.store.usage('acme');
    expect(usage.ok && usage.value?.value.usage.vms).toBe(0);
  });

  it('runs once: a second start does nothing, and a run stopped before its marker finds its work done when run again', async () => {
    const cluster = inProcessCluster(NODES);
    const { legacy } = await oldDeployment(cluster);
    // The first run's marker write does not land (the coordinator died just before it).
    const noMarker: Bucket = {
      get: (key) => cluster.bucket.get(key),
      write: (writes) =>
        writes.some((w) => w.key === LEGACY_MIGRATION_KEY)
          ? Promise.resolve(err('unavailable', 'KV did not answer'))
          : cluster.bucket.write(writes),
      watch: (onChange) => cluster.bucket.watch(onChange),
    };
    const dying = await cluster.coordinator('c0', { bucket: noMarker });
    expect((await migrateLegacyLayout(dying.store, legacy, logger)).ok).toBe(false);

    const c = await cluster.coordinator('c1');
    const rerun = await migrateLegacyLayout(c.store, legacy, logger);
    expect(rerun.ok && rerun.value).toMatchObject({ intentsAdopted: 0, intentsPresent: 1, quotasSet: 0, quotasKept: 1 });
    const usage = await c.store.usage('acme');
    expect(usage.ok && usage.value?.value.usage.vms).toBe(1);
    const again = await migrateLegacyLayout(c.store, legacy, logger);
    expect(again.ok && again.value).toBeNull();
  });

  it('leaves a tenant limit set since the upgrade as it is, and does nothing without an allot_quotas bucket', async () => {
    const cluster = inProcessCluster(NODES);
    const { legacy } = await oldDeployment(cluster);
    const c = await cluster.coordinator('c1');
    expect((await c.quotas.set({ tenantId: 'acme', maxVms: 5, placeRates: [], releaseRates: [] })).ok).toBe(true);
    const migrated = await migrateLegacyLayout(c.store, legacy, logger);
    expect(migrated.ok && migrated.value).toMatchObject({ quotasSet: 0, quotasKept: 1 });
    const usage = await c.store.usage('acme');
    expect(usage.ok && usage.value?.value.quota?.maxVms).toBe(5);

    const fresh = inProcessCluster(NODES);
    const d = await fresh.coordinator('d1');
    expect(await migrateLegacyLayout(d.store, null, logger)).toEqual({ ok: true, value: null });
    expect(await fresh.bucket.get(LEGACY_MIGRATION_KEY)).toEqual({ ok: true, value: null });
  });
});
