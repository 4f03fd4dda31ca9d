import type { FieldPath } from '../diagnostics.js';
import { isDns1123Label, isDns1123Subdomain, labelKeyProblem, labelValueProblem } from '../names.js';
import type { ObjectMeta, PolicyTargetReference, WorkloadSelector } from '../schemas/common.js';
import type { ResourceChecker } from './checker.js';

/** Checks shared by several kinds: metadata, selectors, targetRefs, label maps. */

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export function checkMetadata(checker: ResourceChecker, metadata: ObjectMeta, options: { namespaced: boolean; kind: string }): void {
  if (!isDns1123Subdomain(metadata.name)) {
    checker.error(['metadata', 'name'], `"${metadata.name}" is not a valid name: lower-case letters, digits, "-" and ".", at most 253 characters`);
  }
  if (metadata.namespace !== undefined) {
    if (!options.namespaced) {
      checker.error(['metadata', 'namespace'], `${options.kind} is mesh-wide: remove metadata.namespace`);
    } else if (!isDns1123Label(metadata.namespace)) {
      checker.error(['metadata', 'namespace'], `"${metadata.namespace}" is not a valid namespace: lower-case letters, digits and "-", at most 63 characters`);
    }
  }
  if (metadata.creationTimestamp !== undefined && (!RFC3339.test(metadata.creationTimestamp) || Number.isNaN(Date.parse(metadata.creationTimestamp)))) {
    checker.error(['metadata', 'creationTimestamp'], `"${metadata.creationTimestamp}" is not an RFC 3339 time such as "2024-05-01T12:00:00Z"`);
  }
  checkLabelMap(checker, ['metadata', 'labels'], metadata.labels);
  if (metadata.annotations?.[DRY_RUN_ANNOTATION] !== undefined && options.kind !== 'AuthorizationPolicy') {
    checker.error(['metadata', 'annotations', DRY_RUN_ANNOTATION], `the ${DRY_RUN_ANNOTATION} annotation is only supported on AuthorizationPolicy: remove it`, 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
  }
}

export function checkLabelMap(checker: ResourceChecker, path: FieldPath, labels: Readonly<Record<string, string>> | undefined): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) checker.error([...path, key], `label key "${key}": ${keyProblem}`, 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
    const valueProblem = labelValueProblem(value);
    if (valueProblem) checker.error([...path, key], `label value "${value}": ${valueProblem}`);
  }
}

/** Istio's selector rules: no empty keys, no wildcards; an empty selector selects everything (warned). */
export function checkWorkloadSelector(checker: ResourceChecker, path: FieldPath, selector: WorkloadSelector | undefined): void {
  if (selector !== undefined) checkSelectorLabels(checker, path, 'matchLabels', selector.matchLabels);
}

/** The label map of a present selector (`matchLabels` in security kinds, `labels` in ServiceEntry). */
export function checkSelectorLabels(
  checker: ResourceChecker,
  path: FieldPath,
  labelsField: string,
  labels: Readonly<Record<string, string>> | undefined,
): void {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) {
    checker.warn(path, 'selector without labels selects every workload in scope; remove it or add labels', 'TRELLIS_CONFIG_IGNORED');
  }
  for (const [key, value] of entries) {
    const keyPath = [...path, labelsField, key];
    if (key === '') {
      checker.error(keyPath, 'empty label key in selector', 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
      continue;
    }
    if (key.includes('*') || value.includes('*')) {
      checker.error(keyPath, `wildcard in selector "${key}=${value}": selectors match labels exactly`);
      continue;
    }
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) checker.error(keyPath, `label key "${key}": ${keyProblem}`, 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
    const valueProblem = labelValueProblem(value);
    if (valueProblem) checker.error(keyPath, `label value "${value}": ${valueProblem}`);
  }
}

const TARGET_KINDS: readonly { group: string; kind: string }[] = [
  { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
  { group: 'gateway.networking.k8s.io', kind: 'GatewayClass' },
  { group: 'core', kind: 'Service' },
  { group: 'networking.istio.io', kind: 'ServiceEntry' },
];

/**
 * `targetRef`/`targetRefs` attach a policy to gateways and waypoints, never to sidecars
 * (Istio ignores such policies for sidecars). Trellis has no gateways yet: valid references
 * are accepted with a warning that the policy applies to no workload.
 */
export function checkTargetRefs(
  checker: ResourceChecker,
  spec: { selector?: WorkloadSelector | undefined; targetRef?: PolicyTargetReference | undefined; targetRefs?: readonly PolicyTargetReference[] | undefined },
): void {
  const refs: [FieldPath, PolicyTargetReference][] = [];
  if (spec.targetRef) refs.push([['spec', 'targetRef'], spec.targetRef]);
  (spec.targetRefs ?? []).forEach((ref, i) => refs.push([['spec', 'targetRefs', i], ref]));
  const kinds = [spec.selector !== undefined, spec.targetRef !== undefined, (spec.targetRefs ?? []).length > 0].filter(Boolean).length;
  if (kinds > 1) {
    checker.error(['spec'], 'set at most one of selector, targetRef and targetRefs');
  }
  for (const [path, ref] of refs) {
    if (ref.name === '') checker.error([...path, 'name'], 'targetRef name must not be empty');
    if (ref.namespace !== undefined && ref.namespace !== '') {
      checker.error([...path, 'namespace'], 'targetRef namespace must not be set: cross-namespace references are not supported');
    }
    const group = ref.group === undefined || ref.group === '' ? 'core' : ref.group;
    if (!TARGET_KINDS.some((t) => t.group === group && t.kind === ref.kind)) {
      const allowed = TARGET_KINDS.map((t) => `${t.group}/${t.kind}`).join(', ');
      checker.error(path, `targetRef to ${group}/${ref.kind} is not supported: use one of ${allowed}`);
    }
  }
  if (refs.length > 0) {
    checker.warn(refs[0]?.[0] ?? ['spec'], 'targetRefs attach a policy to gateways and waypoints, which Trellis does not run yet: this policy applies to no workload', 'TRELLIS_CONFIG_NOT_HANDLED');
  }
}

/** Kubernetes names for service accounts and similar references. */
export function checkDnsSubdomain(checker: ResourceChecker, path: FieldPath, value: string | undefined, what: string): void {
  if (value !== undefined && !isDns1123Subdomain(value)) {
    checker.error(path, `"${value}" is not a valid ${what}: lower-case letters, digits, "-" and ".", at most 253 characters`);
  }
}
