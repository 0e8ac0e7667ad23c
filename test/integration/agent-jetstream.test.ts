import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { agentRequest, cleanupAll, isLogMsg, startAgent, startNatsServer, tempDir } from '../harness/index.ts';

afterAll(cleanupAll);

describe('an agent whose NATS has no JetStream yet', () => {
  it('serves its host anyway and keeps retrying the streams, without crashing', async () => {
    const server = await startNatsServer({ jetstream: false });
    const dir = await tempDir('agent-nojs');
    const agent = await startAgent({ natsUrl: server.url, nodeId: 'nojs', stateDir: join(dir, 'state') });
    await agent.waitForLine(isLogMsg('JetStream not ready yet; retrying'), 20_000);
    const nc = await connect({ servers: server.url });
    const granted = await agentRequest(nc, 'nojs', 'allocate', { requestId: 'nojs-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } });
    expect(granted.ok).toBe(true);
    const exit = await Promise.race([agent.exited.then(() => 'exited'), new Promise((resolve) => setTimeout(() => resolve('running'), 1_000))]);
    expect(exit).toBe('running');
    await nc.close();
    expect(await agent.stop('SIGTERM', 10_000)).toBe(0);
  });
});
