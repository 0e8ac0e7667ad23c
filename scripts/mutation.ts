/**
 * pnpm mutation [package...] [--concurrency N] [--minutes M] [--incremental [--retest-survivors]] [--baseline]
 *
 * Mutation testing (Stryker with its vitest runner) over the core packages, one package after another, each run bounded
 * in time. Not part of CI: a full run takes tens of minutes on 2 cores. Scores and the survivors left on purpose are in
 * docs/benchmarks.md (Mutation testing). Reports: tmp/mutation/<package>.html and .json.
 * --baseline leaves out the *.mutation.test.ts files (the tests written against survivors), to measure without them.
 * --incremental reuses tmp/mutation/<package>.incremental.json: only mutants whose code or covering tests changed run.
 * --retest-survivors (with --incremental) drops the survivors from that file first, so they run again against every
 * test: Stryker reuses a survivor whose old covering tests did not change even when a new test now covers it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');

/** What each package's run mutates: the code whose behaviour the package's unit tests are meant to pin. */
const TARGETS: Record<string, string[]> = {
  placement: [
    'packages/placement/src/**/*.ts',
    '!packages/placement/src/**/*.test.ts',
    '!packages/placement/src/fixtures.ts',
    '!packages/placement/src/index.ts',
  ],
  quota: [
    'packages/quota/src/**/*.ts',
    '!packages/quota/src/**/*.test.ts',
    '!packages/quota/src/legacy/fixtures/**',
    '!packages/quota/src/index.ts',
  ],
  managers: ['packages/managers/src/host/host-state.ts', 'packages/managers/src/cpu/cpu-pool.ts'],
  ledger: ['packages/ledger/src/recovery.ts', 'packages/ledger/src/framing.ts', 'packages/ledger/src/group-commit.ts'],
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: 'string', default: '1' },
    minutes: { type: 'string', default: '30' },
    incremental: { type: 'boolean', default: false },
    baseline: { type: 'boolean', default: false },
    'retest-survivors': { type: 'boolean', default: false },
  },
});

const names = positionals.length > 0 ? positionals : Object.keys(TARGETS);
for (const name of names) {
  if (!(name in TARGETS)) {
    console.error(`unknown package ${name}; known: ${Object.keys(TARGETS).join(', ')}`);
    process.exit(2);
  }
}

const outDir = path.join(root, 'tmp', 'mutation');
mkdirSync(outDir, { recursive: true });

let failed = false;
for (const name of names) {
  const code = await runOne(name);
  if (code !== 0) failed = true;
}
process.exit(failed ? 1 : 0);

async function runOne(name: string): Promise<number> {
  const suffix = values.baseline ? '.baseline' : '';
  const config = {
    $schema: '../../node_modules/@stryker-mutator/core/schema/stryker-schema.json',
    packageManager: 'pnpm',
    testRunner: 'vitest',
    // pnpm keeps the runner out of core's own node_modules, where Stryker looks for plugins by default.
    plugins: [fileURLToPath(import.meta.resolve('@stryker-mutator/vitest-runner'))],
    // forks: the ledger's tests set process.umask(), which worker threads refuse.
    vitest: { configFile: 'vitest.config.ts', dir: `packages/${name}`, pool: 'forks' },
    coverageAnalysis: 'perTest',
    mutate: TARGETS[name],
    // The sandbox holds the packages and the root configs only; node_modules (root and per package) are symlinked.
    // apps/, test/ and scripts/ keep their tsconfig files: the packages' project references name them (tsc -b).
    ignorePatterns: [
      ...['/docs', '/infra', '/allot', '/test-results', '/patches', '/.tools', '/.old', '/tmp', '/coverage'],
      ...['/apps', '/test', '/scripts'].flatMap((dir) => [`${dir}/**/*`, `!${dir}/**/`, `!${dir}/**/tsconfig*.json`]),
      ...(values.baseline ? ['*.mutation.test.ts'] : []),
    ],
    tempDirName: 'tmp/stryker',
    concurrency: Number(values.concurrency),
    // A mutant that loops or hangs is detected (timeout); a short bound keeps those from dominating the run.
    timeoutMS: 3_000,
    incremental: values.incremental,
    incrementalFile: `tmp/mutation/${name}.incremental.json`,
    reporters: ['progress', 'clear-text', 'html', 'json'],
    htmlReporter: { fileName: `tmp/mutation/${name}${suffix}.html` },
    jsonReporter: { fileName: `tmp/mutation/${name}${suffix}.json` },
    clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0, reportScoreTable: true },
    thresholds: { high: 90, low: 80, break: null },
    cleanTempDir: 'always',
  };
  if (values['retest-survivors']) dropSurvivors(path.join(root, config.incrementalFile));
  const file = path.join(outDir, `${name}${suffix}.stryker.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  const limitMs = Number(values.minutes) * 60_000;
  console.log(`mutation: ${name}${suffix} (concurrency ${config.concurrency}, at most ${values.minutes} min)`);
  const child = spawn(path.join(root, 'node_modules', '.bin', 'stryker'), ['run', file], {
    cwd: root,
    stdio: 'inherit',
    detached: true,
  });
  const timer = setTimeout(() => {
    console.error(`mutation: ${name} exceeded ${values.minutes} min, stopped`);
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
  }, limitMs);
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  clearTimeout(timer);
  return code;
}

/** Removes the survived and uncovered mutants from an incremental file, so the next incremental run tests them again. */
function dropSurvivors(file: string): void {
  if (!existsSync(file)) return;
  const report = JSON.parse(readFileSync(file, 'utf8')) as { files: Record<string, { mutants: Array<{ status: string }> }> };
  for (const f of Object.values(report.files)) f.mutants = f.mutants.filter((m) => m.status !== 'Survived' && m.status !== 'NoCoverage');
  writeFileSync(file, JSON.stringify(report));
}
