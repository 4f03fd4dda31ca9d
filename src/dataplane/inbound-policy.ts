/**
 * The inbound policy of one config version, as the listener uses it: the snapshot's
 * WorkloadPolicy compiled once, checked per request or connection with src/policy's
 * `checkInbound` — the same code `trellis authz check` runs — using this proxy's path
 * normalizer and JWT verifier (with its JWKS cache, shared across versions).
 */
import type { JwksProvider } from '../policy/jwt.js';
import { checkInbound, compileWorkloadPolicy, type CompiledWorkloadPolicy, type InboundDecision, type InboundDeps, type InboundRequest, type WorkloadPolicy } from '../policy/inbound.js';
import { policyRuntime } from './policy-runtime.js';

export class InboundPolicy {
  private readonly compiled: CompiledWorkloadPolicy;
  private readonly deps: InboundDeps;

  /** Throws if the policy cannot be compiled: the caller keeps the previous version (NACK). */
  constructor(policy: WorkloadPolicy, jwks: JwksProvider) {
    this.compiled = compileWorkloadPolicy(policy);
    this.deps = policyRuntime(jwks);
  }

  /** Never throws: an error inside a check is a denial (fail closed). */
  async check(request: InboundRequest): Promise<InboundDecision> {
    try {
      return await checkInbound(this.compiled, request, this.deps);
    } catch (err) {
      return {
        decision: 'DENY',
        policy: null,
        action: null,
        rule: null,
        reason: `denied: the policy check failed (${(err as Error).message}), and a check that errors denies`,
        dryRun: [],
        audit: [],
        mtlsMode: 'STRICT',
        stage: 'authorization',
        httpStatus: 403,
      };
    }
  }
}
