import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FORMAT_FILE, LEDGER_FORMAT, LedgerError, openLedger, seedLedger } from './index.ts';
import { tempDir } from './testing/temp-dir.ts';

const cleanups: Array<() => void> = [];
function freshDir(): string {
  const t = tempDir();
  cleanups.push(t.remove);
  return t.dir;
}
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function rejection(p: Promise<unknown>): Promise<LedgerError> {
  const e = await p.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(e).toBeInstanceOf(LedgerError);
  return e as LedgerError;
}

describe('ledger format', () => {
  it('marks a new ledger with its format', async () => {
    const dir = freshDir();
    const { ledger } = await openLedger(dir);
    await ledger.close();
    expect(JSON.parse(readFileSync(join(dir, FORMAT_FILE), 'utf8'))).toEqual({ format: LEDGER_FORMAT });
  });

  it('reads a ledger written before the marker existed and marks it', async () => {
    const dir = freshDir();
    const first = await openLedger<{ n: number }>(dir);
    await first.ledger.append({ n: 1 });
    await first.ledger.close();
    unlinkSync(join(dir, FORMAT_FILE)); // as an agent of the previous release left it
    const reopened = await openLedger<{ n: number }>(dir);
    expect(reopened.records.map((r) => r.record)).toEqual([{ n: 1 }]);
    await reopened.ledger.close();
    expect(JSON.parse(readFileSync(join(dir, FORMAT_FILE), 'utf8'))).toEqual({ format: 1 });
  });

  it('refuses a ledger of a newer format (a downgrade) and leaves it untouched', async () => {
    const dir = freshDir();
    const first = await openLedger<{ n: number }>(dir);
    await first.ledger.append({ n: 1 });
    await first.ledger.close();
    writeFileSync(join(dir, FORMAT_FILE), JSON.stringify({ format: LEDGER_FORMAT + 1 }));
    const e = await rejection(openLedger(dir));
    expect(e.code).toBe('unsupported_format');
    expect(e.message).toContain(`format ${LEDGER_FORMAT + 1}`);
    expect(e.details).toMatchObject({ format: LEDGER_FORMAT + 1, supported: LEDGER_FORMAT });
    // The lock was released and nothing was rewritten: the newer agent can still open it.
    writeFileSync(join(dir, FORMAT_FILE), JSON.stringify({ format: LEDGER_FORMAT }));
    const reopened = await openLedger<{ n: number }>(dir);
    expect(reopened.records.map((r) => r.record)).toEqual([{ n: 1 }]);
    await reopened.ledger.close();
  });

  it('refuses a marker it cannot read instead of guessing', async () => {
    const dir = freshDir();
    await (await openLedger(dir)).ledger.close();
    writeFileSync(join(dir, FORMAT_FILE), 'not json');
    expect((await rejection(openLedger(dir))).code).toBe('corrupt');
  });
});

describe('seedLedger (a restore onto a new disk)', () => {
  it('starts the ledger at the seeded state: the snapshot comes back and appends continue after it', async () => {
    const dir = freshDir();
    await seedLedger(dir, 41, { hosts: ['a'] });
    const opened = await openLedger<{ n: number }, { hosts: string[] }>(dir);
    expect(opened.snapshot).toEqual({ seq: 41, state: { hosts: ['a'] } });
    expect(opened.records).toEqual([]);
    expect(await opened.ledger.append({ n: 42 })).toBe(42);
    await opened.ledger.close();
    const again = await openLedger<{ n: number }>(dir);
    expect(again.records).toEqual([{ seq: 42, record: { n: 42 } }]);
    await again.ledger.close();
  });

  it('seeds a directory an agent opened but never wrote to', async () => {
    const dir = freshDir();
    await (await openLedger(dir)).ledger.close();
    await seedLedger(dir, 5, { s: 1 });
    const opened = await openLedger(dir);
    expect(opened.snapshot?.seq).toBe(5);
    await opened.ledger.close();
  });

  it('refuses a directory that holds records, and changes nothing', async () => {
    const dir = freshDir();
    const first = await openLedger<{ n: number }>(dir);
    await first.ledger.append({ n: 1 });
    await first.ledger.close();
    const e = await rejection(seedLedger(dir, 9, { s: 1 }));
    expect(e.code).toBe('not_empty');
    const opened = await openLedger<{ n: number }>(dir);
    expect(opened.snapshot).toBeUndefined();
    expect(opened.records.map((r) => r.record)).toEqual([{ n: 1 }]);
    await opened.ledger.close();
  });

  it('refuses while an agent holds the directory', async () => {
    const dir = freshDir();
    const open = await openLedger(dir);
    expect((await rejection(seedLedger(dir, 3, {}))).code).toBe('locked');
    await open.ledger.close();
  });
});
