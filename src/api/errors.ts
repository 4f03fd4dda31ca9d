/**
 * Errors that cross a module boundary carry a stable code (`TRELLIS_…`, listed in
 * docs/reference/errors.md) and a message that tells the user what to check.
 */
export class TrellisError extends Error {
  readonly code: string;
  /** Structured context for logs and JSON output; never secrets. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TrellisError';
    this.code = code;
    this.details = details;
  }
}

export function isTrellisError(err: unknown, code?: string): err is TrellisError {
  return err instanceof TrellisError && (code === undefined || err.code === code);
}

/** The message of anything thrown, for logs and CLI output. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
