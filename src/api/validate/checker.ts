import { formatFieldPath, type ConfigDiagnostic, type DiagnosticCode, type FieldPath } from '../diagnostics.js';
import type { DocumentSource } from '../yaml-source.js';

/**
 * Collects the diagnostics of one resource. Validators call `error`/`warn` with a field path;
 * the checker turns it into file:line:column through the document's source map.
 */
export class ResourceChecker {
  readonly diagnostics: ConfigDiagnostic[] = [];
  /** Objects a bad field was removed from (see parseStrict); their own checks would only echo that error. */
  private readonly repairedObjects = new Set<string>();

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

  /** Marks an object whose bad field was dropped so semantic checks could still run on the rest. */
  repaired(objectPath: FieldPath): void {
    this.repairedObjects.add(formatFieldPath(objectPath));
  }

  get hasErrors(): boolean {
    return this.diagnostics.some((d) => d.severity === 'error');
  }

  private add(severity: 'error' | 'warning', path: FieldPath, message: string, code: DiagnosticCode, options: { atKey?: boolean }): void {
    // "empty source" after dropping its only (misspelled) field is noise, not a second mistake.
    if (code !== 'TRELLIS_CONFIG_UNKNOWN_FIELD' && code !== 'TRELLIS_CONFIG_WRONG_TYPE' && this.repairedObjects.has(formatFieldPath(path))) return;
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
