import type { FieldPath } from '../diagnostics.js';
import { hostProblem } from '../hosts.js';
import { isDns1123Label, isPortNumber } from '../names.js';
import type { RateLimitSpec, SidecarSpec } from '../schemas/traffic.js';
import type { ResourceChecker } from './checker.js';
import { checkSelectorLabels } from './common.js';
import { checkDuration } from './traffic-values.js';
import { checkList, checkPath, type ValueCheck } from './values.js';

/** Semantic checks of the traffic kinds: Sidecar and RateLimit here, the others in their files. */

export { checkVirtualService } from './virtual-service.js';
export { checkDestinationRule } from './destination-rule.js';

// ---- Sidecar

export function checkSidecar(checker: ResourceChecker, spec: SidecarSpec): void {
  if (spec.egress === undefined && spec.ingress === undefined && spec.outboundTrafficPolicy === undefined && spec.inboundConnectionPool === undefined) {
    checker.error(['spec'], 'an empty Sidecar: set egress or outboundTrafficPolicy (Istio rejects an empty Sidecar too)', 'TRELLIS_CONFIG_MISSING_FIELD');
  }
  if (spec.workloadSelector !== undefined) checkSelectorLabels(checker, ['spec', 'workloadSelector'], 'labels', spec.workloadSelector.labels);
  for (const field of ['ingress', 'inboundConnectionPool'] as const) {
    if (spec[field] !== undefined) {
      checker.warn(['spec', field], `${field} is not supported: inbound traffic is handled by the proxy's own inbound listener; it is ignored`, 'TRELLIS_CONFIG_IGNORED', { atKey: true });
    }
  }

  const egress = spec.egress ?? [];
  const ports = new Map<number, number>();
  egress.forEach((listener, i) => {
    const path = ['spec', 'egress', i];
    if (listener.port === undefined) {
      const catchAll = egress.findIndex((l) => l.port === undefined);
      if (catchAll !== i) checker.error(path, `only one egress listener may omit port (egress[${catchAll}] already does)`);
      else if (i !== egress.length - 1) checker.error(path, 'the egress listener without port must be the last one');
    } else {
      const number = listener.port.number;
      if (!isPortNumber(number)) checker.error([...path, 'port', 'number'], `port ${number} must be an integer from 1 to 65535 (unix socket listeners are not supported)`);
      const first = ports.get(number);
      if (first !== undefined) checker.error([...path, 'port', 'number'], `port ${number} already has an egress listener (egress[${first}])`, 'TRELLIS_CONFIG_DUPLICATE');
      else ports.set(number, i);
    }
    const ignored = (['port', 'bind', 'captureMode'] as const).filter((f) => listener[f] !== undefined);
    if (ignored.length > 0) {
      checker.warn(
        [...path, ignored[0] as string],
        `${ignored.join(', ')}: Trellis has one outbound listener, so egress listeners only narrow the hosts a workload sees; ${ignored.length === 1 ? 'it is' : 'they are'} ignored`,
        'TRELLIS_CONFIG_IGNORED',
        { atKey: true },
      );
    }
    checkEgressHosts(checker, [...path, 'hosts'], listener.hosts);
  });

  const policy = spec.outboundTrafficPolicy;
  if (policy?.egressProxy !== undefined) {
    if (policy.mode !== 'ALLOW_ANY') {
      checker.error(['spec', 'outboundTrafficPolicy', 'egressProxy'], 'egressProxy is only valid with mode ALLOW_ANY', 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
    }
    checker.warn(['spec', 'outboundTrafficPolicy', 'egressProxy'], 'egress proxies are not supported: egressProxy is ignored (unregistered traffic goes direct under ALLOW_ANY)', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
  }
}

/**
 * Egress hosts are `namespace/dnsName`: namespace `*`, `.`, a name, each optionally prefixed
 * with `~` (Istio: exclude); dnsName `*`, `*.suffix` or a fully qualified name (no short names,
 * no partial wildcards).
 */
function checkEgressHosts(checker: ResourceChecker, path: FieldPath, hosts: readonly string[]): void {
  if (hosts.length === 0) {
    checker.error(path, 'an egress listener needs at least one host ("namespace/dnsName", e.g. "./*" or "istio-system/*")', 'TRELLIS_CONFIG_MISSING_FIELD');
    return;
  }
  const seen = new Map<string, Set<string>>();
  hosts.forEach((host, i) => {
    const at = [...path, i];
    const slash = host.indexOf('/');
    if (slash === -1) {
      checker.error(at, `"${host}": egress hosts are "namespace/dnsName", e.g. "./${host === '' ? '*' : host}" or "*/${host === '' ? '*' : host}"`);
      return;
    }
    const namespace = host.slice(0, slash);
    const name = host.slice(slash + 1);
    const ns = namespace.startsWith('~') ? namespace.slice(1) : namespace;
    if (namespace === '' || name === '') {
      checker.error(at, `"${host}": the namespace and the dnsName cannot be empty`);
      return;
    }
    if (ns !== '' && ns !== '*' && ns !== '.' && !isDns1123Label(ns)) {
      checker.error(at, `"${host}": namespace "${namespace}" must be "*", ".", "~" or a namespace name`);
    }
    if (name !== '*') {
      if (!name.includes('.')) checker.error(at, `"${host}": short names are not allowed here: write the full name (e.g. "${name}.<namespace>.svc.cluster.local") or "*"`);
      else {
        const problem = hostProblem(name);
        if (problem) checker.error(at, `"${host}": ${problem}`);
      }
    }
    if (namespace.startsWith('~')) return;
    const key = ns === '.' ? '.' : ns;
    const names = seen.get(key) ?? new Set<string>();
    if (names.has(name) || names.has('*') || (name === '*' && names.size > 0)) {
      checker.warn(at, `"${host}" repeats or overlaps an earlier host of this listener`, 'TRELLIS_CONFIG_IGNORED');
    }
    names.add(name);
    seen.set(key, names);
  });
  if (seen.get('*')?.has('*') === true && seen.size > 1) {
    checker.warn(path, '"*/*" already selects every host: the other entries add nothing', 'TRELLIS_CONFIG_IGNORED');
  }
}

// ---- RateLimit (trellis.dev/v1alpha1)

/** Rate-limit methods match exactly (no patterns), and requests carry upper-case methods. */
const checkExactMethod: ValueCheck = (checker, path, value) => {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value) || value.includes('*')) {
    checker.error(path, `"${value}" is not an HTTP method (methods match exactly: no "*" patterns)`);
  } else if (value !== value.toUpperCase()) {
    checker.error(path, `"${value}": HTTP methods are case-sensitive and requests use upper case, so write "${value.toUpperCase()}"`);
  }
};

/** Envoy's local rate limiter refuses fill intervals under 50ms; Trellis keeps that floor. */
export const MIN_FILL_INTERVAL_MS = 50;

export function checkRateLimit(checker: ResourceChecker, spec: RateLimitSpec): void {
  if (spec.selector !== undefined) checkSelectorLabels(checker, ['spec', 'selector'], 'matchLabels', spec.selector.matchLabels);
  if (spec.rules.length === 0) checker.error(['spec', 'rules'], 'a RateLimit needs at least one rule', 'TRELLIS_CONFIG_MISSING_FIELD');
  spec.rules.forEach((rule, i) => {
    const path = ['spec', 'rules', i];
    const bucket = rule.tokenBucket;
    const bucketPath = [...path, 'tokenBucket'];
    if (!Number.isInteger(bucket.maxTokens) || bucket.maxTokens < 1) {
      checker.error([...bucketPath, 'maxTokens'], `maxTokens ${bucket.maxTokens} must be a positive integer (the burst size)`);
    }
    if (bucket.tokensPerFill !== undefined && (!Number.isInteger(bucket.tokensPerFill) || bucket.tokensPerFill < 1)) {
      checker.error([...bucketPath, 'tokensPerFill'], `tokensPerFill ${bucket.tokensPerFill} must be a positive integer (default 1)`);
    }
    checkDuration(checker, [...bucketPath, 'fillInterval'], bucket.fillInterval, { minMs: MIN_FILL_INTERVAL_MS });
    const match = rule.match;
    if (match === undefined) return;
    const matchPath = [...path, 'match'];
    for (const field of ['paths', 'methods', 'ports'] as const) {
      if (match[field]?.length === 0) {
        checker.error([...matchPath, field], `"${field}: []" matches nothing: remove it to match any, or list values`);
      }
    }
    checkList(checker, [...matchPath, 'paths'], match.paths, checkPath);
    checkList(checker, [...matchPath, 'methods'], match.methods, checkExactMethod);
    match.ports?.forEach((port, j) => {
      if (!isPortNumber(port)) checker.error([...matchPath, 'ports', j], `port ${port} must be an integer from 1 to 65535`);
    });
  });
}
