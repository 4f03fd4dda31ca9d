import { errorMessage } from '../errors.js';
import { parseAllowSampling, parseAuditSinkSpec } from '../audit-config.js';
import { isDns1123Label, isTrustDomain } from '../names.js';
import type { MeshConfigSpec } from '../schemas/mesh-config.js';
import type { ResourceChecker } from './checker.js';

export function checkMeshConfig(checker: ResourceChecker, spec: MeshConfigSpec): void {
  if (spec.trustDomain !== undefined && !isTrustDomain(spec.trustDomain)) {
    checker.error(['spec', 'trustDomain'], `"${spec.trustDomain}" is not a SPIFFE trust domain: lower-case letters, digits, ".", "-" and "_"`);
  }
  if (spec.rootNamespace !== undefined && !isDns1123Label(spec.rootNamespace)) {
    checker.error(['spec', 'rootNamespace'], `"${spec.rootNamespace}" is not a valid namespace name`);
  }
  if (spec.audit?.allows !== undefined) {
    try {
      parseAllowSampling(String(spec.audit.allows));
    } catch (err) {
      checker.error(['spec', 'audit', 'allows'], errorMessage(err));
    }
  }
  (spec.audit?.sinks ?? []).forEach((sink, index) => {
    try {
      parseAuditSinkSpec(sink);
    } catch (err) {
      checker.error(['spec', 'audit', 'sinks', index], errorMessage(err));
    }
  });
}
