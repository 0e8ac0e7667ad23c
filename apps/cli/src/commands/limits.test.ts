import { effectiveCapacity, err, ok } from '@allot/core';
import type { HostLimits } from '@allot/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, type NatsServerHandle } from '../../../../test/harness/index.ts';
import { runCli } from '../cli.ts';
import { serveFakeScheduler } from '../testing/fake-scheduler.ts';
import { recordingContext } from '../testing/recording-context.ts';

const HELD: HostLimits = {
  memory: { capacity: 16_384, systemReserve: 1_024, overcommitRatio: 1 },
  cpu: { capacity: 8, systemReserve: 0, overcommitRatio: 4, softLimit: 24 },
};

describe('allot limits, before anything is sent', () => {
  it('exits 2 on a missing subcommand or node, a figure it cannot read, or a set flag given to get', async () => {
    const cases: [string[], string][] = [
      [['limits'], 'allot limits: missing a subcommand: get or set'],
      [['limits', 'show', 'a'], 'allot limits: unknown subcommand "show": get or set'],
      [['limits', 'get'], 'allot limits: missing <node>'],
      [['limits', 'get', 'a.b'], 'allot limits: "a.b": letters, digits, "_" and "-" only'],
      [['limits', 'get', 'a', '--force'], "allot limits: --force goes with 'limits set'"],
      [['limits', 'set', 'a'], 'allot limits: name at least one limit to change (see --help)'],
      [
        ['limits', 'set', 'a', '--system-reserve-mib', 'lots'],
        'allot limits: --system-reserve-mib: "lots" is not an amount of memory like 4096 (MiB), 4G or 4GiB',
      ],
      [['limits', 'set', 'a', '--system-reserve-cores', '1.5'], 'allot limits: --system-reserve-cores: "1.5" is not a whole number'],
      [
        ['limits', 'set', 'a', '--system-reserve-cores', 'none'],
        'allot limits: --system-reserve-cores: "none" removes a soft or hard limit only',
      ],
      [['limits', 'set', 'a', '--overcommit', 'disk=2'], 'allot limits: --overcommit: "disk=2" is not memory=<ratio> or cpu=<ratio>'],
      [
        ['limits', 'set', 'a', '--overcommit', 'cpu=0.5'],
        'allot limits: --overcommit: cpu ratio "0.5" is not a number from 1 to 64 with at most two decimals',
      ],
      [
        ['limits', 'set', 'a', '--overcommit', 'cpu=1.255'],
        'allot limits: --overcommit: cpu ratio "1.255" is not a number from 1 to 64 with at most two decimals',
      ],
    ];
    for (const [argv, message] of cases) {
      const ctx = recordingContext();
      expect(await runCli(argv, ctx), argv.join(' ')).toBe(2);
      expect(ctx.stderr[0], argv.join(' ')).toEqual(message);
    }
  });
});

describe('allot limits against an operator endpoint on a real nats-server', () => {
  let server: NatsServerHandle;
  let fake: Awaited<ReturnType<typeof serveFakeScheduler>>;
  const env = () => ({ ALLOT_NATS_SERVERS: server.url });

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
    fake = await serveFakeScheduler(server.url, {
      'limits.get': (r) => (r.nodeId === 'a' ? ok(HELD) : err('not_found', `no node "${r.nodeId}" has reported`, { node: r.nodeId })),
      'limits.update': (r) => ok({ memory: { ...HELD.memory, ...r.memory }, cpu: HELD.cpu } as HostLimits),
    });
  });
  afterAll(async () => {
    await fake.stop();
    await cleanupAll();
  });

  it('get prints each resource with its effective capacity; an unknown node exits 1', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['limits', 'get', 'a'], ctx)).toBe(0);
    expect(fake.requests.at(-1)).toMatchObject({ verb: 'limits.get', request: { nodeId: 'a' } });
    const lines = ctx.text().split('\n');
    expect(lines[0]).toBe('node a');
    expect(lines[2]?.split(/\s+/)).toEqual(['memory', 'MiB', '16384', '1024', '1', String(effectiveCapacity(HELD.memory)), '-', '-']);
    expect(lines[3]?.split(/\s+/)).toEqual(['cpu', 'cores/vCPU', '8', '0', '4', '32', '24', '-']);
    const missing = recordingContext({ env: env() });
    expect(await runCli(['limits', 'get', 'nowhere'], missing)).toBe(1);
    expect(missing.stderr[0]).toBe('allot limits: not_found: no node "nowhere" has reported');
  });

  it('set sends only the limits named, none as null, the overcommit per type, force and the request id', async () => {
    const ctx = recordingContext({ env: env() });
    const argv = [
      'limits',
      'set',
      'a',
      '--system-reserve-mib',
      '2G',
      '--system-reserve-cores',
      '2',
      '--overcommit',
      'cpu=4,memory=1.5',
      '--soft-limit-vcpus',
      'none',
      '--hard-limit-mib',
      '12000',
      '--force',
      '--request-id',
      'lim-1',
    ];
    expect(await runCli(argv, ctx)).toBe(0);
    expect(fake.requests.at(-1)).toEqual({
      verb: 'limits.update',
      request: {
        requestId: 'lim-1',
        nodeId: 'a',
        memory: { systemReserve: 2048, overcommitRatio: 1.5, hardLimit: 12_000 },
        cpu: { systemReserve: 2, overcommitRatio: 4, softLimit: null },
        force: true,
      },
    });
    expect(ctx.text()).toMatch(/^memory +MiB +16384 +2048 +1\.5 /m);
    const plain = recordingContext({ env: env() });
    expect(await runCli(['limits', 'set', 'a', '--system-reserve-mib', '512', '--json'], plain)).toBe(0);
    expect(fake.requests.at(-1)).toMatchObject({
      verb: 'limits.update',
      request: { nodeId: 'a', memory: { systemReserve: 512 }, force: false },
    });
    expect((fake.requests.at(-1)?.request as { cpu?: unknown }).cpu).toBeUndefined();
    expect(JSON.parse(plain.text()).memory.systemReserve).toBe(512);
  });
});
