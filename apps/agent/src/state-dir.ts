import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

/** The state directory holds the ledger and the node identity: its owner's alone (umask or not). */
export const STATE_DIR_MODE = 0o700;
export const STATE_FILE_MODE = 0o600;

/**
 * Creates the state directory if missing and sets it to 0700, and an existing node-identity file to 0600, so that an
 * agent upgraded from a version that created them 0755/0644 is tightened at its next start. The ledger tightens its
 * own directory and files when it opens.
 */
export async function secureStateDir(stateDir: string): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: STATE_DIR_MODE });
  await chmod(stateDir, STATE_DIR_MODE);
  await chmod(join(stateDir, 'node-identity'), STATE_FILE_MODE).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  });
}
