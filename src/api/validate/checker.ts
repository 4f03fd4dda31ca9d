import { formatFieldPath, type ConfigDiagnostic, type DiagnosticCode, type FieldPath } from '../diagnostics.js';
import type { DocumentSource } from '../yaml-source.js';

/**
 * Collects the diagnostics of one resource. Validators call `error`/`warn` with a field path;
 * the checker turns it into file:line:column through the document's source map.
 */
export class ResourceChecker {
  readonly diagnostics: ConfigDiagnostic[] = [];

  constructor(
    private readonly source: DocumentSource,
    private readonly resource: string | undefined,
  ) {}

  error(path: FieldPath, message: string, code: DiagnosticCode = 'TRELLIS_CONFIG_INVALID_VALUE', options: { atKey?: boolean } = {}): void {
    this.add('error', path, message, code, options);
  }

  warn(path: FieldPath, message: string, code: DiagnosticCode, options: { atKey?: boolean } = {}): void {
    this.add('warning', path, message, code, options);
  }

  get hasErrors(): boolean {
    return this.diagnostics.some((d) => d.severity === 'error');
  }

  private add(severity: 'error' | 'warning', path: FieldPath, message: string, code: DiagnosticCode, options: { atKey?: boolean }): void {
    const position = this.source.position(path, options);
    this.diagnostics.push({
      severity,
      code,
      ...position,
      ...(this.resource === undefined ? {} : { resource: this.resource }),
      ...(path.length === 0 ? {} : { path: formatFieldPath(path) }),
      message,
    });
  }
}
