/**
 * Configuration diagnostics: every problem found while loading or validating resources names
 * the file, line, column, the resource (`Kind namespace/name`), the field path and the rule
 * that was broken. Diagnostics are plain data so the CLI can print them and tools can read
 * them as JSON.
 */

export type Severity = 'error' | 'warning';

/** A field path as a list of keys and indexes, e.g. `['spec', 'rules', 0, 'from']`. */
export type FieldPath = readonly (string | number)[];

export interface SourcePosition {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
}

export interface ConfigDiagnostic extends SourcePosition {
  readonly severity: Severity;
  /** Stable code, documented in docs/reference/errors.md. */
  readonly code: DiagnosticCode;
  /** `Kind namespace/name` (or `Kind name` for mesh-wide kinds); absent when not known. */
  readonly resource?: string;
  /** Dotted field path such as `spec.rules[0].from[0].source.ipBlocks[1]`; absent for whole documents. */
  readonly path?: string;
  /** The rule that was broken, phrased so the user knows what to change. */
  readonly message: string;
}

/** Every diagnostic code the config loader emits. */
export type DiagnosticCode =
  | 'TRELLIS_CONFIG_FILE'
  | 'TRELLIS_CONFIG_YAML'
  | 'TRELLIS_CONFIG_NOT_A_RESOURCE'
  | 'TRELLIS_CONFIG_UNKNOWN_KIND'
  | 'TRELLIS_CONFIG_UNKNOWN_FIELD'
  | 'TRELLIS_CONFIG_MISSING_FIELD'
  | 'TRELLIS_CONFIG_WRONG_TYPE'
  | 'TRELLIS_CONFIG_INVALID_VALUE'
  | 'TRELLIS_CONFIG_DUPLICATE'
  | 'TRELLIS_CONFIG_MESH_CONFIG'
  | 'TRELLIS_CONFIG_NOT_HANDLED'
  | 'TRELLIS_CONFIG_IGNORED'
  | 'TRELLIS_CONFIG_TCP_WIDENED'
  | 'TRELLIS_CONFIG_UNSUPPORTED'
  | 'TRELLIS_CONFIG_DEPRECATED'
  | 'TRELLIS_CONFIG_UNKNOWN_SUBSET'
  | 'TRELLIS_CONFIG_CONFLICT';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Renders `['spec', 'rules', 0, 'matchLabels', 'app.io/x']` as `spec.rules[0].matchLabels["app.io/x"]`. */
export function formatFieldPath(path: FieldPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** One line per diagnostic: `file:line:col: severity: Kind ns/name: path: message [CODE]`. */
export function formatDiagnostic(d: ConfigDiagnostic): string {
  const parts = [`${d.file}:${d.line}:${d.column}: ${d.severity}:`];
  if (d.resource !== undefined) parts.push(`${d.resource}:`);
  if (d.path !== undefined && d.path !== '') parts.push(`${d.path}:`);
  parts.push(`${d.message} [${d.code}]`);
  return parts.join(' ');
}

/** Stable order: by file, line, column, then message. */
export function compareDiagnostics(a: ConfigDiagnostic, b: ConfigDiagnostic): number {
  return (
    (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) ||
    a.line - b.line ||
    a.column - b.column ||
    (a.message < b.message ? -1 : a.message > b.message ? 1 : 0)
  );
}
