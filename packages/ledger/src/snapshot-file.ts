import { open, readFile, rename, unlink } from 'node:fs/promises';
import { FILE_MODE, pathOf, snapshotName, syncDirectory, TMP_SUFFIX, type SeqFile } from './files.ts';
import { prepareFrame, readFrame, sealFrame } from './framing.ts';

/** A snapshot frame's payload length field is a u32. */
export const MAX_SNAPSHOT_BYTES = 0xffff_ffff;

/**
 * Writes a snapshot so that a crash leaves either the whole file or none: temp file, fsync, rename, fsync the directory.
 * Returns the file's size.
 */
export async function writeSnapshotFile(dir: string, seq: number, payload: Uint8Array): Promise<{ name: string; bytes: number }> {
  const name = snapshotName(seq);
  const tmp = pathOf(dir, name + TMP_SUFFIX);
  const frame = prepareFrame(seq, payload);
  sealFrame(frame, 0);
  const handle = await open(tmp, 'w', FILE_MODE);
  try {
    await handle.chmod(FILE_MODE);
    await handle.writeFile(frame);
    await handle.sync();
  } catch (e) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await handle.close();
  await rename(tmp, pathOf(dir, name));
  await syncDirectory(dir);
  return { name, bytes: frame.length };
}

/** A snapshot's payload if the file is exactly one valid frame carrying the seq in its name; otherwise why not. */
export async function readSnapshotFile(
  dir: string,
  file: SeqFile,
): Promise<{ ok: true; payload: Buffer; bytes: number } | { ok: false; reason: string }> {
  let buf: Buffer;
  try {
    buf = await readFile(pathOf(dir, file.name));
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  const frame = readFrame(buf, 0, MAX_SNAPSHOT_BYTES);
  if (frame === 'short') return { ok: false, reason: `${file.name} is truncated (${buf.length} bytes)` };
  if (frame === 'bad') return { ok: false, reason: `${file.name} fails its CRC` };
  if (frame.size !== buf.length) return { ok: false, reason: `${file.name} has ${buf.length - frame.size} bytes after its frame` };
  if (frame.seq !== file.seq) return { ok: false, reason: `${file.name} carries seq ${frame.seq}` };
  return { ok: true, payload: frame.payload, bytes: buf.length };
}
