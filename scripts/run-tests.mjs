// Runs the compiled test suite with node's built-in runner.
// Usage: node scripts/run-tests.mjs [unit|integration|e2e]...  (default: all three, in that order)
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const suites = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['unit', 'integration', 'e2e'];

function testFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.js') ? [path] : [];
  }).sort();
}

let failed = false;
for (const suite of suites) {
  const files = testFiles(join(root, 'dist', 'test', suite));
  if (files.length === 0) continue;
  console.log(`\n# ${suite}: ${files.length} files`);
  const result = spawnSync(
    process.execPath,
    ['--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...files],
    { stdio: 'inherit', cwd: root },
  );
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
