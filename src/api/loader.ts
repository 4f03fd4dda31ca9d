import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { buildConfigSet, type ConfigLoadResult } from './config-set.js';
import type { ConfigDiagnostic } from './diagnostics.js';
import { parseDocuments, type ParsedText } from './parse.js';

/**
 * File-system loading, kept apart from the pure parser: reads files and directories (every
 * `.yaml`/`.yml` file, recursively, in name order) and validates them as one set.
 */

const YAML_EXTENSIONS = new Set(['.yaml', '.yml']);

export async function loadConfigPaths(paths: readonly string[]): Promise<ConfigLoadResult> {
  const parsed: ParsedText[] = [];
  const problems: ConfigDiagnostic[] = [];
  for (const path of paths) {
    for (const file of await expand(path, problems)) {
      try {
        parsed.push(parseDocuments(await readFile(file, 'utf8'), file));
      } catch (err) {
        problems.push(fileProblem(file, `cannot read file: ${errorText(err)}`));
      }
    }
  }
  return buildConfigSet(parsed, problems);
}

async function expand(path: string, problems: ConfigDiagnostic[]): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    problems.push(fileProblem(path, `cannot read ${path}: ${errorText(err)}`));
    return [];
  }
  if (!info.isDirectory()) return [path];
  const entries = await readdir(path, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.')) continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(await expand(child, problems)));
    else if (YAML_EXTENSIONS.has(extname(entry.name))) files.push(child);
  }
  return files;
}

function fileProblem(file: string, message: string): ConfigDiagnostic {
  return { severity: 'error', code: 'TRELLIS_CONFIG_FILE', file, line: 1, column: 1, message };
}

function errorText(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied' : err.code;
  }
  return err instanceof Error ? err.message : String(err);
}
