import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, freePort, spawnProcess, tempDir, type ProcessHandle } from '../harness/index.ts';

/*
 * The allot CLI against a real local cluster: `allot cluster` (nats-server, the coordinator, three agents) started in
 * a temp directory, then `allot` commands run as processes, as an operator would, checking their output and exit codes.
 */

const MAIN = fileURLToPath(new URL('../../apps/cli/src/main.ts', import.meta.url));

let cluster: ProcessHandle;
let server: string;

function allot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args, '-s', server], { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  const cwd = await tempDir('cli-cluster');
  const port = await freePort();
  server = `nats://127.0.0.1:${port}`;
  cluster = spawnProcess({ name: 'allot cluster', script: MAIN, args: ['cluster', '--port', String(port)], cwd });
  await cluster.waitForLine((line) => typeof line === 'string' && line.startsWith('The cluster is up'), 110_000);
});

afterAll(async () => {
  // SIGINT: the cluster stops its children in order; the harness's cleanup kills whatever a failure left behind.
  await cluster?.stop('SIGINT', 60_000);
  await cleanupAll();
});

describe('the allot CLI on a local cluster', () => {
  it('nodes --json lists the three nodes, all ready', async () => {
    const r = await allot('nodes', '--json');
    expect(r.code).toBe(0);
    const nodes = (JSON.parse(r.stdout) as { nodes: { nodeId: string; liveness: string }[] }).nodes;
    expect(nodes.map((n) => [n.nodeId, n.liveness]).sort()).toEqual([
      ['local', 'ready'],
      ['sim-large', 'ready'],
      ['sim-small', 'ready'],
    ]);
  });

  it('places a VM and releases it, both exiting 0, and the events show the placement', async () => {
    const placed = await allot(
      'place',
      '--tenant',
      'demo',
      '--memory',
      '2048',
      '--vcpus',
      '2',
      '--node',
      'sim-large',
      '--request-id',
      'cli-it-1',
    );
    expect(placed.stderr).toBe('');
    expect(placed.code).toBe(0);
    expect(placed.stdout).toContain('placed on sim-large');

    const events = await allot('events', '--node', 'sim-large', '--kind', 'allocated');
    expect(events.code).toBe(0);
    expect(events.stdout).toMatch(/sim-large +allocated +tenant=demo request=cli-it-1/);

    const released = await allot('release', 'cli-it-1', '--tenant', 'demo');
    expect(released.code).toBe(0);
    expect(released.stdout).toContain('released');
  });

  it('a place that fits nowhere exits 1 with the code and the reason', async () => {
    const r = await allot('place', '--tenant', 'demo', '--memory', '4T', '--vcpus', '2');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^allot place: insufficient_capacity: /);
  });

  it('cordon makes nodes show the node cordoned, and uncordon undoes it', async () => {
    expect((await allot('cordon', 'sim-small', '--reason', 'integration test')).code).toBe(0);
    const nodes = await allot('nodes');
    expect(nodes.stdout).toMatch(/sim-small +\S+ +\S+ +cordoned/);
    expect((await allot('uncordon', 'sim-small')).code).toBe(0);
  });

  it("health prints the cluster's health as the coordinator sees it", async () => {
    const r = await allot('health', '--json');
    expect(r.code).toBe(0);
    // The 'local' node probes this machine, which may be busy: any status but stopped (the coordinator runs).
    expect(['healthy', 'degraded', 'unhealthy']).toContain((JSON.parse(r.stdout) as { status: string }).status);
  });

  it("limits set raises a node's system reserve through the coordinator and its agent, and placement respects it", async () => {
    const memoryOf = async () => {
      const r = await allot('nodes', '--json');
      const node = (
        JSON.parse(r.stdout) as { nodes: { nodeId: string; snapshot: { memory: { systemReserve: number; effectiveCapacity: number } } }[] }
      ).nodes.find((n) => n.nodeId === 'sim-small');
      return node?.snapshot.memory;
    };
    const until = async (reserve: number) => {
      for (let i = 0; i < 100 && (await memoryOf())?.systemReserve !== reserve; i++) await new Promise((r) => setTimeout(r, 200));
      expect((await memoryOf())?.systemReserve).toBe(reserve);
    };
    const before = await allot('limits', 'get', 'sim-small', '--json');
    expect(before.code).toBe(0);
    expect((JSON.parse(before.stdout) as { memory: { capacity: number; systemReserve: number } }).memory).toMatchObject({
      capacity: 32_768,
      systemReserve: 2_048,
    });

    // 32 GiB with 28 GiB reserved leaves 4 GiB: a 6 GiB VM that fitted no longer does.
    const raised = await allot('limits', 'set', 'sim-small', '--system-reserve-mib', '28672');
    expect(raised.stderr).toBe('');
    expect(raised.code).toBe(0);
    expect(raised.stdout).toMatch(/^memory +MiB +32768 +28672 +1 +4096 /m);
    await until(28_672);
    const refused = await allot(
      'place',
      '--tenant',
      'demo',
      '--memory',
      '6G',
      '--vcpus',
      '1',
      '--node',
      'sim-small',
      '--request-id',
      'cli-limits-1',
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^allot place: insufficient_capacity: /);

    // The reserve as it was: the same VM fits.
    expect((await allot('limits', 'set', 'sim-small', '--system-reserve-mib', '2048')).code).toBe(0);
    await until(2_048);
    const placed = await allot(
      'place',
      '--tenant',
      'demo',
      '--memory',
      '6G',
      '--vcpus',
      '1',
      '--node',
      'sim-small',
      '--request-id',
      'cli-limits-2',
    );
    expect(placed.code).toBe(0);
    expect(placed.stdout).toContain('placed on sim-small');
    // allocations asks every agent: the VM is listed where it was placed.
    const listed = await allot('allocations', '--tenant', 'demo', '--json');
    expect(listed.code).toBe(0);
    expect(
      (JSON.parse(listed.stdout) as { allocations: { requestId: string; nodeId: string }[] }).allocations.map((a) => [
        a.requestId,
        a.nodeId,
      ]),
    ).toEqual([['cli-limits-2', 'sim-small']]);
    expect((await allot('release', 'cli-limits-2', '--tenant', 'demo')).code).toBe(0);
  });
});
