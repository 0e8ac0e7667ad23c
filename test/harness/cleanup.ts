/**
 * Everything a test starts (servers, processes, temp dirs) registers a cleanup here, so `cleanupAll()` in an
 * afterAll/afterEach tears it all down even when the test failed half-way. Process exits kill stragglers too, so a
 * crashed vitest worker does not leave nats-server processes holding ports.
 */
type Cleanup = { name: string; run: () => Promise<void>; killNow?: () => void };

const registered = new Set<Cleanup>();

/** Registers a cleanup; returns a function that unregisters it (when the resource was released normally). */
export function registerCleanup(name: string, run: () => Promise<void>, killNow?: () => void): () => void {
  const entry: Cleanup = killNow === undefined ? { name, run } : { name, run, killNow };
  registered.add(entry);
  return () => registered.delete(entry);
}

/** Runs every registered cleanup, newest first (processes before the servers they talk to, before temp dirs). */
export async function cleanupAll(): Promise<void> {
  const entries = [...registered].reverse();
  registered.clear();
  const failures: string[] = [];
  for (const entry of entries) {
    try {
      await entry.run();
    } catch (e) {
      failures.push(`${entry.name}: ${(e as Error).message}`);
    }
  }
  if (failures.length > 0) console.error(`cleanupAll: ${failures.join('; ')}`);
}

// Synchronous last resort: on exit only synchronous work runs, so child processes get a SIGKILL and nothing else.
process.once('exit', () => {
  for (const entry of registered) entry.killNow?.();
});
