// Adds up vitest's "Tests  N failed | N passed | N skipped (N)" lines of each test log into one line per
// log and one plain closing line for the whole run. A step that failed (--failed, the logs' names)
// without a failed test counted (a suite that did not load, a crash) counts as one failure: a failing run
// never closes on "0 failed".
// Usage: node scripts/ci/summary.mjs --failed="label ..." LOG...
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const args = process.argv.slice(2);
const failedSteps = new Set((args.find((arg) => arg.startsWith('--failed='))?.slice('--failed='.length) ?? '').split(' ').filter(Boolean));
const total = { passed: 0, failed: 0, skipped: 0 };
for (const log of args.filter((arg) => !arg.startsWith('--failed='))) {
  const label = basename(log, '.log');
  const text = readFileSync(log, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const [, results] of text.matchAll(/\bTests\s+((?:\d+ (?:passed|failed|skipped|todo)(?: \| )?)+)\s*\(\d+\)/g)) {
    for (const [, count, kind] of results.matchAll(/(\d+) (passed|failed|skipped)/g)) counts[kind] += Number(count);
  }
  if (failedSteps.has(label) && counts.failed === 0) counts.failed = 1;
  for (const kind of Object.keys(total)) total[kind] += counts[kind];
  console.log(`${label}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped${failedSteps.has(label) ? ' (step failed)' : ''}`);
}
console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
