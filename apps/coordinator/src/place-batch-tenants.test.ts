import { unwrap } from '@allot/core';
import { PlaceBatchRequestSchema, type PlaceBatchRequestInput } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { placeBatch } from './place-batch.ts';
import { inProcessCluster, type InProcessCluster, type InProcessCoordinator } from './testing/fake-agents.ts';

/* place.batch between tenants: one tenant's batch never shapes or reads another's. */

const NODES = { a: { memoryMiB: 4096, cores: 8 }, b: { memoryMiB: 4096, cores: 8 } };

function batch(tenantId: string, batchId: string, n: number, more: Partial<PlaceBatchRequestInput> = {}): PlaceBatchRequestInput {
  return {
    batchId,
    tenantId,
    members: Array.from({ length: n }, (_, i) => ({
      requestId: `${tenantId}-${batchId}-m${i}`,
      tenantId,
      resources: { memoryMiB: 512, vcpus: 1 },
    })),
    ...more,
  };
}

function run(cluster: InProcessCluster, c: InProcessCoordinator, input: PlaceBatchRequestInput) {
  c.refresh();
  return placeBatch({ view: c.view, store: c.store, agents: cluster.agents.caller(), flow: c.flow }, PlaceBatchRequestSchema.parse(input));
}

describe('place.batch between tenants', () => {
  it("two tenants' batches of the same id spread on their own: maxPerNode counts each tenant's members only", async () => {
    const cluster = inProcessCluster(NODES);
    const c = await cluster.coordinator('c1');
    unwrap(await run(cluster, c, batch('acme', 'web', 2, { maxPerNode: 1 })));
    // Batch ids are the tenants' own names: another tenant's "web" on both nodes must not refuse this one.
    const other = await run(cluster, c, batch('other', 'web', 2, { maxPerNode: 1 }));
    expect(other.ok ? other.value.placements.map((p) => p.nodeId).sort() : other.error.message).toEqual(['a', 'b']);
  });
});
