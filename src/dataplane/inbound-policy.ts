/**
 * What the inbound side needs from the policy engine, per config version: path normalization,
 * request authentication (JWT) and authorization decisions. The implementation compiles the
 * snapshot's policy part once per version (see policy-engine.ts); the listener only calls this.
 */
import type { ConnectionInfo } from './connection.js';
import type { HeaderList } from './headers.js';

export type NormalizedPath = { ok: true; path: string } | { ok: false; reason: string };

export type JwtOutcome =
  | { status: 'none' }
  | {
      status: 'valid';
      principal: string;
      audiences: string[];
      presenter?: string;
      claims: Record<string, unknown>;
      /** Headers to add (outputPayloadToHeader, outputClaimToHeaders) and whether to drop the token. */
      setHeaders: HeaderList;
      removeHeaders: string[];
    }
  | { status: 'invalid'; reason: string };

export interface AuthzDecision {
  allow: boolean;
  /** `namespace/name` of the deciding policy, or null (default allow/deny). */
  policy: string | null;
  /** A sentence a person can act on. */
  reason: string;
}

export interface HttpAuthzInput {
  connection: ConnectionInfo;
  method: string;
  /** Normalized path without the query. */
  path: string;
  host: string;
  headers: HeaderList;
  jwt: JwtOutcome;
}

export interface InboundPolicy {
  normalizePath(rawPath: string): NormalizedPath;
  authenticate(request: { headers: HeaderList; path: string }): Promise<JwtOutcome>;
  authorizeHttp(input: HttpAuthzInput): AuthzDecision;
  authorizeTcp(connection: ConnectionInfo): AuthzDecision;
}
