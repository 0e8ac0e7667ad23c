// An idle agent's footprint on a host, from the sources and from the release executable (scripts/release/artifacts.ts,
// built first if dist/release/bin/allot-agent is missing): resident memory and CPU time while it serves nothing.
// `pnpm bench footprint`. Prints figures beside the targets (80 MB RSS, 0.5% of one core = 300 ms of CPU a minute)
// and the bare runtime's floor; asserts nothing. The executable runs with the environment its systemd unit sets
// (infra/deb/allot-agent.service, NODE_ENV aside), FOOTPRINT_RUNS times (default 3): its file-backed pages vary by a few
// MB from start to start. RSS is split into anonymous memory (heap, malloc, stacks: what allot
// can cut) and file-backed pages of the executable (Node's own code and data, shared and clean). The executable's
// page cache is dropped before each start, as after a reboot: a file just written sits in the cache as large folios
// that the kernel maps whole on a fault, which adds about 20 MB of file-backed RSS until the cache is recycled.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { AGENT_MAIN, cleanupAll, isLogMsg, simulatedHostEnv, spawnProcess, startNatsServer, tempDir } from '../harness/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ARTIFACT = join(ROOT, 'dist', 'release', 'bin', 'allot-agent');
const WARMUP_MS = Number(process.env['FOOTPRINT_WARMUP_MS'] ?? 10_000);
const MEASURE_MS = Number(process.env['FOOTPRINT_MEASURE_MS'] ?? 30_000);
const RUNS = Number(process.env['FOOTPRINT_RUNS'] ?? 3);
const UNIT = join(ROOT, 'infra', 'deb', 'allot-agent.service');
const TARGET_RSS_MB = 80;
const TARGET_CPU_MS_PER_MIN = 300;
const CLOCK_TICKS_PER_S = 100;

function cpuMs(pid: number): number {
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, after the command in parentheses.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
}

function rssMb(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number {
  const line =
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`)) ?? '';
  return Number(/(\d+)/.exec(line)?.[1] ?? 0) / 1024;
}

/** RSS and its anonymous / file-backed split, as printed beside each figure. */
function rssSplit(pid: number): string {
  const mb = (field: 'VmRSS' | 'RssAnon' | 'RssFile') => rssMb(pid, field).toFixed(0);
  return `RSS ${mb('VmRSS')} MB (anon ${mb('RssAnon')} + file ${mb('RssFile')})`;
}

/** Drops a file's pages from the page cache (GNU dd), so a start maps it as after a reboot; best effort. */
function dropPageCache(file: string): void {
  try {
    execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
  } catch {
    console.log(`(could not drop the page cache of ${file}: file-backed figures may be higher)`);
  }
}

/** The unit's Environment= assignments but NODE_ENV (production would ask for credentials and TLS). */
function unitEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(UNIT, 'utf8').split('\n')) {
    if (!line.startsWith('Environment=')) continue;
    for (const assignment of line.slice('Environment='.length).split(' ')) {
      const [name, ...value] = assignment.split('=');
      if (name !== undefined && name !== '' && name !== 'NODE_ENV') env[name] = value.join('=');
    }
  }
  return env;
}

async function measure(
  label: string,
  script: string,
  executable: boolean,
  natsUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<number> {
  if (executable) dropPageCache(script);
  const agent = spawnProcess({
    name: label,
    script,
    executable,
    env: {
      NODE_ENV: 'test',
      ALLOT_LOG_FORMAT: 'json',
      ALLOT_NODE_ID: `footprint-${executable ? 'artifact' : 'source'}`,
      ALLOT_STATE_DIR: await tempDir('footprint'),
      ALLOT_NATS_SERVERS: natsUrl,
      ALLOT_SIMULATED_HOST: simulatedHostEnv({ cores: 16, memoryMiB: 65_536 }),
      ...extraEnv,
    },
  });
  await agent.waitForLine(isLogMsg('agent ready'), 60_000);
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  const before = cpuMs(agent.pid);
  await new Promise((resolve) => setTimeout(resolve, MEASURE_MS));
  const perMinute = ((cpuMs(agent.pid) - before) * 60_000) / MEASURE_MS;
  const peak = rssMb(agent.pid, 'VmHWM');
  console.log(
    `${label.padEnd(28)} ${rssSplit(agent.pid)}, peak ${peak.toFixed(0)} MB; target <= ${TARGET_RSS_MB}   CPU ${perMinute.toFixed(0)} ms/min = ${((perMinute / 60_000) * 100).toFixed(2)}% of a core (target <= ${TARGET_CPU_MS_PER_MIN} ms/min, 0.5%)`,
  );
  const rss = rssMb(agent.pid, 'VmRSS');
  await agent.stop('SIGTERM', 15_000);
  return rss;
}

if (!existsSync(ARTIFACT)) {
  console.log('building the release executables first (scripts/release/artifacts.ts)');
  execFileSync(process.execPath, [join(ROOT, 'scripts/release/artifacts.ts')], { stdio: 'inherit' });
}
// The floor any Node-based executable starts from: this Node, idle, with nothing loaded.
console.log(
  `machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
const bare = spawnProcess({ name: 'bare node', script: '-e', args: ['console.log("up"); setInterval(() => undefined, 1000)'] });
await bare.waitForLine((line) => line === 'up', 10_000);
await new Promise((resolve) => setTimeout(resolve, 2_000));
console.log(`${'bound: bare node, idle'.padEnd(28)} ${rssSplit(bare.pid)} (the runtime alone, before any allot code)`);
await bare.stop('SIGTERM', 5_000);
const server = await startNatsServer({ jetstream: true });
console.log(`idle agent, heartbeat as configured by default, ${WARMUP_MS / 1000} s after ready, measured over ${MEASURE_MS / 1000} s`);
await measure('from the sources (node main.ts)', AGENT_MAIN, false, server.url);
const env = unitEnvironment();
console.log(
  `the executable with its unit's environment: ${
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || '(none)'
  }`,
);
const runs: number[] = [];
for (let run = 1; run <= RUNS; run++) runs.push(await measure(`release executable, run ${run}`, ARTIFACT, true, server.url, env));
console.log(
  `release executable: RSS ${Math.min(...runs).toFixed(0)}-${Math.max(...runs).toFixed(0)} MB over ${RUNS} runs (target <= ${TARGET_RSS_MB})`,
);
await cleanupAll();
