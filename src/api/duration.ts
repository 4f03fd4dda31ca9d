import { TrellisError } from './errors.js';

/**
 * Durations in Istio's notation: a sequence of number+unit pairs such as `10s`, `1h30m`,
 * `500ms`, `1.5s`. Units: h, m, s, ms, us (or µs), ns. Results are milliseconds.
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
  us: 0.001,
  'µs': 0.001,
  ns: 0.000_001,
};

const MAX_DURATION_MS = 876_000 * 3_600_000;

const PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/y;

export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  if (trimmed === '') {
    throw new TrellisError('TRELLIS_BAD_DURATION', `empty duration: expected a value such as "10s", "1h" or "500ms"`, { exitCode: 2 });
  }
  let total = 0;
  let index = 0;
  while (index < trimmed.length) {
    PART.lastIndex = index;
    const match = PART.exec(trimmed);
    if (!match) {
      throw new TrellisError(
        'TRELLIS_BAD_DURATION',
        `invalid duration "${text}": expected number+unit pairs such as "10s", "1h30m" or "500ms" (units h, m, s, ms, us, ns)`,
        { exitCode: 2 },
      );
    }
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? Number.NaN);
    index = PART.lastIndex;
  }
  // Anything past ~100 years is a typo, and dates built from it would be invalid.
  if (!Number.isFinite(total) || total > MAX_DURATION_MS) {
    throw new TrellisError('TRELLIS_BAD_DURATION', `invalid duration "${text}": value out of range (at most 876000h)`, { exitCode: 2 });
  }
  return total;
}

/** Formats milliseconds in the shortest Istio notation (`90000` → `1m30s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1_000], ['ms', 1]] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) {
      parts.push(`${count}${unit}`);
      rest -= count * size;
    }
  }
  return parts.join('');
}
