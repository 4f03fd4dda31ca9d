/** Runs the real `trellis` command (bin/trellis.js on the compiled sources), as a user would. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const TRELLIS_BIN = fileURLToPath(new URL('../../../bin/trellis.js', import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runTrellis(args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return run(process.execPath, [TRELLIS_BIN, ...args], options);
}

export function run(command: string, args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: options.timeoutMs ?? 60_000, env: options.env ?? process.env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}
