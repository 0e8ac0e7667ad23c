import { TenantQuotaSchema, unwrap } from '@allot/core';
import type { PlaceRequestInput } from '@allot/protocol';
import { PlaceRequestSchema } from '@allot/protocol';
import { describe, expect, it } from 'vitest';
import { withTenantRights } from './endpoints.ts';
import { inProcessCluster, type InProcessCoordinator } from './testing/fake-agents.ts';

/*
 * A tenant whose quota bounds CPU overcommit (maxCpuOvercommit): every place of it is kept off hosts whose ratio is
 * above the bound, as the place endpoint applies the tenant's rights, and the agent receives the bound (it refuses
 * past it when the coordinator's view was stale).
 */

const DEFAULTS = { priority: 0, allowPreemption: false };

function req(requestId: string, cpu: { exclusive?: boolean; maxOvercommit?: number } = {}, tenantId = 'strict'): PlaceRequestInput {
  return { request: { requestId, tenantId, resources: { memoryMiB: 1024, vcpus: 2 }, cpu }, placement: {} };
}

async function placeAsTenant(c: InProcessCoordinator, input: PlaceRequestInput) {
  const tenantId = input.request.tenantId;
  return c.place(withTenantRights(PlaceRequestSchema.parse(input), c.quotas.quotaOf(tenantId), DEFAULTS));
}

describe("a tenant's bound on CPU overcommit", () => {
  it("places the tenant's shared VMs only on hosts within the bound, and hands the bound to the agent", async () => {
    const cluster = inProcessCluster({
      dense: { memoryMiB: 65_536, cores: 16, cpuOvercommit: 4 },
      dedicated: { memoryMiB: 8192, cores: 8 },
    });
    const c = await cluster.coordinator('c1');
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 'strict', maxCpuOvercommit: 1 })));
    const placed = await placeAsTenant(c, req('vm-1'));
    expect(placed.ok && placed.value.nodeId).toBe('dedicated');
    expect(cluster.agents.live('dedicated')[0]?.request.cpu.maxOvercommit).toBe(1);
    // A request's own looser bound does not loosen the tenant's.
    const loose = await placeAsTenant(c, req('vm-2', { maxOvercommit: 4 }));
    expect(loose.ok && loose.value.nodeId).toBe('dedicated');
    // Another tenant without a bound may use the dense host.
    const other = await placeAsTenant(c, { ...req('vm-3', {}, 'free'), placement: { strategy: 'manual', nodeId: 'dense' } });
    expect(other.ok && other.value.nodeId).toBe('dense');
  });

  it('refuses with the kube-style count when only oversubscribed hosts remain; a dedicated-CPU request still fits', async () => {
    const cluster = inProcessCluster({
      a: { memoryMiB: 65_536, cores: 16, cpuOvercommit: 4 },
      b: { memoryMiB: 65_536, cores: 16, cpuOvercommit: 2 },
    });
    const c = await cluster.coordinator('c1');
    unwrap(await c.quotas.set(TenantQuotaSchema.parse({ tenantId: 'strict', maxCpuOvercommit: 1.5 })));
    const refused = await placeAsTenant(c, req('vm-1'));
    expect(!refused.ok && refused.error.code).toBe('insufficient_capacity');
    expect(!refused.ok && refused.error.message).toContain("2 node(s) overcommit CPU above the request's bound of 1.5");
    const pinned = await placeAsTenant(c, req('vm-2', { exclusive: true }));
    expect(pinned.ok).toBe(true);
  });
});
