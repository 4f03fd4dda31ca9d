import { TrellisError } from '../api/errors.js';

/** Output formats shared by the commands that support `-o`. */
export type OutputFormat = 'text' | 'json';

export function parseOutputFormat(value: string): OutputFormat {
  if (value === 'text' || value === 'json') return value;
  throw usageError(`unknown output format "${value}": use "text" or "json"`);
}

/** An error in the command line itself: exit code 2. */
export function usageError(message: string): TrellisError {
  return new TrellisError('TRELLIS_USAGE', message, { exitCode: 2 });
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(line = ''): void {
  process.stdout.write(`${line}\n`);
}
