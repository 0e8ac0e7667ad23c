import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { runLedgerTool, type LedgerExport } from './ledger-tool.ts';

/*
 * A ledger written by the agent before the ledger had a FORMAT marker (format 1), checked in as bytes: an agent
 * upgraded in place must read it and serve what it held. The fixture's host: a simulated 16 cores / 65536 MiB; records
 * 1-4 (vm-a, vm-b exclusive, vm-c then its release) compacted into snap-4, then a reservation activated, vm-e in group
 * web, and a cordon.
 */
const FIXTURE = new URL('../test-fixtures/ledger-format-1/', import.meta.url);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDirWithFixture(): string {
  const stateDir = mkdtempSync(join(tmpdir(), 'allot-ledger-format-'));
  dirs.push(stateDir);
  cpSync(FIXTURE, join(stateDir, 'ledger'), { recursive: true });
  return stateDir;
}

async function tool(stateDir: string, ...argv: string[]): Promise<{ code: number; message?: string; out: string }> {
  let out = '';
  const env = {
    NODE_ENV: 'test',
    ALLOT_NODE_ID: 'fixture-hv1',
    ALLOT_STATE_DIR: stateDir,
    ALLOT_SIMULATED_HOST: 'cores=16,memoryMiB=65536',
  };
  const result = await runLedgerTool({ argv, env, log: pino({ level: 'silent' }), stdout: (text) => (out += text) });
  return { ...result, out };
}

describe('ledger format 1 (before the FORMAT marker)', () => {
  it('is read by this agent, which restores every allocation it held', { timeout: 30_000 }, async () => {
    const stateDir = stateDirWithFixture();
    const exported = await tool(stateDir, 'export');
    expect(exported.message).toBeUndefined();
    const state = (JSON.parse(exported.out) as LedgerExport).state;
    expect(state.nodeId).toBe('fixture-hv1');
    expect(state.live.map((a) => [a.requestId, a.status]).sort()).toEqual([
      ['hold-d', 'active'],
      ['vm-a', 'active'],
      ['vm-b', 'active'],
      ['vm-e', 'active'],
    ]);
    expect(state.live.find((a) => a.requestId === 'vm-b')?.cpu).toMatchObject({ mode: 'exclusive', vcpus: 4 });
    expect(state.live.find((a) => a.requestId === 'vm-e')?.request.group).toEqual({ name: 'web', maxPerNode: 2 });
    // vm-c was released (its retained record ages out after the retention window, so only its absence is stable).
    expect(state.live.map((a) => a.requestId)).not.toContain('vm-c');
    expect(state.cordon).toEqual({ cordoned: true, reason: 'fixture maintenance' });
    // Opening it recorded the marker: the ledger is now format 1 with its FORMAT file.
    expect(JSON.parse(readFileSync(join(stateDir, 'ledger', 'FORMAT'), 'utf8'))).toEqual({ format: 1 });
  });

  it('is refused, with a clear error and untouched, when marked by a newer format (a downgrade)', { timeout: 30_000 }, async () => {
    const stateDir = stateDirWithFixture();
    writeFileSync(join(stateDir, 'ledger', 'FORMAT'), JSON.stringify({ format: 2 }));
    const verified = await tool(stateDir, 'verify');
    expect(verified.code).toBe(1);
    expect(verified.message).toMatch(/format 2, written by a newer allot-agent; this one reads formats up to 1/);
  });
});
