import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openLedger } from './index.ts';
import { tempDir } from './testing/temp-dir.ts';
import { seededRandom } from './testing/seeded-random.ts';

const CHILD = fileURLToPath(new URL('./testing/crash-child.ts', import.meta.url));

/** Runs the child until it has acknowledged `killAfter` records, then kill -9; returns the acknowledged seqs. */
function runAndKill(dir: string, killAfter: number, inFlight: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(inFlight)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let pending = '';
    let stderr = '';
    let killed = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (/^\d+$/.test(line)) acked.push(Number(line));
      if (!killed && acked.length >= killAfter) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // Reopen only once the child is reaped: a zombie still answers kill(pid, 0) and would hold the lock.
    child.on('exit', (_code, signal) =>
      signal === 'SIGKILL' ? resolve(acked) : reject(new Error(`child exited without being killed: ${stderr}`)),
    );
  });
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('crash safety', () => {
  it.each([1, 7, 42])(
    'keeps every acknowledged record across kill -9 at random moments (seed %i)',
    async (seed) => {
      const random = seededRandom(seed); // every run kills at the same (acknowledgement-count) moments
      const t = tempDir();
      cleanups.push(t.remove);
      let everAcked = 0;
      for (let round = 0; round < 5; round += 1) {
        const killAfter = Math.floor(random() * 1500);
        const inFlight = 1 + Math.floor(random() * 64);
        const acked = await runAndKill(t.dir, killAfter, inFlight);
        const maxAcked = Math.max(everAcked, ...acked);

        const { ledger, snapshot, records } = await openLedger<{ n: number }, { upto: number }>(t.dir);
        const base = snapshot?.seq ?? 0;
        if (snapshot) expect(snapshot.state.upto).toBe(snapshot.seq);
        // A gap-free run of records right after the snapshot, each with the seq it was given when appended.
        expect(records.map((r) => r.seq)).toEqual(Array.from({ length: records.length }, (_, i) => base + 1 + i));
        expect(records.every((r) => r.record.n === r.seq)).toBe(true);
        // Every acknowledged seq is still there (in the snapshot or after it).
        expect(ledger.lastSeq).toBeGreaterThanOrEqual(maxAcked);
        everAcked = maxAcked;
        await ledger.close();
      }
    },
    120_000,
  );
});
