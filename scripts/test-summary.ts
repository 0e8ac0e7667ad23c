// Prints the closing line CI reads: `N passed, N failed`, from vitest's JSON report plus the lint/typecheck checks.
// Exits non-zero when anything failed or when vitest ran no test at all.
import { existsSync, readFileSync } from 'node:fs';

const [reportPath = '.allot/vitest.json', checksPassed = '0', checksFailed = '0', vitestRc = '0'] = process.argv.slice(2);
let passed = Number(checksPassed);
let failed = Number(checksFailed);
let skipped = 0;
if (existsSync(reportPath)) {
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
    testResults: Array<{ status: string; name: string; message?: string; assertionResults: unknown[] }>;
  };
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  // A test file that failed to load (syntax error, failing beforeAll) has no failed test but must still count.
  for (const file of report.testResults) {
    if (file.status === 'failed' && file.assertionResults.length === 0) {
      failed += 1;
      console.log(`failed to run: ${file.name}${file.message ? `: ${file.message.split('\n')[0]}` : ''}`);
    }
  }
} else {
  console.log(`no vitest report at ${reportPath}`);
  failed += 1;
}
if (Number(vitestRc) !== 0 && failed === 0) {
  console.log(`vitest exited with ${vitestRc}`);
  failed += 1;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
