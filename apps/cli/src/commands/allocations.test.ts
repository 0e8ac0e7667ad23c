import { ok } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, type NatsServerHandle } from '../../../../test/harness/index.ts';
import { runCli } from '../cli.ts';
import { serveFakeScheduler } from '../testing/fake-scheduler.ts';
import { recordingContext } from '../testing/recording-context.ts';
import { sampleAllocation } from '../testing/samples.ts';

describe('allot allocations', () => {
  let server: NatsServerHandle;
  let fake: Awaited<ReturnType<typeof serveFakeScheduler>>;
  const env = () => ({ ALLOT_NATS_SERVERS: server.url });

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
    fake = await serveFakeScheduler(server.url, {
      allocations: (r) => ok({ allocations: r.tenantId === 'nobody' ? [] : [sampleAllocation('vm-1'), sampleAllocation('vm-2', 'local')] }),
    });
  });
  afterAll(async () => {
    await fake.stop();
    await cleanupAll();
  });

  it('exits 2 on a status, tenant, request id or limit it cannot send', async () => {
    const cases: [string[], string][] = [
      [
        ['allocations', '--status', 'gone'],
        'allot allocations: --status: "gone" is not one of live, active, reserved, releasing, released, failed',
      ],
      [['allocations', '--tenant', 'a.b'], 'allot allocations: --tenant: "a.b" is not a tenant id (letters, digits, "_" and "-")'],
      [['allocations', '--limit', '0'], 'allot allocations: --limit: 0 is outside 1..1000'],
      [['allocations', 'extra'], "allot allocations: Unexpected argument 'extra'. This command does not take positional arguments"],
    ];
    for (const [argv, message] of cases) {
      const ctx = recordingContext();
      expect(await runCli(argv, ctx), argv.join(' ')).toBe(2);
      expect(ctx.stderr[0], argv.join(' ')).toEqual(message);
    }
  });

  it('sends the filters given and prints one row per allocation; none says so', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['allocations', '--tenant', 'demo', '--status', 'reserved', '--request', 'vm-1', '--limit', '10'], ctx)).toBe(0);
    expect(fake.requests.at(-1)).toEqual({
      verb: 'allocations',
      request: { status: 'reserved', tenantId: 'demo', requestId: 'vm-1', limit: 10 },
    });
    const rows = ctx.text().split('\n');
    expect(rows.map((l) => l.split(/\s+/)[0])).toEqual(['ID', sampleAllocation('vm-1').id, sampleAllocation('vm-2', 'local').id]);
    const none = recordingContext({ env: env() });
    expect(await runCli(['allocations', '--tenant', 'nobody'], none)).toBe(0);
    expect(fake.requests.at(-1)).toEqual({ verb: 'allocations', request: { status: 'live', tenantId: 'nobody', limit: 500 } });
    expect(none.text()).toBe('no allocations');
  });

  it('says a full page may not be all, and -o wide adds columns', async () => {
    const full = recordingContext({ env: env() });
    expect(await runCli(['allocations', '--limit', '2'], full)).toBe(0);
    expect(full.text().split('\n').at(-1)).toBe('... the first 2 are listed; there may be more not shown (--limit, up to 1000)');
    const wide = recordingContext({ env: env() });
    expect(await runCli(['allocations', '-o', 'wide'], wide)).toBe(0);
    expect(wide.text().split('\n')[0]).toMatch(
      /^ID\s+TENANT\s+REQUEST\s+NODE\s+MEMORY\s+VCPUS\s+STATUS\s+AGE\s+PRIORITY\s+NUMA\s+EXPIRES$/,
    );
    const bad = recordingContext({ env: env() });
    expect(await runCli(['allocations', '-o', 'yaml'], bad)).toBe(2);
  });
});
