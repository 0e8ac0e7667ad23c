import { parseArgs } from 'node:util';
import { replayCommand, runSeed, type Layer, type SeedOptions } from './run-seed.ts';

const USAGE = `The simulator's command line (docs/simulation.md):
  pnpm sim --seed N            replays one seed exactly; prints its trace when an invariant breaks (--trace: always)
  pnpm sim --seeds 100000      runs seeds from --from (default 1) on, prints seeds/s, stops at the first failure
  --layer agents|cluster       agents alone, or coordinators over agents (default cluster)
  --duration MS                simulated ms of faults per seed before settling (default 30000)
  --moves                      cluster layer: clients move VMs and the operator evacuates a node
  --lifecycle                  cluster layer: clients also place with preemption and resize VMs in place
  --batches                    cluster layer: clients also place gangs all or nothing (place.batch)
  --help                       this text`;

function usage(problem?: string): never {
  if (problem !== undefined) console.error(`${problem}\n`);
  console.error(USAGE);
  process.exit(problem === undefined ? 0 : 2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      from: { type: 'string', default: '1' },
      layer: { type: 'string', default: 'cluster' },
      duration: { type: 'string' },
      trace: { type: 'boolean', default: false },
      moves: { type: 'boolean', default: false },
      lifecycle: { type: 'boolean', default: false },
      batches: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
} catch (e) {
  usage((e as Error).message);
}
const { values } = parsed;
if (values.help) usage();
for (const name of ['seed', 'seeds', 'from', 'duration'] as const) {
  const v = values[name];
  if (v !== undefined && !/^\d+$/.test(v)) usage(`--${name}: a whole number, not ${JSON.stringify(v)}`);
}

const layer = values.layer as Layer;
if (layer !== 'agents' && layer !== 'cluster') {
  console.error('--layer: agents or cluster');
  process.exit(2);
}
const options: SeedOptions = {
  layer,
  ...(values.duration === undefined ? {} : { durationMs: Number(values.duration) }),
  ...(values.moves ? { moves: true } : {}),
  ...(values.lifecycle ? { lifecycle: true } : {}),
  ...(values.batches ? { batches: true } : {}),
};

if (values.seed !== undefined) {
  const outcome = await runSeed(Number(values.seed), { ...options, traceLimit: 10_000_000 });
  if (outcome.failure !== undefined || values.trace) console.log(outcome.trace.join('\n'));
  console.log(`seed ${outcome.seed}: ${outcome.steps} events, ${(outcome.simulatedMs / 1000).toFixed(1)} s simulated`);
  if (outcome.failure !== undefined) {
    console.log(`FAILED: ${outcome.failure}`);
    process.exit(1);
  }
  console.log('ok');
} else {
  const count = Number(values.seeds ?? '100');
  const from = Number(values.from);
  const started = performance.now();
  let lastReport = started;
  for (let seed = from; seed < from + count; seed++) {
    const outcome = await runSeed(seed, options);
    if (outcome.failure !== undefined) {
      console.log(outcome.trace.slice(-60).join('\n'));
      console.log(`seed ${seed} FAILED after ${seed - from} passing seeds: ${outcome.failure}`);
      console.log(`replay: ${replayCommand(seed, options)}`);
      process.exit(1);
    }
    const now = performance.now();
    if (now - lastReport > 10_000) {
      lastReport = now;
      const done = seed - from + 1;
      console.log(`${done} seeds, ${(done / ((now - started) / 1000)).toFixed(1)} seeds/s`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`${count} seeds passed (${from}..${from + count - 1}), ${(count / seconds).toFixed(1)} seeds/s, ${seconds.toFixed(1)} s`);
}
