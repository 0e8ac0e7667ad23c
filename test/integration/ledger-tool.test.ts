import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Allocation, Result } from '@allot/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AGENT_MAIN,
  agentRequest,
  cleanupAll,
  simulatedHostEnv,
  startAgent,
  startNatsServer,
  tempDir,
  type NatsServerHandle,
} from '../harness/index.ts';

/*
 * `allot-agent ledger verify | export | import | compact` against a ledger written by the real agent process: a backup
 * taken from a stopped agent and restored onto a new (empty) state directory serves the same allocations, keeps
 * answering retries of their request ids, and never reuses an allocation id.
 */
const HOST = { cores: 16, memoryMiB: 65_536 };

let server: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
});

afterAll(async () => {
  await nc?.close();
  await cleanupAll();
});

function value<T>(result: Result<T>, what: string): T {
  if (!result.ok) throw new Error(`${what}: ${result.error.code}: ${result.error.message}`);
  return result.value;
}

/** Runs the tool as an operator would, with the agent's configuration in the environment. */
function ledgerTool(nodeId: string, stateDir: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [AGENT_MAIN, 'ledger', ...args], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      ALLOT_NODE_ID: nodeId,
      ALLOT_STATE_DIR: stateDir,
      ALLOT_SIMULATED_HOST: simulatedHostEnv(HOST),
      ALLOT_NATS_SERVERS: server.url,
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

function summaryOf(run: { code: number | null; stdout: string; stderr: string }): Record<string, unknown> {
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

async function liveAllocations(nodeId: string): Promise<Allocation[]> {
  const page = value(await agentRequest(nc, nodeId, 'allocations', { status: 'live' }), 'allocations');
  return [...page.allocations].sort((a, b) => a.id.localeCompare(b.id));
}

describe('allot-agent ledger', () => {
  it('verifies, exports, and restores a host onto a new disk that serves the same allocations', async () => {
    const nodeId = 'ledger-tool-1';
    const stateDir = await tempDir('ledger-tool-a');
    const agent = await startAgent({ natsUrl: server.url, nodeId, stateDir, host: HOST });
    const made: Allocation[] = [];
    for (let i = 1; i <= 3; i++) {
      made.push(
        value(
          await agentRequest(nc, nodeId, 'allocate', {
            requestId: `vm-${i}`,
            tenantId: 't1',
            resources: { memoryMiB: 1024 * i, vcpus: i },
          }),
          `allocate vm-${i}`,
        ),
      );
    }
    value(
      await agentRequest(nc, nodeId, 'reserve', {
        requestId: 'hold-1',
        tenantId: 't2',
        resources: { memoryMiB: 512, vcpus: 1 },
        reservation: { ttlMs: 3_600_000 },
      }),
      'reserve',
    );
    value(await agentRequest(nc, nodeId, 'release', { requestId: 'rel-vm-2', allocationId: made[1]?.id }), 'release vm-2');
    const before = await liveAllocations(nodeId);
    expect(before.map((a) => a.requestId).sort()).toEqual(['hold-1', 'vm-1', 'vm-3']);

    // While the agent runs, the tool is refused by the ledger's lock and changes nothing.
    const locked = ledgerTool(nodeId, stateDir, 'verify');
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/locked|held/i);

    expect(await agent.stop('SIGTERM')).toBe(0);
    const verified = summaryOf(ledgerTool(nodeId, stateDir, 'verify'));
    expect(verified).toMatchObject({ nodeId, ledgerFormat: 1, allocations: { live: 3, reserved: 1, released: 1 } });

    const exportFile = join(await tempDir('ledger-tool-export'), 'hv.json');
    expect(summaryOf(ledgerTool(nodeId, stateDir, 'verify')).seq).toBe(verified.seq); // verify wrote nothing
    const exported = ledgerTool(nodeId, stateDir, 'export', '--out', exportFile);
    expect(exported.code).toBe(0);
    const backup = JSON.parse(readFileSync(exportFile, 'utf8')) as { kind: string; nodeId: string; state: { seq: number } };
    expect(backup).toMatchObject({ kind: 'allot-ledger-export', nodeId, state: { seq: verified.seq } });

    // The new disk: an empty state directory, restored from the export, then the agent started on it.
    const newDisk = await tempDir('ledger-tool-b');
    const imported = summaryOf(ledgerTool(nodeId, newDisk, 'import', '--from', exportFile));
    expect(imported).toMatchObject({ seq: verified.seq, snapshotSeq: verified.seq, allocations: { live: 3, reserved: 1, released: 1 } });
    const restored = await startAgent({ natsUrl: server.url, nodeId, stateDir: newDisk, host: HOST });
    expect(await liveAllocations(nodeId)).toEqual(before);
    // A retry of an acknowledged allocate answers the same allocation; a released one is not allocated again.
    expect(
      value(
        await agentRequest(nc, nodeId, 'allocate', { requestId: 'vm-1', tenantId: 't1', resources: { memoryMiB: 1024, vcpus: 1 } }),
        'retry vm-1',
      ).id,
    ).toBe(made[0]?.id);
    expect(
      value(
        await agentRequest(nc, nodeId, 'allocate', { requestId: 'vm-2', tenantId: 't1', resources: { memoryMiB: 2048, vcpus: 2 } }),
        'retry vm-2',
      ),
    ).toMatchObject({ id: made[1]?.id, status: 'released' });
    // New allocations continue the id counter: no id of the old disk is reused.
    const next = value(
      await agentRequest(nc, nodeId, 'allocate', { requestId: 'vm-4', tenantId: 't1', resources: { memoryMiB: 1024, vcpus: 1 } }),
      'allocate vm-4',
    );
    expect(made.map((a) => a.id)).not.toContain(next.id);
    expect(await restored.stop('SIGTERM')).toBe(0);

    // Importing over a ledger that holds records is refused and changes nothing.
    const again = ledgerTool(nodeId, newDisk, 'import', '--from', exportFile);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds/);
    expect(summaryOf(ledgerTool(nodeId, newDisk, 'verify')).allocations).toMatchObject({ live: 4 });
  });

  it('refuses an export of another node, and a file that is not an export', async () => {
    const stateDir = await tempDir('ledger-tool-c');
    const source = await tempDir('ledger-tool-d');
    const agent = await startAgent({ natsUrl: server.url, nodeId: 'ledger-tool-2', stateDir: source, host: HOST });
    value(
      await agentRequest(nc, 'ledger-tool-2', 'allocate', { requestId: 'x', tenantId: 't1', resources: { memoryMiB: 256, vcpus: 1 } }),
      'allocate',
    );
    expect(await agent.stop('SIGTERM')).toBe(0);
    const file = join(stateDir, '..', 'other-node.json');
    expect(ledgerTool('ledger-tool-2', source, 'export', '--out', file).code).toBe(0);

    const wrongNode = ledgerTool('ledger-tool-3', stateDir, 'import', '--from', file);
    expect(wrongNode.code).toBe(1);
    expect(wrongNode.stderr).toMatch(/export of node ledger-tool-2/);
    const notAnExport = join(stateDir, '..', 'junk.json');
    writeFileSync(notAnExport, JSON.stringify({ hello: 'world' }));
    expect(ledgerTool('ledger-tool-3', stateDir, 'import', '--from', notAnExport).stderr).toMatch(/not an allot ledger export/);
    expect(existsSync(join(stateDir, 'ledger', 'snap-00000000000000000002.bin'))).toBe(false);
  });

  it("compacts a stopped agent's ledger into one snapshot that restores the same host", async () => {
    const nodeId = 'ledger-tool-4';
    const stateDir = await tempDir('ledger-tool-e');
    const agent = await startAgent({ natsUrl: server.url, nodeId, stateDir, host: HOST });
    for (let i = 0; i < 5; i++)
      value(
        await agentRequest(nc, nodeId, 'allocate', { requestId: `c-${i}`, tenantId: 't1', resources: { memoryMiB: 256, vcpus: 1 } }),
        'allocate',
      );
    expect(await agent.stop('SIGTERM')).toBe(0);
    const before = summaryOf(ledgerTool(nodeId, stateDir, 'verify'));
    expect(before.snapshotSeq).toBe(0);
    const compacted = summaryOf(ledgerTool(nodeId, stateDir, 'compact'));
    expect(compacted.snapshotSeq).toBe(before.seq);
    const after = summaryOf(ledgerTool(nodeId, stateDir, 'verify'));
    expect(after).toMatchObject({ seq: before.seq, snapshotSeq: before.seq, recordsReplayed: 0, allocations: before.allocations });
  });

  it('prints its usage for an unknown command', () => {
    const run = ledgerTool('n', '/nonexistent', 'frobnicate');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/usage: allot-agent ledger/);
  });
});
