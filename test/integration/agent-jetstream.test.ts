import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { agentRequest, cleanupAll, isLogMsg, startAgent, startNatsServer, tempDir } from '../harness/index.ts';

afterAll(cleanupAll);

describe('an agent whose NATS has no JetStream yet', () => {
  it('serves nothing until it holds the node lease, keeps retrying without crashing, and stops cleanly', async () => {
    const server = await startNatsServer({ jetstream: false });
    const dir = await tempDir('agent-nojs');
    const agent = await startAgent({ natsUrl: server.url, nodeId: 'nojs', stateDir: join(dir, 'state'), waitReady: false });
    await agent.waitForLine(isLogMsg('cannot take the node lease yet (JetStream not answering); nothing is served until then'), 20_000);
    // Without the lease a second agent of this node id could not be told apart, so the host is not served.
    const nc = await connect({ servers: server.url });
    const granted = await agentRequest(
      nc,
      'nojs',
      'allocate',
      { requestId: 'nojs-1', tenantId: 't', resources: { memoryMiB: 1024, vcpus: 1 } },
      1_000,
    );
    expect(granted.ok).toBe(false);
    const exit = await Promise.race([
      agent.exited.then(() => 'exited'),
      new Promise((resolve) => setTimeout(() => resolve('running'), 1_000)),
    ]);
    expect(exit).toBe('running');
    await nc.close();
    expect(await agent.stop('SIGTERM', 10_000)).toBe(0);
  });
});
