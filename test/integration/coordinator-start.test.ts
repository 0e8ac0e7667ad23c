import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, COORDINATOR_MAIN, freePort, isLogMsg, spawnProcess, startNatsServer, tempDir } from '../harness/index.ts';

afterAll(cleanupAll);

describe('a coordinator started before NATS', () => {
  it('waits for NATS and JetStream instead of exiting, then serves', async () => {
    const port = await freePort();
    const dir = await tempDir('coordinator-start');
    const file = join(dir, 'c1.json');
    await writeFile(file, JSON.stringify({ coordinatorId: 'c1', nats: { servers: [`nats://127.0.0.1:${port}`] }, logLevel: 'info' }));
    const coordinator = spawnProcess({
      name: 'coordinator c1',
      script: COORDINATOR_MAIN,
      args: ['--config', file],
      env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
    });

    // Nothing listens yet: it must say it retries, and stay up.
    await coordinator.waitForLine(isLogMsg('NATS not reachable yet; retrying'), 15_000);
    const early = await Promise.race([
      coordinator.exited.then(() => 'exited'),
      new Promise((resolve) => setTimeout(() => resolve('running'), 1_500)),
    ]);
    expect(early).toBe('running');

    await startNatsServer({ jetstream: true, port });
    await coordinator.waitForLine(isLogMsg('coordinator ready'), 30_000);
    expect(await coordinator.stop('SIGTERM', 10_000)).toBe(0);
  });

  it('exits 0 at once on SIGTERM while it still waits for NATS (nothing was served)', async () => {
    const port = await freePort();
    const dir = await tempDir('coordinator-start');
    const file = join(dir, 'c2.json');
    await writeFile(file, JSON.stringify({ coordinatorId: 'c2', nats: { servers: [`nats://127.0.0.1:${port}`] }, logLevel: 'info' }));
    const coordinator = spawnProcess({
      name: 'coordinator c2',
      script: COORDINATOR_MAIN,
      args: ['--config', file],
      env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test' },
    });
    await coordinator.waitForLine(isLogMsg('NATS not reachable yet; retrying'), 15_000);
    // Within the grace period: past it, stop() kills the process and the exit code is not 0.
    expect(await coordinator.stop('SIGTERM', 5_000)).toBe(0);
    await coordinator.waitForLine(isLogMsg('coordinator stopping during start-up; nothing was served yet'), 1_000);
  });
});
