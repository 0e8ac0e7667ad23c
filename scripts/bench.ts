// `pnpm bench [filter]`: runs every benchmark script (packages/*/bench/*.bench.ts, apps/*/bench/*.bench.ts, test/bench)
// one after another in its own Node process, so they do not compete for the 2 cores, and prints their figures.
// Benchmarks print; they never assert times (figures go to docs/benchmarks.md).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

const filter = process.argv[2];
const roots = ['packages', 'apps'].flatMap((top) => (existsSync(top) ? readdirSync(top).map((name) => join(top, name)) : []));
roots.push('test');
const files = roots
  .map((dir) => join(dir, 'bench'))
  .filter((dir) => existsSync(dir))
  .flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.bench.ts'))
      .map((f) => join(dir, f)),
  )
  .filter((file) => !filter || file.includes(filter))
  .sort();

console.log(
  `machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
);
let failed = 0;
for (const file of files) {
  console.log(`\n### ${file}`);
  const run = spawnSync(process.execPath, ['--expose-gc', file], { stdio: 'inherit' });
  if (run.status !== 0) failed += 1;
}
if (failed) {
  console.error(`${failed} benchmark(s) failed`);
  process.exit(1);
}
