/**
 * A small parser for the Prometheus text exposition format (0.0.4), enough for tests to check
 * metric families, types, label names and histogram buckets without trusting prom-client's output.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type?: string;
  help?: string;
  readonly samples: Sample[];
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
  let match: RegExpExecArray | null;
  while ((match = re.exec(text)) !== null) {
    const [, name, raw] = match;
    labels[name ?? ''] = (raw ?? '').replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
    if (re.lastIndex >= text.length) break;
  }
  return labels;
}

/** Families by name; histogram `_bucket`/`_sum`/`_count` samples land in their family. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2] ?? '');
      if (meta[1] === 'TYPE') f.type = meta[3] ?? '';
      else f.help = meta[3] ?? '';
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!sample) throw new Error(`not an exposition line: ${line}`);
    const name = sample[1] ?? '';
    const base = [...families.keys()].find((f) => families.get(f)?.type === 'histogram' && /_(bucket|sum|count)$/.test(name) && name.replace(/_(bucket|sum|count)$/, '') === f) ?? name;
    const value = sample[3] === '+Inf' ? Infinity : Number(sample[3]);
    family(base).samples.push({ name, labels: parseLabels(sample[2] ?? ''), value });
  }
  return families;
}

/** The one family of that name, or a thrown error naming what is there. */
export function familyOf(families: Map<string, Family>, name: string): Family {
  const f = families.get(name);
  if (f === undefined) throw new Error(`no metric ${name}; have ${[...families.keys()].join(', ')}`);
  return f;
}
