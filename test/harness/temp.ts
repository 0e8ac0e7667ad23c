import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerCleanup } from './cleanup.ts';

/**
 * A fresh directory under the OS temp dir, removed by cleanupAll(). Set ALLOT_KEEP_TEMP=1 to keep it (server logs
 * and stores are worth reading after a failed run); its path is printed then.
 */
export async function tempDir(prefix: string): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), `allot-${prefix}-`));
  registerCleanup(`temp dir ${path}`, async () => {
    if (process.env['ALLOT_KEEP_TEMP'] === '1') {
      console.error(`kept ${path}`);
      return;
    }
    await rm(path, { recursive: true, force: true });
  });
  return path;
}
