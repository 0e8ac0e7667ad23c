import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadStateIdentity } from './node-lease.ts';
import { secureStateDir } from './state-dir.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function modeOf(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

describe("the agent's state directory", () => {
  it('is created 0700 with its node identity 0600 even under a permissive umask', async () => {
    const root = mkdtempSync(join(tmpdir(), 'allot-state-'));
    dirs.push(root);
    const stateDir = join(root, 'var', 'agent');
    const before = process.umask(0);
    try {
      await secureStateDir(stateDir);
      await loadStateIdentity(stateDir);
    } finally {
      process.umask(before);
    }
    expect(modeOf(stateDir)).toBe('700');
    expect(modeOf(join(stateDir, 'node-identity'))).toBe('600');
  });

  it('is tightened at start when an older agent left it readable by others', async () => {
    const root = mkdtempSync(join(tmpdir(), 'allot-state-'));
    dirs.push(root);
    const stateDir = join(root, 'agent');
    mkdirSync(stateDir, { mode: 0o755 });
    chmodSync(stateDir, 0o755);
    writeFileSync(join(stateDir, 'node-identity'), '0b6f7ad2-51a5-4c5e-9d1c-0d3c1a1e2f3a\n', { mode: 0o644 });
    chmodSync(join(stateDir, 'node-identity'), 0o644);
    await secureStateDir(stateDir);
    expect(modeOf(stateDir)).toBe('700');
    expect(modeOf(join(stateDir, 'node-identity'))).toBe('600');
  });
});
