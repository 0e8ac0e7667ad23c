import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, freePort, isLogMsg, startAgent, startNatsServer, tempDir } from '../harness/index.ts';

afterAll(cleanupAll);

describe('an agent started before NATS', () => {
  it('keeps its host, retries with growing jittered waits, and serves once NATS is up', async () => {
    const port = await freePort();
    const agent = await startAgent({
      natsUrl: `nats://127.0.0.1:${port}`,
      nodeId: 'early-1',
      stateDir: await tempDir('agent-start'),
      waitReady: false,
    });
    const retrying = isLogMsg('NATS not reachable yet; the host keeps its state and the agent retries');
    await agent.waitForLine(retrying, 15_000);
    // Three waits: each within [step/2, step) of a doubling step from 500 ms (never a fixed, fleet-wide lockstep).
    await agent.waitForLine((line) => retrying(line) && agent.lines.filter(retrying).length >= 3, 15_000);
    const waits = agent.lines.filter(retrying).map((line) => line['retryInMs'] as number);
    expect(waits[0]).toBeGreaterThanOrEqual(250);
    expect(waits[0]).toBeLessThan(500);
    expect(waits[1]).toBeGreaterThanOrEqual(500);
    expect(waits[1]).toBeLessThan(1000);
    expect(waits[2]).toBeGreaterThanOrEqual(1000);
    expect(waits[2]).toBeLessThan(2000);

    await startNatsServer({ jetstream: true, port });
    await agent.waitForLine(isLogMsg('agent ready'), 30_000);
    expect(await agent.stop('SIGTERM', 10_000)).toBe(0);
  });
});
