import { chmod, lstat, mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Seq numbers in file names are zero-padded to 20 digits so that names sort in seq order. */
const SEQ_DIGITS = 20;
const SEGMENT = /^log-(\d{20})\.bin$/;
const SNAPSHOT = /^snap-(\d{20})\.bin$/;
export const TMP_SUFFIX = '.tmp';
export const LOCK_FILE = 'LOCK';

export function segmentName(firstSeq: number): string {
  return `log-${String(firstSeq).padStart(SEQ_DIGITS, '0')}.bin`;
}

export function snapshotName(seq: number): string {
  return `snap-${String(seq).padStart(SEQ_DIGITS, '0')}.bin`;
}

/** A file of the ledger directory named by a seq: a segment's first seq or a snapshot's seq. */
export interface SeqFile {
  readonly name: string;
  readonly seq: number;
}

export interface LedgerFiles {
  /** Ascending by first seq. */
  readonly segments: SeqFile[];
  /** Ascending by seq. */
  readonly snapshots: SeqFile[];
  /** Leftovers of a snapshot write that crashed before its rename. */
  readonly temporaries: string[];
}

export async function listLedgerFiles(dir: string): Promise<LedgerFiles> {
  const segments: SeqFile[] = [];
  const snapshots: SeqFile[] = [];
  const temporaries: string[] = [];
  for (const name of await readdir(dir)) {
    const segment = SEGMENT.exec(name);
    const snapshot = SNAPSHOT.exec(name);
    if (segment?.[1] !== undefined) segments.push({ name, seq: Number(segment[1]) });
    else if (snapshot?.[1] !== undefined) snapshots.push({ name, seq: Number(snapshot[1]) });
    else if (name.endsWith(TMP_SUFFIX)) temporaries.push(name);
  }
  const bySeq = (a: SeqFile, b: SeqFile): number => a.seq - b.seq;
  return { segments: segments.sort(bySeq), snapshots: snapshots.sort(bySeq), temporaries };
}

/**
 * Who may read the ledger: its owner only. The records name tenants, placements and their metadata; nothing else on the
 * host needs them. Set explicitly (open's mode, then chmod) so that a permissive umask cannot widen them.
 */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/** Creates `dir` (and its parents) if missing, then sets it to DIR_MODE and every file in it to FILE_MODE. */
export async function prepareDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
  await chmod(dir, DIR_MODE);
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const stats = await lstat(path);
    // Files from before this rule (created 0644) are tightened; symlinks and subdirectories are not ours to change.
    if (stats.isFile() && (stats.mode & 0o777) !== FILE_MODE) await chmod(path, FILE_MODE);
  }
}

/** Makes creations, renames and deletions in `dir` durable: on Linux a new name is not on disk until its directory is synced. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function pathOf(dir: string, name: string): string {
  return join(dir, name);
}
