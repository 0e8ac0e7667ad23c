import { open, readFile, rename } from 'node:fs/promises';
import { LedgerError } from './errors.ts';
import { FILE_MODE, pathOf, syncDirectory, TMP_SUFFIX } from './files.ts';

/**
 * The on-disk format of a ledger directory (frames, file names, snapshot files), kept in a small `FORMAT` file beside
 * them, as etcd and Kafka keep a version beside their logs. A ledger without the file was written before it existed:
 * that is format 1, the frames this code writes, and opening it records the marker. A ledger whose marker is newer
 * than this code's is refused (a downgrade), never read with rules that may not be its own.
 */
export const LEDGER_FORMAT = 1;
export const FORMAT_FILE = 'FORMAT';

interface FormatMarker {
  readonly format: number;
}

/** The directory's format after this call: refuses a newer one, writes the marker where it is missing. */
export async function checkLedgerFormat(dir: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(pathOf(dir, FORMAT_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await writeLedgerFormat(dir);
    return LEDGER_FORMAT;
  }
  const format = parseMarker(text);
  if (format === undefined) {
    throw new LedgerError('corrupt', `${pathOf(dir, FORMAT_FILE)} does not name a ledger format (${JSON.stringify(text.slice(0, 80))})`, {
      dir,
    });
  }
  if (format > LEDGER_FORMAT) {
    throw new LedgerError(
      'unsupported_format',
      `the ledger in ${dir} has format ${format}, written by a newer allot-agent; this one reads formats up to ${LEDGER_FORMAT}. Downgrading an agent in place is not supported: run the newer version (or restore an export made with it)`,
      { dir, format, supported: LEDGER_FORMAT },
    );
  }
  return format;
}

function parseMarker(text: string): number | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<FormatMarker> | null;
    const format = parsed?.format;
    return Number.isSafeInteger(format) && (format as number) >= 1 ? (format as number) : undefined;
  } catch {
    return undefined;
  }
}

/** Temp file, fsync, rename, fsync the directory: a crash leaves the old marker or the new one. */
async function writeLedgerFormat(dir: string): Promise<void> {
  const tmp = pathOf(dir, FORMAT_FILE + TMP_SUFFIX);
  const handle = await open(tmp, 'w', FILE_MODE);
  try {
    await handle.writeFile(`${JSON.stringify({ format: LEDGER_FORMAT } satisfies FormatMarker)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, pathOf(dir, FORMAT_FILE));
  await syncDirectory(dir);
}
