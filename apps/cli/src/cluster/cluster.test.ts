import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort, NATS_SERVER_BIN, waitFor } from '../../../../test/harness/index.ts';
import { recordingContext } from '../testing/recording-context.ts';
import { agentConfig, childEnv, clusterLayout, parseClusterFile } from './config.ts';
import { runCluster, type ClusterOptions } from './run-cluster.ts';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const REPO_CLUSTER_FILE = here('../../../../infra/local/cluster.json');

describe('the local cluster file', () => {
  it('in the repository names three agents with zones and two simulated hosts', () => {
    const file = parseClusterFile(REPO_CLUSTER_FILE, readFileSync(REPO_CLUSTER_FILE, 'utf8'));
    if (!file.ok) throw new Error(file.message);
    expect(file.value.agents.map((a) => [a.nodeId, (a.labels as Record<string, string>).zone, 'simulatedHost' in a])).toEqual([
      ['local', 'z1', false],
      ['sim-large', 'z2', true],
      ['sim-small', 'z2', true],
    ]);
  });

  it('gives each agent its own state directory and the cluster NATS', () => {
    const layout = clusterLayout('/tmp/c');
    expect(agentConfig({ nodeId: 'sim-small', labels: { zone: 'z2' } }, 'nats://127.0.0.1:4333', layout)).toEqual({
      nodeId: 'sim-small',
      labels: { zone: 'z2' },
      nats: { servers: ['nats://127.0.0.1:4333'], name: 'allot-agent-sim-small' },
      stateDir: '/tmp/c/sim-small',
    });
  });

  it('refuses entries that set what the cluster owns, duplicates and non-JSON, naming the file', () => {
    expect(parseClusterFile('c.json', '{"agents":[{"nodeId":"a","stateDir":"/x"}]}')).toEqual({
      ok: false,
      message: 'c.json: agents.0: nats and stateDir are set by the cluster; leave them out',
    });
    expect(parseClusterFile('c.json', '{"agents":[{"nodeId":"a"},{"nodeId":"a"}]}')).toEqual({
      ok: false,
      message: 'c.json: agents: node ids must be unique',
    });
    expect(parseClusterFile('c.json', 'nope').ok).toBe(false);
  });

  it("keeps the operator's ALLOT_* variables away from the children, except the log level", () => {
    expect(childEnv({ PATH: '/bin', ALLOT_NATS_SERVERS: 'nats://elsewhere', ALLOT_NODE_ID: 'x', ALLOT_LOG_LEVEL: 'debug' })).toEqual({
      PATH: '/bin',
      ALLOT_LOG_LEVEL: 'debug',
    });
  });
});

async function options(cwd: string, overrides: Partial<ClusterOptions> = {}): Promise<ClusterOptions> {
  const file = join(cwd, 'cluster.json');
  writeFileSync(file, JSON.stringify({ agents: [{ nodeId: 'n1' }, { nodeId: 'n2' }] }));
  return {
    port: await freePort(),
    root: join(cwd, '.allot/cluster'),
    configFile: file,
    readyTimeoutMs: 30_000,
    node: process.execPath,
    agentMain: here('../testing/fake-agent.ts'),
    coordinatorMain: here('../testing/fake-coordinator.ts'),
    natsServer: NATS_SERVER_BIN,
    allotCommand: './allot',
    ...overrides,
  };
}

function tempCwd(): string {
  return mkdtempSync(join(tmpdir(), 'allot-cluster-'));
}

describe('allot cluster, with stand-in agent and coordinator processes', () => {
  it('fails clearly, starting nothing, when the port is taken', async () => {
    const cwd = tempCwd();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    const ctx = recordingContext({ cwd });
    expect(await runCluster(await options(cwd, { port }), ctx)).toBe(1);
    expect(ctx.stderr[0]).toBe(
      `allot cluster: port ${port} on 127.0.0.1 is already in use (another nats-server or allot cluster?); choose another with --port`,
    );
    taken.close();
  });

  it('says the agent is not built yet when its entry point is missing', async () => {
    const cwd = tempCwd();
    const ctx = recordingContext({ cwd });
    expect(await runCluster(await options(cwd, { agentMain: join(cwd, 'apps/agent/src/main.ts') }), ctx)).toBe(1);
    expect(ctx.stderr[0]).toBe(
      'allot cluster: apps/agent/src/main.ts does not exist: the agent is not built yet, so there is no cluster to start.',
    );
  });

  it('comes up, prints the nodes and what to try, and stops on Ctrl-C in order: coordinator, agents, nats-server', async () => {
    const cwd = tempCwd();
    const order = join(cwd, 'order');
    const ctx = recordingContext({ cwd, env: { PATH: process.env['PATH'] ?? '', FAKE_NODES: 'n1,n2', FAKE_STOP_ORDER_FILE: order } });
    const running = runCluster(await options(cwd), ctx);
    await waitFor(() => ctx.text().includes('The cluster is up'), { timeoutMs: 30_000, message: 'the cluster to be up' });
    expect(ctx.text()).toMatch(/NODE +STATE[\s\S]*n1 +ready[\s\S]*n2 +ready/);
    ctx.interrupt();
    expect(await running).toBe(0);
    const stopped = readFileSync(order, 'utf8').trim().split('\n');
    expect(stopped[0]).toBe('coordinator');
    expect(stopped.slice(1).sort()).toEqual(['n1', 'n2']);
    expect(ctx.stdout.filter((l) => l.startsWith('stopped ')).at(-1)).toBe('stopped nats-server');
    expect(readFileSync(join(cwd, '.allot/cluster/logs/n1.log'), 'utf8')).toContain('"msg":"agent ready"');
  });

  it('reports a child that dies, with its log, and stops the rest with a non-zero exit', async () => {
    const cwd = tempCwd();
    const ctx = recordingContext({ cwd, env: { PATH: process.env['PATH'] ?? '', FAKE_NODES: 'n1,n2', FAKE_DIE: 'n2' } });
    expect(await runCluster(await options(cwd), ctx)).toBe(1);
    expect(ctx.stderr[0]).toBe(
      'allot cluster: n2 exited with code 7 unexpectedly; stopping the cluster. Last lines of .allot/cluster/logs/n2.log:',
    );
    expect(ctx.stderr.join('\n')).toContain('fake agent dying on purpose');
    expect(ctx.stdout).toContain('stopped nats-server');
  });
});
