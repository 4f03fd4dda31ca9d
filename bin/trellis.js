#!/usr/bin/env node
// The `trellis` command. `npm ci` compiles the TypeScript sources to dist/ (the `prepare` script).
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
