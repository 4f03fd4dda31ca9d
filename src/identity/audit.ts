/**
 * Audit events of the identity system: certificates issued and refused, tokens created,
 * revocations, root rotations. Records never contain keys or token values.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface IdentityAuditEvent {
  time: string;
  type:
    | 'ca.initialized'
    | 'token.created'
    | 'svid.issued'
    | 'svid.refused'
    | 'revocation.added'
    | 'revocation.lifted'
    | 'rotation.started'
    | 'rotation.activated'
    | 'rotation.root-removed';
  /** Who asked: an operator (`cli:<user>`), a proven workload identity, or `system`. */
  actor?: string;
  identity?: string;
  serial?: string;
  reason?: string;
  [key: string]: unknown;
}

export type AuditSink = (event: IdentityAuditEvent) => void;

/** Appends one JSON object per line; the directory's mode keeps it readable only by the operator. */
export function jsonlAuditSink(path: string): AuditSink {
  let ready = false;
  return (event) => {
    // Created on first use, so merely opening a CA never creates directories.
    if (!ready) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      ready = true;
    }
    appendFileSync(path, `${JSON.stringify(event)}\n`, { mode: 0o600 });
  };
}
