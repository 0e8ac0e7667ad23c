import { err, ok } from '@allot/core';
import type { Move } from '@allot/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, startNatsServer, type NatsServerHandle } from '../../../test/harness/index.ts';
import { runCli } from './cli.ts';
import { serveFakeScheduler } from './testing/fake-scheduler.ts';
import { recordingContext } from './testing/recording-context.ts';
import { NOW, SAMPLE_CLUSTER_USAGE, sampleAllocation, sampleNode } from './testing/samples.ts';

function sampleMove(moveRequestId: string, allocationId: string, state: 'held' | 'confirmed'): Move {
  const allocation = {
    ...sampleAllocation('move-x'),
    id: 'local:7',
    nodeId: 'local',
    status: state === 'held' ? ('reserved' as const) : ('active' as const),
  };
  return {
    moveRequestId,
    tenantId: 'demo',
    state,
    source: { allocationId, requestId: 'vm-1', nodeId: allocationId.slice(0, allocationId.lastIndexOf(':')) },
    destination: { requestId: 'move-x', nodeId: 'local', allocation },
  };
}

describe('commands a user types, before anything is sent', () => {
  it('print the list of commands for --help and exit 0', async () => {
    const ctx = recordingContext();
    expect(await runCli(['--help'], ctx)).toBe(0);
    expect(ctx.text()).toContain('Usage: allot <command>');
  });

  it('print the release for --version and version', async () => {
    for (const argv of [['--version'], ['version']]) {
      const ctx = recordingContext();
      expect(await runCli(argv, ctx)).toBe(0);
      expect(ctx.text()).toMatch(/^allot \d+\.\d+\.\d+ \(node v\d+/);
    }
  });

  it('print help for every command', async () => {
    for (const name of [
      'nodes',
      'usage',
      'place',
      'release',
      'activate',
      'check',
      'quotas',
      'cordon',
      'uncordon',
      'drain',
      'node',
      'events',
      'watch',
      'cluster',
    ]) {
      const ctx = recordingContext();
      expect(await runCli([name, '--help'], ctx)).toBe(0);
      expect(ctx.text()).toContain(`Usage: allot ${name}`);
    }
  });

  it('exit 2 with a clear message on an unknown command, an unknown flag, a missing value or a bad value', async () => {
    const cases: [string[], unknown][] = [
      [['launch'], 'allot: unknown command "launch"'],
      [['nodes', '--everything'], "allot nodes: Unknown option '--everything'"],
      [['place', '--tenant'], "allot place: Option '--tenant <value>' argument missing"],
      [
        ['place', '--tenant', 'demo', '--memory', 'lots'],
        'allot place: --memory: "lots" is not an amount of memory like 4096 (MiB), 4G or 4GiB',
      ],
      [['release'], 'allot release: missing <placementRequestId>'],
      [['release', 'a', 'b'], 'allot release: unexpected argument "b"'],
      [['release', 'a'], 'allot release: --tenant: name the tenant that owns the placement'],
      [['usage', '--cores'], 'allot usage: --cores needs --node <id>'],
      [['usage', '--efficiency', '--node', 'n1'], 'allot usage: --efficiency is of the whole cluster: leave out --node and --cores'],
      [['place', '--tenant', 'demo', '--memory', '1G', '--reserve', 'soon'], 'allot place: --reserve: "soon" is not a whole number'],
      [['activate'], 'allot activate: missing <allocationId>'],
      [['activate', 'n1 7'], 'allot activate: "n1 7" is not an allocation id (<nodeId>:<counter>)'],
      [['activate', 'n1:7'], 'allot activate: --tenant: name the tenant that owns the reservation'],
      [['resize'], 'allot resize: missing <allocationId>'],
      [['resize', 'n1:7', '--tenant', 'demo', '--vcpus', '2'], 'allot resize: name the new size: --memory-mib <MiB> and --vcpus <n>'],
      [
        ['resize', 'n1:7', '--tenant', 'demo', '--memory-mib', '1G', '--vcpus', '2'],
        'allot resize: --memory-mib: "1G" is not a whole number',
      ],
      [['usage', '--node', 'a.b'], 'allot usage: --node: "a.b": letters, digits, "_" and "-" only'],
      [['nodes', '--liveness', 'zombie'], 'allot nodes: --liveness: "zombie" is not ready, suspect or lost'],
      [['nodes', '--timeout', 'soon'], 'allot nodes: --timeout: "soon" is not a whole number of milliseconds'],
      [['quotas'], 'allot quotas: missing a subcommand: get, set, import-legacy or recount'],
      [['quotas', 'recount'], 'allot quotas: missing <tenant>'],
      [['quotas', 'get', 'demo', '--max-vms', '3'], "allot quotas: --max-vms goes with 'quotas set'"],
      [['quotas', 'set', 'demo', '--place-rate', '100/day'], 'allot quotas: --place-rate: "day" is not a unit (second, minute, hour)'],
      [['quotas', 'set', 'demo', '--max-memory', '1.5'], 'allot quotas: --max-memory: 1.5 is not a whole number of MiB'],
      [
        ['quotas', 'import-legacy', '/nonexistent/legacy.json'],
        "allot quotas: /nonexistent/legacy.json: ENOENT: no such file or directory, open '/nonexistent/legacy.json'",
      ],
      [['cordon'], 'allot cordon: missing <node>'],
      [['drain', 'a*b'], 'allot drain: "a*b": letters, digits, "_" and "-" only'],
      [['move', 'confirm', 'n1:7', '--tenant', 'demo'], 'allot move: --request-id: name the move to confirm'],
      [['move', 'n1:7'], 'allot move: --tenant: name the tenant that owns the VM'],
      [['evacuate'], 'allot evacuate: missing <node>'],
      [['node'], 'allot node: expected decommission, recommission, taint or untaint, got nothing'],
      [['node', 'retire', 'n1'], 'allot node: expected decommission, recommission, taint or untaint, got "retire"'],
      [['node', 'decommission'], 'allot node: decommission takes exactly one node'],
      [['node', 'recommission', 'a.b'], 'allot node: "a.b": letters, digits, "_" and "-" only'],
      [['nodes', '--state', 'gone'], 'allot nodes: --state: "gone" is not ready, suspect, lost, draining or decommissioned'],
      [['events', '--kind', 'exploded'], expect.stringMatching(/^allot events: --kind: "exploded" is not one of allocated, released/)],
      [['watch', '--json'], "allot watch: --json: watch draws for people; scripts read 'allot usage --json' or the ALLOT_USAGE stream"],
      [['cluster', '--port', '70000'], 'allot cluster: --port: 70000 is outside 1..65535'],
      [['cluster', '--dashboard-port', '8080', '--no-dashboard'], 'allot cluster: --dashboard-port and --no-dashboard exclude each other'],
      [
        ['nodes', '--user', 'u', '--creds', '/u.creds'],
        'allot nodes: connection: (root): choose one way to authenticate: user/password, token, nkey seed or creds file',
      ],
    ];
    for (const [argv, message] of cases) {
      const ctx = recordingContext();
      expect(await runCli(argv, ctx), argv.join(' ')).toBe(2);
      expect(ctx.stderr[0], argv.join(' ')).toEqual(message);
    }
  });

  it('take the connection flags before the command too', async () => {
    const ctx = recordingContext();
    expect(await runCli(['-s', 'nats://127.0.0.1:1', '--json', 'nodes'], ctx)).toBe(3);
    expect(JSON.parse(ctx.text())).toMatchObject({ error: { code: 'unavailable' } });
  });

  it('exit 3 when NATS cannot be reached', async () => {
    const ctx = recordingContext({ env: { ALLOT_NATS_SERVERS: 'nats://127.0.0.1:1' } });
    expect(await runCli(['nodes'], ctx)).toBe(3);
    expect(ctx.stderr[0]).toMatch(/^allot nodes: unavailable: cannot connect to NATS at nats:\/\/127.0.0.1:1/);
  });
});

describe('commands against scheduler endpoints on a real nats-server', () => {
  let server: NatsServerHandle;
  let fake: Awaited<ReturnType<typeof serveFakeScheduler>>;
  const env = () => ({ ALLOT_NATS_SERVERS: server.url });

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
    fake = await serveFakeScheduler(server.url, {
      nodes: () => ok({ nodes: [sampleNode('sim-large'), sampleNode('local')] }),
      usage: () => ok(SAMPLE_CLUSTER_USAGE),
      node: (r) => (r.nodeId === 'sim-large' ? ok(sampleNode('sim-large')) : err('not_found', `no node ${r.nodeId}`, { nodeId: r.nodeId })),
      place: (r) =>
        r.request.resources.memoryMiB > 100_000
          ? err('insufficient_capacity', '0/3 nodes are available: 3 Insufficient memory', {
              requested: r.request.resources.memoryMiB,
              largestFree: 65_536,
            })
          : ok({ nodeId: 'sim-large', allocation: sampleAllocation(r.request.requestId), cpuset: [1, 4], preempted: [], attempts: 1 }),
      release: (r) => ok({ ...sampleAllocation(r.placementRequestId), status: 'released' }),
      resize: (r) =>
        r.resources.vcpus > 32
          ? err('insufficient_capacity', 'cpu: 30 more vCPUs requested, 4 of 28 shared vCPUs free', {
              resourceType: 'cpu',
              requested: 30,
              free: 4,
            })
          : ok({ ...sampleAllocation('vm-9'), id: r.allocationId, granted: r.resources }),
      activate: (r) =>
        r.allocationId === 'sim-large:1'
          ? ok({ ...sampleAllocation('vm-8'), status: 'active' })
          : err('not_found', `no reservation ${r.allocationId}`, { allocationId: r.allocationId }),
      efficiency: () =>
        ok({
          metrics: [
            {
              resourceType: 'memory',
              allocationEfficiency: 0.5,
              utilizationEfficiency: 0.25,
              fragmentation: 0.125,
              referenceRequest: 4096,
              referenceRequestsThatFit: 12,
            },
            {
              resourceType: 'cpu',
              allocationEfficiency: 0.4,
              utilizationEfficiency: 0.2,
              fragmentation: 0,
              referenceRequest: 2,
              referenceRequestsThatFit: 12,
            },
          ],
          reference: { memoryMiB: 4096, vcpus: 2, source: 'seen' },
          nodes: 2,
        }),
      'quota.set': (r) => ok({ quota: r.quota, usage: { vms: 1, vcpus: 2, memoryMiB: 2048 } }),
      'quota.recount': (r) =>
        ok({ tenantId: r.tenantId, before: { vms: 0, vcpus: 0, memoryMiB: 0 }, after: { vms: 3, vcpus: 6, memoryMiB: 6144 } }),
      cordon: (r) => ok({ nodeId: r.nodeId, health: { status: 'healthy' }, cordoned: true, recoveryMs: 0, startedAt: NOW }),
      drain: (r) => ok({ nodeId: r.nodeId, cordoned: true, remaining: [sampleAllocation('vm-1', r.nodeId)], remainingCount: 2 }),
      move: (r) => ok(sampleMove(r.requestId, r.allocationId, 'held')),
      'move.confirm': (r) => ok({ ...sampleMove(r.requestId, r.allocationId, 'confirmed'), sourceReleased: true }),
      'move.abort': (r) => err('conflict', `move ${r.requestId} was confirmed`, { state: 'confirmed' }),
      moves: (r) =>
        ok({ moves: r.nodeId === 'local' ? [sampleMove('mv-1', 'sim-large:3', 'held')] : [], count: r.nodeId === 'local' ? 1 : 0 }),
      evacuate: (r) =>
        ok({
          nodeId: r.nodeId,
          requestId: r.requestId,
          moves: [sampleMove('evac-1', `${r.nodeId}:1`, 'held')],
          movesCount: 1,
          unplaced: [
            {
              requestId: 'vm-2',
              tenantId: 'demo',
              allocationId: `${r.nodeId}:2`,
              error: {
                code: 'insufficient_capacity',
                message: "0/2 nodes are available: 1 Insufficient memory, 1 is the allocation's own node.",
              },
            },
          ],
          unplacedCount: 1,
        }),
    });
  });
  afterAll(async () => {
    await fake.stop();
    await cleanupAll();
  });

  it('nodes prints the table, and --json the raw reply', async () => {
    const ctx = recordingContext({ env: env(), now: NOW });
    expect(await runCli(['nodes'], ctx)).toBe(0);
    expect(ctx.stdout[0]?.split('\n').map((l) => l.split(/\s+/)[0])).toEqual(['NODE', 'local', 'sim-large']);
    const json = recordingContext({ env: env() });
    expect(await runCli(['nodes', '--json', '-s', server.url], json)).toBe(0);
    expect(JSON.parse(json.text()).nodes.map((n: { nodeId: string }) => n.nodeId)).toEqual(['sim-large', 'local']);
  });

  it('place sends the request with its id and prints where it went; release names that id', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['place', '--tenant', 'demo', '--memory', '2048', '--vcpus', '2', '--request-id', 'vm-7'], ctx)).toBe(0);
    expect(ctx.text()).toContain('placed on sim-large after 1 attempt');
    expect(fake.requests.at(-1)).toMatchObject({
      verb: 'place',
      request: { request: { requestId: 'vm-7', tenantId: 'demo', resources: { memoryMiB: 2048, vcpus: 2 } } },
    });

    const release = recordingContext({ env: env() });
    expect(await runCli(['release', 'vm-7', '--tenant', 'demo'], release)).toBe(0);
    expect(release.text()).toContain('status:     released');
    expect(fake.requests.at(-1)).toMatchObject({ verb: 'release', request: { placementRequestId: 'vm-7', tenantId: 'demo' } });
  });

  it('activate names the allocation and prints it active; an unknown one exits 1', async () => {
    const held = recordingContext({ env: env() });
    expect(
      await runCli(['place', '--tenant', 'demo', '--memory', '1G', '--vcpus', '1', '--reserve', '90', '--request-id', 'vm-8'], held),
    ).toBe(0);
    expect(fake.requests.at(-1)).toMatchObject({
      verb: 'place',
      request: { request: { requestId: 'vm-8', reservation: { ttlMs: 90_000 } } },
    });
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['activate', 'sim-large:1', '--tenant', 'demo', '--request-id', 'act-1'], ctx)).toBe(0);
    expect(ctx.text()).toContain('activated');
    expect(ctx.text()).toContain('status:     active');
    expect(fake.requests.at(-1)).toMatchObject({ verb: 'activate', request: { requestId: 'act-1', allocationId: 'sim-large:1' } });
    const missing = recordingContext({ env: env() });
    expect(await runCli(['activate', 'sim-large:99', '--tenant', 'demo'], missing)).toBe(1);
    expect(missing.stderr[0]).toBe('allot activate: not_found: no reservation sim-large:99');
  });

  it('resize sends the new size to the tenant subject and prints the allocation; a refusal exits 1 with the figures', async () => {
    const ctx = recordingContext({ env: env() });
    expect(
      await runCli(['resize', 'sim-large:3', '--tenant', 'demo', '--memory-mib', '4096', '--vcpus', '4', '--request-id', 'rs-1'], ctx),
    ).toBe(0);
    expect(ctx.text()).toContain('resized');
    expect(fake.requests.at(-1)).toMatchObject({
      verb: 'resize',
      request: { requestId: 'rs-1', allocationId: 'sim-large:3', tenantId: 'demo', resources: { memoryMiB: 4096, vcpus: 4 } },
    });
    const refused = recordingContext({ env: env() });
    expect(await runCli(['resize', 'sim-large:3', '--tenant', 'demo', '--memory-mib', '4096', '--vcpus', '34'], refused)).toBe(1);
    expect(refused.stderr.join('\n')).toContain('insufficient_capacity');
  });

  it('move holds on the tenant subject and prints how to confirm; confirm names the move; evacuate and drain --evacuate print the plan and exit 1 with what was not placed', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['move', 'sim-large:3', '--tenant', 'demo', '--to', 'local', '--request-id', 'mv-1'], ctx)).toBe(0);
    expect(fake.requests.at(-1)).toMatchObject({
      verb: 'move',
      request: { requestId: 'mv-1', allocationId: 'sim-large:3', tenantId: 'demo', to: 'local' },
    });
    expect(ctx.text()).toContain('held      sim-large:3 on sim-large -> local (local:7 reserved)');
    expect(ctx.text()).toContain('allot move confirm sim-large:3 --tenant demo --request-id mv-1');
    const confirmed = recordingContext({ env: env() });
    expect(await runCli(['move', 'confirm', 'sim-large:3', '--tenant', 'demo', '--request-id', 'mv-1'], confirmed)).toBe(0);
    expect(fake.requests.at(-1)).toMatchObject({
      verb: 'move.confirm',
      request: { requestId: 'mv-1', allocationId: 'sim-large:3', tenantId: 'demo' },
    });
    expect(confirmed.text()).toContain('confirmed');
    const aborted = recordingContext({ env: env() });
    expect(await runCli(['move', 'abort', 'sim-large:3', '--tenant', 'demo', '--request-id', 'mv-1'], aborted)).toBe(1);
    expect(aborted.stderr.join('\n')).toContain('was confirmed');

    const listed = recordingContext({ env: env() });
    expect(await runCli(['move', 'list', '--node', 'local'], listed)).toBe(0);
    expect(fake.requests.at(-1)).toMatchObject({ verb: 'moves', request: { nodeId: 'local' } });
    expect(listed.text()).toContain('1 move in flight');
    expect(
      listed
        .text()
        .split('\n')
        .slice(1, 3)
        .map((l) => l.split(/\s+/).slice(0, 5).join(' ')),
    ).toEqual(['STATE ALLOCATION TENANT FROM TO', 'held sim-large:3 demo sim-large local']);

    const evacuated = recordingContext({ env: env() });
    expect(await runCli(['evacuate', 'sim-large', '--request-id', 'ev-1'], evacuated)).toBe(1);
    expect(evacuated.text()).toContain('evacuate sim-large (request ev-1): 1 move, 1 not placed');
    expect(evacuated.text()).toMatch(
      /^sim-large:2 +demo +0\/2 nodes are available: 1 Insufficient memory, 1 is the allocation's own node\.$/m,
    );
    const drained = recordingContext({ env: env() });
    expect(await runCli(['drain', 'sim-large', '--evacuate', '--request-id', 'dr-1'], drained)).toBe(1);
    expect(fake.requests.slice(-2).map((q) => q.verb)).toEqual(['drain', 'evacuate']);
    expect(fake.requests.at(-1)).toMatchObject({ request: { requestId: 'dr-1', nodeId: 'sim-large' } });
    expect(drained.text()).toContain('sim-large cordoned; 2 allocation(s) on it; evacuating');
    // Without --evacuate: what remains, one row per allocation, and how many the reply did not list.
    const listing = recordingContext({ env: env(), now: NOW });
    expect(await runCli(['drain', 'sim-large'], listing)).toBe(0);
    expect(listing.text().split('\n')).toEqual([
      'sim-large cordoned; 2 allocations still on it',
      '',
      'ID              TENANT  REQUEST  NODE       MEMORY  VCPUS  STATUS  AGE',
      'sim-large:vm-1  demo    vm-1     sim-large   2 GiB      2  active   0s',
      '... and 1 more allocations not shown (1 of 2 listed)',
    ]);
  });

  it('usage --efficiency prints the reference VM and, per resource, use, what fits and what is stranded', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['usage', '--efficiency'], ctx)).toBe(0);
    expect(ctx.text()).toContain('the shape placed most often');
    expect(ctx.text()).toMatch(
      /memory:\s+used 50\.0% of committed, 25\.0% of effective; 12 more reference VMs fit; 12\.5% of free memory stranded/,
    );
    const json = recordingContext({ env: env() });
    expect(await runCli(['usage', '--efficiency', '--json'], json)).toBe(0);
    expect(JSON.parse(json.text()).reference).toEqual({ memoryMiB: 4096, vcpus: 2, source: 'seen' });
  });

  it('a refused place exits 1 and prints the code, the reason and the figures', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['place', '--tenant', 'demo', '--memory', '200G', '--vcpus', '2'], ctx)).toBe(1);
    expect(ctx.stderr).toEqual([
      'allot place: insufficient_capacity: 0/3 nodes are available: 3 Insufficient memory',
      '  requested: 204800',
      '  largestFree: 65536',
    ]);
    const json = recordingContext({ env: env() });
    expect(await runCli(['place', '--json', '--tenant', 'demo', '--memory', '200G', '--vcpus', '2'], json)).toBe(1);
    expect(JSON.parse(json.text())).toMatchObject({ error: { code: 'insufficient_capacity' } });
  });

  it('usage shows the cluster, one node, and its cores; an unknown node exits 1', async () => {
    const cluster = recordingContext({ env: env() });
    expect(await runCli(['usage'], cluster)).toBe(0);
    expect(cluster.text()).toContain('3 (2 ready, 1 suspect, 0 lost, 1 cordoned)');
    const cores = recordingContext({ env: env() });
    expect(await runCli(['usage', '--node', 'sim-large', '--cores'], cores)).toBe(0);
    expect(cores.text().split('\n')).toHaveLength(9);
    const missing = recordingContext({ env: env() });
    expect(await runCli(['usage', '--node', 'nowhere'], missing)).toBe(1);
    expect(missing.stderr[0]).toBe('allot usage: not_found: no node nowhere');
  });

  it('quotas set sends the limits and rates given, and shows them beside the use', async () => {
    const ctx = recordingContext({ env: env() });
    expect(
      await runCli(
        ['quotas', 'set', 'acme', '--max-vms', '10', '--max-memory', '64G', '--place-rate', '100/hour', '--place-rate', '5/s'],
        ctx,
      ),
    ).toBe(0);
    expect(fake.requests.at(-1)).toMatchObject({
      verb: 'quota.set',
      request: {
        quota: {
          tenantId: 'acme',
          maxVms: 10,
          maxMemoryMiB: 65_536,
          placeRates: [
            { count: 100, per: 'hour' },
            { count: 5, per: 'second' },
          ],
          releaseRates: [],
        },
      },
    });
    expect(ctx.text()).toContain('vms:          1 of 10');
    expect(ctx.text()).toContain('place rate:   100/hour, 5/second');
  });

  it('quotas recount names the tenant and shows each counter before and after', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['quotas', 'recount', 'acme', '--request-id', 'recount-1'], ctx)).toBe(0);
    expect(fake.requests.at(-1)).toMatchObject({ verb: 'quota.recount', request: { requestId: 'recount-1', tenantId: 'acme' } });
    expect(ctx.text()).toContain('vms:    0 -> 3');
    expect(ctx.text()).toContain('memory: 0 MiB -> 6 GiB');
    const json = recordingContext({ env: env() });
    expect(await runCli(['quotas', 'recount', 'acme', '--json'], json)).toBe(0);
    expect(JSON.parse(json.text())).toMatchObject({ tenantId: 'acme', after: { vms: 3 } });
  });

  it('cordon names the node and a reason, and says it is cordoned', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['cordon', 'sim-small', '--reason', 'disk swap'], ctx)).toBe(0);
    expect(fake.requests.at(-1)).toMatchObject({ verb: 'cordon', request: { nodeId: 'sim-small', reason: 'disk swap' } });
    expect(ctx.text()).toContain('cordoned: yes');
  });

  it('a verb no coordinator serves exits 3 and says no coordinator is running', async () => {
    const ctx = recordingContext({ env: env() });
    expect(await runCli(['check', '--tenant', 'demo', '--vcpus', '1'], ctx)).toBe(3);
    expect(ctx.stderr[0]).toMatch(/^allot check: unavailable: no responders on allot\.sched\.demo\.check: no coordinator is running/);
  });
});
