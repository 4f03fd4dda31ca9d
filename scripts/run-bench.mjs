// Runs every compiled benchmark (dist/bench/*.js), one after the other, each in its own process.
// Usage: node scripts/run-bench.mjs [name-filter]
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'dist', 'bench');
const filter = process.argv[2] ?? '';
let files = [];
try {
  files = readdirSync(dir).filter((name) => name.endsWith('.js') && name.includes(filter)).sort();
} catch {
  console.error(`no compiled benchmarks in ${dir}: run "npx tsc -p tsconfig.json" first`);
  process.exit(1);
}
let failed = false;
for (const name of files) {
  console.log(`\n# ${name}`);
  const result = spawnSync(process.execPath, [join(dir, name)], { stdio: 'inherit', cwd: root });
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
