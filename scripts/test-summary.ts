// Prints the closing line CI reads: `N passed, N failed`, from vitest's JSON reports plus the lint/typecheck/build
// checks. Usage: test-summary.ts <checks passed> <checks failed> <report.json:exit code>...
// Exits non-zero when anything failed or when no test ran at all.
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

type Report = {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: Array<{
    status: string;
    name: string;
    message?: string;
    assertionResults: Array<{ status: string; fullName: string; failureMessages?: string[] }>;
  }>;
};

const [checksPassed = '0', checksFailed = '0', ...runs] = process.argv.slice(2);
let passed = Number(checksPassed);
let failed = Number(checksFailed);
let skipped = 0;
for (const run of runs) {
  const [reportPath = '', rc = '0'] = run.split(':');
  let runFailed = 0;
  if (existsSync(reportPath)) {
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as Report;
    passed += report.numPassedTests;
    runFailed += report.numFailedTests;
    skipped += report.numPendingTests + report.numTodoTests;
    // A test file that failed to load (syntax error, failing beforeAll) has no failed test but must still count.
    for (const file of report.testResults) {
      // CI keeps only the tail of the output: name each failed test here, beside the closing line, with its first line.
      for (const test of file.assertionResults) {
        if (test.status !== 'failed') continue;
        const why = test.failureMessages?.[0]?.split('\n')[0] ?? '';
        console.log(`failed: ${relative(process.cwd(), file.name)} > ${test.fullName}${why ? `: ${why.slice(0, 300)}` : ''}`);
      }
      if (file.status === 'failed' && file.assertionResults.length === 0) {
        runFailed += 1;
        console.log(`failed to run: ${file.name}${file.message ? `: ${file.message.split('\n')[0]}` : ''}`);
      }
    }
  } else {
    console.log(`no vitest report at ${reportPath}`);
    runFailed += 1;
  }
  if (Number(rc) !== 0 && runFailed === 0) {
    console.log(`vitest exited with ${rc} (${reportPath})`);
    runFailed += 1;
  }
  failed += runFailed;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
