import type { Command } from 'commander';
import type { ConfigLoadResult } from '../../api/config-set.js';
import { formatDiagnostic } from '../../api/diagnostics.js';
import { loadConfigPaths } from '../../api/loader.js';
import { parseOutputFormat, printJson, printLine, usageError } from '../output.js';

/**
 * `trellis validate -f PATH… [-o json]`: loads files and directories as one config set and
 * prints every error (exit 1) or a summary (exit 0). Warnings never fail validation.
 */
export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check Istio and Trellis config files: every error with file:line:column, or a summary')
    .option('-f, --filename <paths...>', 'YAML files or directories (repeatable)')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (options: { filename?: string[]; output: string }) => {
      const format = parseOutputFormat(options.output);
      const paths = options.filename ?? [];
      if (paths.length === 0) throw usageError('validate needs at least one -f PATH');
      const result = await loadConfigPaths(paths);
      if (format === 'json') printJson(validationJson(result));
      else printText(result);
      process.exitCode = result.errors.length > 0 ? 1 : 0;
    });
}

/** The `-o json` document; other tools read it, so its shape is part of the CLI contract. */
export function validationJson(result: ConfigLoadResult): unknown {
  return {
    valid: result.errors.length === 0,
    errors: result.errors,
    warnings: result.warnings,
    resources: result.resources.map((r) => ({
      kind: r.kind,
      apiVersion: r.apiVersion,
      ...(r.metadata.namespace === undefined ? {} : { namespace: r.metadata.namespace }),
      name: r.metadata.name,
      file: r.source.file,
      line: r.source.line,
    })),
    summary: countByKind(result),
  };
}

function printText(result: ConfigLoadResult): void {
  for (const d of [...result.errors, ...result.warnings]) printLine(formatDiagnostic(d));
  const warnings = result.warnings.length === 0 ? '' : `, ${plural(result.warnings.length, 'warning')}`;
  if (result.errors.length > 0) {
    const files = new Set(result.errors.map((e) => e.file)).size;
    printLine(`config rejected: ${plural(result.errors.length, 'error')} in ${plural(files, 'file')}${warnings}; nothing was applied`);
    return;
  }
  const counts = Object.entries(countByKind(result)).map(([kind, n]) => `${n} ${kind}`);
  const mesh = result.config?.mesh;
  printLine(`config valid: ${plural(result.resources.length, 'resource')}${counts.length > 0 ? ` (${counts.join(', ')})` : ''}${warnings}`);
  if (mesh) {
    printLine(`mesh: trustDomain ${mesh.trustDomain}, rootNamespace ${mesh.rootNamespace}, defaultAuthorization ${mesh.defaultAuthorization}, pathNormalization ${mesh.pathNormalization}`);
  }
}

function countByKind(result: ConfigLoadResult): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of result.resources) counts[r.kind] = (counts[r.kind] ?? 0) + 1;
  return counts;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
