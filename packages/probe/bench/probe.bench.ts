// Cost of one host sample: allot's SystemProbe (reads /proc/stat and /proc/meminfo synchronously) against
// systeminformation's currentLoad() + mem(). Prints figures; asserts nothing.
// CPU time includes child processes (cutime/cstime from /proc/self/stat), because systeminformation's currentLoad
// runs `cat /proc/stat | grep cpu` through execSync on Linux, which process.cpuUsage() alone would not see.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import si from 'systeminformation';
import { SystemProbe } from '../src/index.ts';
import { parseMeminfo } from '../src/proc-meminfo.ts';
import { parseProcStat } from '../src/proc-stat.ts';

const TICK_US = 10_000; // USER_HZ is 100 on Linux: one clock tick is 10 ms

/** CPU µs of this process and of its waited-for children. */
function cpuMicros(): number {
  const self = process.cpuUsage();
  let children = 0;
  if (process.platform === 'linux') {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    children = (Number(fields[13]) + Number(fields[14])) * TICK_US;
  }
  return self.user + self.system + children;
}

async function measure(label: string, iterations: number, gapMs: number, take: () => Promise<unknown> | unknown): Promise<void> {
  await take(); // warm up: first call loads modules and primes counters
  let wallUs = 0;
  let cpuUs = 0;
  for (let i = 0; i < iterations; i++) {
    if (gapMs > 0) await sleep(gapMs);
    const cpu0 = cpuMicros();
    const t0 = performance.now();
    await take();
    wallUs += (performance.now() - t0) * 1000;
    cpuUs += cpuMicros() - cpu0;
  }
  const perSampleCpuUs = cpuUs / iterations;
  console.log(
    `${label.padEnd(46)} wall ${(wallUs / iterations).toFixed(1).padStart(8)} µs/sample   cpu ${perSampleCpuUs.toFixed(1).padStart(8)} µs/sample   ${((perSampleCpuUs * 60) / 1000).toFixed(2).padStart(7)} CPU ms/min at 1 s`,
  );
}

const probe = new SystemProbe();
await probe.topology();
await measure('allot SystemProbe.sample() (sync /proc reads)', 2000, 0, () => probe.sample());
await measure('same parsers, fs.promises.readFile (rejected)', 2000, 0, async () => {
  const [stat, meminfo] = await Promise.all([readFile('/proc/stat', 'utf8'), readFile('/proc/meminfo', 'utf8')]);
  parseProcStat(stat);
  parseMeminfo(meminfo);
});
// currentLoad() answers from a cache when called within 200 ms of the previous call, so space the calls out.
await measure('systeminformation currentLoad() + mem()', 40, 220, () => Promise.all([si.currentLoad(), si.mem()]));
await measure('systeminformation mem() alone', 200, 0, () => si.mem());
