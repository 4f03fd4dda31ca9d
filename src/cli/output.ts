import { TrellisError } from '../api/errors.js';
import { isHeaderName } from '../api/names.js';

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

/**
 * Repeated `--header 'Name: value'` flags → lower-case names, repeated names joined with ","
 * as HTTP does. Host is refused: the commands take it from `--host`.
 */
export function parseHeaderFlags(lines: readonly string[]): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon).trim();
    if (!isHeaderName(name)) throw usageError(`--header "${line}": expected "Name: value"`);
    const lower = name.toLowerCase();
    if (lower === 'host') throw usageError('--header "Host: …": use --host');
    const value = line.slice(colon + 1).trim();
    const previous = headers.get(lower);
    headers.set(lower, previous === undefined ? value : `${previous},${value}`);
  }
  return headers;
}
