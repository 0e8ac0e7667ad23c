import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLedger } from './index.ts';
import { tempDir } from './testing/temp-dir.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function modeOf(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

/** Runs with a permissive umask, as a careless unit file or shell would set it, restoring it after. */
async function withUmask<T>(umask: number, run: () => Promise<T>): Promise<T> {
  const before = process.umask(umask);
  try {
    return await run();
  } finally {
    process.umask(before);
  }
}

describe('ledger file permissions', () => {
  it('creates its directory 0700 and its segments, snapshots and lock 0600 whatever the umask', async () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const dir = join(t.dir, 'ledger');
    await withUmask(0, async () => {
      const { ledger } = await openLedger<{ n: number }, { upto: number }>(dir);
      for (let n = 1; n <= 20; n += 1) await ledger.append({ n });
      await ledger.compact({ upto: 20 });
      await ledger.append({ n: 21 });
      expect(readdirSync(dir).some((name) => name.startsWith('snap-'))).toBe(true);
      expect(readdirSync(dir)).toContain('LOCK');
      for (const name of readdirSync(dir)) expect(`${name} ${modeOf(join(dir, name))}`).toBe(`${name} 600`);
      await ledger.close();
    });
    expect(modeOf(dir)).toBe('700');
  });

  it('tightens a directory and files left readable by others when it opens them', async () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const dir = join(t.dir, 'ledger');
    await withUmask(0o022, async () => {
      mkdirSync(dir, { mode: 0o755 });
      const { ledger } = await openLedger<{ n: number }>(dir);
      await ledger.append({ n: 1 });
      await ledger.close();
    });
    chmodSync(dir, 0o755);
    for (const name of readdirSync(dir)) chmodSync(join(dir, name), 0o644);
    const { ledger } = await openLedger<{ n: number }>(dir);
    expect(modeOf(dir)).toBe('700');
    for (const name of readdirSync(dir)) expect(`${name} ${modeOf(join(dir, name))}`).toBe(`${name} 600`);
    await ledger.close();
  });
});
