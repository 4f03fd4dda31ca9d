#!/usr/bin/env node
// The `trellis` command. `npm ci` compiles the TypeScript sources to dist/ (the `prepare` script).
import { main } from '../dist/src/cli/main.js';

// Output piped into `head` and the like: a closed pipe ends the command quietly.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

process.exitCode = await main(process.argv.slice(2));
