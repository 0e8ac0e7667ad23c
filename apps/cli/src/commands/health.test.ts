import { ok, type Health } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, type NatsServerHandle } from '../../../../test/harness/index.ts';
import { runCli } from '../cli.ts';
import { serveFakeScheduler } from '../testing/fake-scheduler.ts';
import { recordingContext } from '../testing/recording-context.ts';

describe('allot health', () => {
  let server: NatsServerHandle;
  let fake: Awaited<ReturnType<typeof serveFakeScheduler>>;
  let answer: Health = { status: 'healthy' };

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
    fake = await serveFakeScheduler(server.url, { health: () => ok(answer) });
  });
  afterAll(async () => {
    await fake.stop();
    await cleanupAll();
  });

  it("prints the cluster's status, then each reason on its own line; --json the reply as is", async () => {
    const healthy = recordingContext({ env: { ALLOT_NATS_SERVERS: server.url } });
    expect(await runCli(['health'], healthy)).toBe(0);
    expect(healthy.text()).toBe('cluster: healthy');
    answer = { status: 'degraded', reasons: ['n1: memory used above 90%', '1 node(s) suspect, 0 lost'] };
    const degraded = recordingContext({ env: { ALLOT_NATS_SERVERS: server.url } });
    expect(await runCli(['health'], degraded)).toBe(0);
    expect(degraded.text().split('\n')).toEqual(['cluster: degraded', '  n1: memory used above 90%', '  1 node(s) suspect, 0 lost']);
    const json = recordingContext({ env: { ALLOT_NATS_SERVERS: server.url } });
    expect(await runCli(['health', '--json'], json)).toBe(0);
    expect(JSON.parse(json.text())).toEqual(answer);
    expect(fake.requests.at(-1)?.verb).toBe('health');
  });
});
