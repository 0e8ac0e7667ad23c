// pnpm fuzz [--count N] [--seed S] [--time-limit-s T]: the wire fuzzer against a real local cluster (test/fuzz).
import { parseArgs } from 'node:util';
import { cleanupAll } from '../harness/index.ts';
import { describeVerdict, fuzzCluster, startFuzzCluster } from './session.ts';

const USAGE = 'usage: pnpm fuzz [--count N] [--seed S] [--time-limit-s T] [--help]\n';
let parsed;
try {
  parsed = parseArgs({
    options: {
      count: { type: 'string', default: '20000' },
      seed: { type: 'string', default: '1' },
      'time-limit-s': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
} catch (e) {
  // An unknown option: say so with the usage, not a stack trace.
  process.stderr.write(`${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
const { values } = parsed;
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const count = Number(values.count);
const seed = Number(values.seed);
// A long run is bounded too: about 1 ms a message on this machine, doubled.
const timeLimitMs = values['time-limit-s'] === undefined ? Math.max(120_000, count * 2) : Number(values['time-limit-s']) * 1000;
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || !(timeLimitMs > 0)) {
  process.stderr.write(USAGE);
  process.exit(2);
}
/** 0 when the run found nothing and changed nothing, else 1; the cluster is always cleaned up. */
async function run(): Promise<number> {
  try {
    const cluster = await startFuzzCluster();
    const verdict = await fuzzCluster(cluster, { count, seed, timeLimitMs });
    process.stdout.write(`${describeVerdict(verdict)}\n`);
    const clean =
      Object.keys(verdict.report.findingCounts).length === 0 &&
      verdict.stateUnchanged &&
      verdict.exited.length === 0 &&
      verdict.stillServing;
    return clean ? 0 : 1;
  } finally {
    await cleanupAll();
  }
}
process.exit(await run());
