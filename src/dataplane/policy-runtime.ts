import { verifyRequestJwt, type JwksProvider } from '../policy/jwt.js';
import type { InboundDeps } from '../policy/inbound.js';
import { normalizePath } from '../policy/path-normalize.js';

/**
 * The implementations `checkInbound` runs with in the CLI: the same path normalizer and JWT
 * verifier the proxies use. `provider` fetches `jwksUri` key sets (file:// or loopback URLs
 * work offline); without one, only inline `jwks` can verify.
 */
export function policyRuntime(provider?: JwksProvider): InboundDeps {
  return {
    normalizeTarget: normalizePath,
    verifyJwt: (rules, request) => verifyRequestJwt(rules, request, provider === undefined ? {} : { provider }),
  };
}
