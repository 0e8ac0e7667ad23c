import { ok } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, type NatsServerHandle } from '../../../../test/harness/index.ts';
import { runCli } from '../cli.ts';
import { serveFakeScheduler } from '../testing/fake-scheduler.ts';
import { recordingContext } from '../testing/recording-context.ts';
import { sampleAllocation } from '../testing/samples.ts';

/** allot allocations across pages: the coordinator answers pages of two, cursors "p2" then "p3", then the end. */
describe('allot allocations, paged', () => {
  let server: NatsServerHandle;
  let fake: Awaited<ReturnType<typeof serveFakeScheduler>>;
  const env = () => ({ ALLOT_NATS_SERVERS: server.url });
  const PAGES: Record<string, { ids: string[]; next?: string }> = {
    start: { ids: ['vm-1', 'vm-2'], next: 'p2' },
    p2: { ids: ['vm-3', 'vm-4'], next: 'p3' },
    p3: { ids: ['vm-5'] },
  };

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
    fake = await serveFakeScheduler(server.url, {
      allocations: (r) => {
        const page = PAGES[r.cursor ?? 'start'];
        if (page === undefined) return { ok: false, error: { code: 'invalid_request', message: 'cursor: not a cursor' } };
        return ok({
          allocations: page.ids.map((id) => sampleAllocation(id)),
          ...(page.next === undefined ? {} : { next: page.next }),
          ...(r.cursor === 'p2' ? { nodesFailed: [{ nodeId: 'n9', error: 'timed out' }] } : {}),
        });
      },
    });
  });
  afterAll(async () => {
    await fake.stop();
    await cleanupAll();
  });

  it('sends the node, labels and cursor given, and says where the next page starts on stderr', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['allocations', '--label', 'zone=z2', '--label', 'rack=r3', '--limit', '2', '--json'], ctx)).toBe(0);
    expect(fake.requests.at(-1)).toEqual({
      verb: 'allocations',
      request: { status: 'live', limit: 2, labels: { zone: 'z2', rack: 'r3' } },
    });
    expect(ctx.stderr).toEqual(['more: --cursor p2 (or --all)']);
    const node = recordingContext({ env: env() });
    expect(await runCli(['allocations', '--node', 'n1', '--cursor', 'p2', '--json'], node)).toBe(0);
    expect(fake.requests.at(-1)).toEqual({ verb: 'allocations', request: { status: 'live', limit: 500, nodeId: 'n1', cursor: 'p2' } });
    expect(node.stderr).toEqual(['not listed: n9: timed out', 'more: --cursor p3 (or --all)']);
  });

  it('--all follows the cursors to the end: every page once, in order, and the nodes left out', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['allocations', '--all', '--json'], ctx)).toBe(0);
    expect((JSON.parse(ctx.text()) as { allocations: { requestId: string }[] }).allocations.map((a) => a.requestId)).toEqual([
      'vm-1',
      'vm-2',
      'vm-3',
      'vm-4',
      'vm-5',
    ]);
    expect(ctx.stderr).toEqual(['not listed: n9: timed out']);
  });

  it('exits 2 on a node id, label or combination it cannot send', async () => {
    const cases: [string[], string][] = [
      [['allocations', '--node', 'a.b'], 'allot allocations: --node: "a.b" is not a node id (letters, digits, "_" and "-")'],
      [['allocations', '--label', 'zone'], 'allot allocations: --label: "zone" is not key=value'],
      [['allocations', '--node', 'a', '--label', 'zone=z1'], 'allot allocations: --node and --label exclude each other'],
      [['allocations', '--cursor', 'p2', '--all'], 'allot allocations: --cursor and --all exclude each other'],
    ];
    for (const [argv, message] of cases) {
      const ctx = recordingContext();
      expect(await runCli(argv, ctx), argv.join(' ')).toBe(2);
      expect(ctx.stderr[0], argv.join(' ')).toEqual(message);
    }
  });
});
