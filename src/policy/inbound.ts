import type { ConfigSet } from '../api/config-set.js';
import type { PathNormalization } from '../api/schemas/mesh-config.js';
import type { AuthzAction } from '../api/schemas/security.js';
import { policiesForWorkload, type WorkloadAuthzPolicies } from './authz-policies.js';
import type { HttpRequestAttributes } from './authz-request.js';
import { buildAuthorizer, type AuthzDecision, type Authorizer } from './authorizer.js';
import { mtlsModeForPort, peerAuthenticationForWorkload, type MtlsMode, type WorkloadMtls } from './peer-authn.js';
import { authenticateRequest, jwtRulesForWorkload, type ForwardChanges, type VerifyRequestJwt, type WorkloadJwtRules } from './request-authn.js';
import type { Workload } from './workload.js';

/**
 * The inbound policy of one workload, end to end: peer authentication (mTLS mode), request
 * target normalization, request authentication (JWT), authorization. The control plane builds
 * `WorkloadPolicy` (plain JSON) per proxy; the proxy compiles it once and runs `checkInbound`
 * — and so does `trellis authz check`, with the same code.
 */

export interface WorkloadPolicy {
  readonly workload: Workload;
  readonly authorization: WorkloadAuthzPolicies;
  readonly mtls: WorkloadMtls;
  readonly jwt: WorkloadJwtRules;
}

export function workloadPolicy(config: ConfigSet, workload: Workload): WorkloadPolicy {
  return {
    workload,
    authorization: policiesForWorkload(config, workload),
    mtls: peerAuthenticationForWorkload(config, workload),
    jwt: jwtRulesForWorkload(config, workload),
  };
}

export interface CompiledWorkloadPolicy {
  readonly policy: WorkloadPolicy;
  readonly authorizer: Authorizer;
  readonly pathNormalization: PathNormalization;
}

export function compileWorkloadPolicy(policy: WorkloadPolicy): CompiledWorkloadPolicy {
  return { policy, authorizer: buildAuthorizer(policy.authorization), pathNormalization: policy.authorization.mesh.pathNormalization };
}

/** A request as the proxy receives it, before normalization and authentication. */
export interface InboundRequest {
  /** Verified peer identity (Istio form, without `spiffe://`); absent on plaintext. */
  readonly sourcePrincipal?: string;
  readonly sourceIp: string;
  readonly remoteIp?: string;
  readonly destinationIp: string;
  readonly destinationPort: number;
  readonly sni?: string;
  readonly http?: {
    readonly method: string;
    /** The raw request-target: path, optional `?query`, and whatever else the client sent. */
    readonly target: string;
    readonly host: string;
    readonly headers: ReadonlyMap<string, string>;
  };
}

/**
 * The path normalizer's contract (src/policy/path-normalize.ts implements it): it takes the raw
 * request-target, returns the normalized path (what is authorized and forwarded) and the query
 * untouched, or refuses the target.
 */
export type NormalizeTarget = (
  target: string,
  mode: PathNormalization,
) => { readonly ok: true; readonly path: string; readonly query: string | null } | { readonly ok: false; readonly message: string };

export interface InboundDeps {
  readonly normalizeTarget: NormalizeTarget;
  readonly verifyJwt: VerifyRequestJwt;
}

export type InboundStage = 'mtls' | 'request' | 'authentication' | 'authorization';

export interface InboundDecision extends AuthzDecision {
  readonly mtlsMode: MtlsMode;
  /** The step that decided. */
  readonly stage: InboundStage;
  /** HTTP status for a refusal: 400 bad request target, 401 invalid token, 403 denied. */
  readonly httpStatus?: 400 | 401 | 403;
  /** The normalized path that was authorized (and must be forwarded). */
  readonly path?: string;
  /** The verified request principal, when a JWT was accepted. */
  readonly requestPrincipal?: string;
  /** What the proxy changes before forwarding (JWT output headers, token removal). */
  readonly forward?: ForwardChanges;
}

export async function checkInbound(compiled: CompiledWorkloadPolicy, request: InboundRequest, deps: InboundDeps): Promise<InboundDecision> {
  const mtlsMode = mtlsModeForPort(compiled.policy.mtls, request.destinationPort);
  const refuse = (stage: InboundStage, reason: string, httpStatus?: 400 | 401 | 403): InboundDecision => ({
    decision: 'DENY',
    policy: null,
    action: null as AuthzAction | null,
    rule: null,
    reason,
    dryRun: [],
    audit: [],
    mtlsMode,
    stage,
    ...(httpStatus === undefined ? {} : { httpStatus }),
  });

  let sourcePrincipal = request.sourcePrincipal;
  if (mtlsMode === 'STRICT' && sourcePrincipal === undefined) {
    return refuse('mtls', `denied: port ${request.destinationPort} requires mTLS (PeerAuthentication mode STRICT) and the connection is plaintext, so it is refused before authorization`);
  }
  // With mTLS disabled the proxy does not terminate mTLS, so it has no peer identity.
  if (mtlsMode === 'DISABLE') sourcePrincipal = undefined;

  const base = {
    ...(sourcePrincipal === undefined ? {} : { sourcePrincipal }),
    sourceIp: request.sourceIp,
    ...(request.remoteIp === undefined ? {} : { remoteIp: request.remoteIp }),
    destinationIp: request.destinationIp,
    destinationPort: request.destinationPort,
    ...(request.sni === undefined ? {} : { sni: request.sni }),
  };

  if (!request.http) {
    return { ...compiled.authorizer.evaluate(base), mtlsMode, stage: 'authorization' };
  }

  const target = deps.normalizeTarget(request.http.target, compiled.pathNormalization);
  if (!target.ok) return refuse('request', `denied: the request target is refused before authorization: ${target.message}`, 400);

  const authn = await authenticateRequest(compiled.policy.jwt, { headers: Object.fromEntries(request.http.headers), query: target.query }, deps.verifyJwt);
  if (authn.status === 'rejected') return { ...refuse('authentication', `denied: ${authn.reason}`, 401), path: target.path };

  const http: HttpRequestAttributes = { method: request.http.method, path: target.path, host: request.http.host, headers: request.http.headers };
  const decision = compiled.authorizer.evaluate({ ...base, http, ...(authn.status === 'authenticated' ? { jwt: authn.jwt } : {}) });
  return {
    ...decision,
    mtlsMode,
    stage: 'authorization',
    ...(decision.decision === 'DENY' ? { httpStatus: 403 as const } : {}),
    path: target.path,
    ...(authn.status === 'authenticated' ? { requestPrincipal: authn.jwt.principal } : {}),
    forward: authn.forward,
  };
}
