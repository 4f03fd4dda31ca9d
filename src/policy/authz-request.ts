/**
 * What the data plane knows about a request when it asks for an authorization decision. The
 * same shape for every placement (sidecar, node tunnel, gateway); `http` is absent for plain
 * TCP connections, and then HTTP-only policy fields follow Istio's TCP rules.
 */
export interface AuthzRequest {
  /**
   * The peer's identity from its verified mTLS certificate, in Istio's form without
   * `spiffe://`: `cluster.local/ns/shop/sa/frontend`. Absent for plaintext connections.
   */
  readonly sourcePrincipal?: string;
  /** The IP address of the directly connected peer. */
  readonly sourceIp: string;
  /** The original client IP (from X-Forwarded-For or PROXY protocol, when trusted); defaults to `sourceIp`. */
  readonly remoteIp?: string;
  /** The address and port the connection was made to (the workload's inbound address). */
  readonly destinationIp: string;
  readonly destinationPort: number;
  /** TLS server name indication, when the connection was TLS. */
  readonly sni?: string;
  readonly http?: HttpRequestAttributes;
  /** Present only after a JWT was verified by the RequestAuthentication step. */
  readonly jwt?: VerifiedJwt;
}

export interface HttpRequestAttributes {
  /** Upper case; requests with other methods are refused before authorization (as Envoy does). */
  readonly method: string;
  /**
   * The path after the mesh's normalization (`normalizeRequestTarget`), without query or
   * fragment: exactly what is forwarded to the application.
   */
  readonly path: string;
  /** The Host / :authority as received, with its port if the client sent one. */
  readonly host: string;
  /** Lower-case names; repeated headers joined with "," (as Envoy presents them). */
  readonly headers: ReadonlyMap<string, string>;
}

/** The result of a successful JWT verification, as authorization reads it. */
export interface VerifiedJwt {
  readonly issuer: string;
  readonly subject: string;
  /** `iss/sub`, Istio's request principal. */
  readonly principal: string;
  /** The `aud` claim as a list. */
  readonly audiences: readonly string[];
  /** The `azp` claim. */
  readonly presenter?: string;
  /** The payload; space-delimited claims (`scope`, `permission`, …) already split into lists. */
  readonly claims: Readonly<Record<string, unknown>>;
}
