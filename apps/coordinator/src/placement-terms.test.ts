import { describe, expect, it } from 'vitest';
import { unwrap } from '@allot/core';
import { inProcessCluster } from './testing/fake-agents.ts';

/* What the coordinator hands the agent of the placement's constraints: the required per-node affinity it can check. */

describe('placement terms sent to the agent', () => {
  it('required per-node affinity travels in the allocate request; per-domain, preferred and own-group terms do not', async () => {
    const cluster = inProcessCluster({ a: { memoryMiB: 8192, cores: 8, labels: { zone: 'z1' } } });
    const c = await cluster.coordinator('c1');
    unwrap(
      await c.place({
        request: { requestId: 'db-1', tenantId: 't', resources: { memoryMiB: 512, vcpus: 1 } },
        placement: { group: { name: 'db', maxPerNode: 5 } },
      }),
    );
    const placed = await c.place({
      request: { requestId: 'app-1', tenantId: 't', resources: { memoryMiB: 512, vcpus: 1 } },
      placement: {
        group: { name: 'app', maxPerNode: 5 },
        affinity: [{ group: 'db' }, { group: 'app' }, { group: 'db', topologyKey: 'zone' }, { group: 'cache', mode: 'preferred' }],
      },
    });
    expect(placed.ok && placed.value.nodeId).toBe('a');
    const sent = cluster.agents.live('a').find((x) => x.requestId === 'app-1');
    expect(sent?.request.affinity).toEqual(['db']);
  });
});
