import { readFileSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LedgerError } from './errors.ts';
import { FILE_MODE, LOCK_FILE } from './files.ts';

/** Who holds a ledger directory. `startTicks` tells a live holder from a new process that reused a dead holder's pid. */
interface LockOwner {
  pid: number;
  startTicks?: string;
}

/** An exclusive hold on a ledger directory; `release()` removes the lock file. */
export interface DirectoryLock {
  release(): Promise<void>;
}

/**
 * Takes the directory's lock file with O_EXCL. A lock left by a dead process (kill -9) is stale: it is removed and taken.
 * A lock held by this very process is not stale: a second `open()` of the same directory is refused like any other.
 * Known gap: two processes breaking the same stale lock at the same instant could both win; the agent is started by a
 * supervisor one at a time, and node offers no flock(2) that would close the gap.
 */
export async function lockDirectory(dir: string): Promise<DirectoryLock> {
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, ...startTicksOf(process.pid) };
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const handle = await open(path, 'wx', FILE_MODE);
      try {
        await handle.chmod(FILE_MODE);
        await handle.writeFile(JSON.stringify(me));
        await handle.sync();
      } finally {
        await handle.close();
      }
      return { release: () => unlink(path).catch(() => undefined) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = await readOwner(path);
    if (owner !== undefined && isAlive(owner)) {
      throw new LedgerError('locked', `ledger ${dir} is held by process ${owner.pid}`, { dir, pid: owner.pid });
    }
    // Stale (its process is gone) or unreadable (the holder died between create and write): remove and retry.
    await unlink(path).catch(() => undefined);
  }
  throw new LedgerError('locked', `ledger ${dir}: could not take the lock file`, { dir });
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && Number.isSafeInteger((parsed as LockOwner).pid)) return parsed as LockOwner;
  } catch {
    // An empty or half-written lock file: its writer died before finishing, so nobody holds it.
  }
  return undefined;
}

function isAlive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  const now = startTicksOf(owner.pid).startTicks;
  return owner.startTicks === undefined || now === undefined || now === owner.startTicks;
}

/** The process start time in clock ticks since boot (Linux /proc/<pid>/stat field 22); absent elsewhere. */
function startTicksOf(pid: number): { startTicks?: string } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = fields[19];
    return ticks === undefined ? {} : { startTicks: ticks };
  } catch {
    return {};
  }
}
