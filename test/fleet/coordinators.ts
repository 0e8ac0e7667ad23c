import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COORDINATOR_MAIN, isLogMsg } from '../harness/index.ts';
import { freePort } from '../harness/net.ts';
import { spawnProcess, type ProcessHandle } from '../harness/process.ts';
import { tempDir } from '../harness/temp.ts';
import { APPS } from '../../scripts/release/apps.ts';

/** A real coordinator process (apps/coordinator/src/main.ts) with its dashboard server on a loopback port. */
export interface CoordinatorProcess {
  readonly id: string;
  readonly process: ProcessHandle;
  /** The dashboard's base URL (its JSON API and SSE feed). */
  readonly url: string;
  /** performance.now() when it was spawned. */
  readonly spawnedAt: number;
  /** Resolves when it logged `coordinator ready` (its view rebuilt from the streams), with performance.now(). */
  readonly ready: Promise<number>;
}

/** Starts a coordinator as the integration tests do (strict config file, JSON logs), its dashboard on a free port. */
export async function startCoordinatorProcess(
  natsUrl: string,
  id: string,
  config: Record<string, unknown> = {},
): Promise<CoordinatorProcess> {
  const port = await freePort();
  const file = join(await tempDir(`fleet-${id}`), 'coordinator.json');
  await writeFile(
    file,
    JSON.stringify({ coordinatorId: id, nats: { servers: [natsUrl] }, logLevel: 'warn', http: { host: '127.0.0.1', port }, ...config }),
  );
  const spawnedAt = performance.now();
  const child = spawnProcess({
    name: `coordinator ${id}`,
    script: COORDINATOR_MAIN,
    args: ['--config', file],
    env: { ALLOT_LOG_FORMAT: 'json', NODE_ENV: 'test', ALLOT_LOG_LEVEL: 'info', NODE_OPTIONS: RELEASE_FLAGS, ...coordinatorEnv() },
  });
  const ready = child.waitForLine(isLogMsg('coordinator ready'), 120_000).then(() => performance.now());
  return { id, process: child, url: `http://127.0.0.1:${port}`, spawnedAt, ready };
}

/** The V8 flags the coordinator's release executable bakes in: the fleet measures what a deployment runs. */
const RELEASE_FLAGS = (APPS.find((a) => a.name === 'allot-coordinator')?.execArgv ?? []).join(' ');

/**
 * Environment for the coordinators only, from this process's `FLEET_COORDINATOR_<NAME>` variables (prefix taken off):
 * `FLEET_COORDINATOR_NODE_OPTIONS=--max-semi-space-size=4` measures a V8 flag on them (in place of the release's) and
 * not on the publisher.
 */
function coordinatorEnv(): Record<string, string> {
  const prefix = 'FLEET_COORDINATOR_';
  return Object.fromEntries(
    Object.entries(process.env)
      .filter((e): e is [string, string] => e[0].startsWith(prefix) && e[1] !== undefined)
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );
}

const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) of a process so far, ms; 0 once it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
  } catch {
    return 0;
  }
}

/** Resident set size of a process, MiB; 0 once it is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Math.round(Number(m[1]) / 1024);
  } catch {
    return 0;
  }
}

/** What a process used over a window: CPU ms per second of wall time (1000 = one core), the largest and last RSS. */
export interface Usage {
  readonly cpuMsPerSecond: number;
  readonly rssMaxMiB: number;
  readonly rssEndMiB: number;
}

/** Samples processes' CPU and RSS every 500 ms from start() until stop(). */
export class ProcessSampler {
  readonly #pids: number[];
  readonly #cpu0 = new Map<number, number>();
  readonly #rssMax = new Map<number, number>();
  #t0 = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(pids: number[]) {
    this.#pids = pids;
    this.#t0 = performance.now();
    for (const pid of pids) {
      this.#cpu0.set(pid, cpuMs(pid));
      this.#rssMax.set(pid, rssMiB(pid));
    }
    this.#timer = setInterval(() => {
      for (const pid of pids) this.#rssMax.set(pid, Math.max(this.#rssMax.get(pid) ?? 0, rssMiB(pid)));
    }, 500);
  }

  /** Per pid. */
  stop(): Map<number, Usage> {
    clearInterval(this.#timer);
    const seconds = (performance.now() - this.#t0) / 1000;
    const out = new Map<number, Usage>();
    for (const pid of this.#pids) {
      const rss = rssMiB(pid);
      out.set(pid, {
        cpuMsPerSecond: Math.round((cpuMs(pid) - (this.#cpu0.get(pid) ?? 0)) / seconds),
        rssMaxMiB: Math.max(this.#rssMax.get(pid) ?? 0, rss),
        rssEndMiB: rss,
      });
    }
    return out;
  }
}
