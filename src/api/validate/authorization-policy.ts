import { isHttpOnlyCondition, parseConditionKey, type ConditionKey } from '../condition-keys.js';
import type { FieldPath } from '../diagnostics.js';
import type { ResourceMeta } from '../resources.js';
import type { AuthorizationPolicySpec, Condition, Operation, Rule, Source } from '../schemas/security.js';
import type { ResourceChecker } from './checker.js';
import { checkTargetRefs, checkWorkloadSelector, DRY_RUN_ANNOTATION } from './common.js';
import {
  checkIpBlock,
  checkList,
  checkMethod,
  checkPath,
  checkPattern,
  checkPort,
  checkPrincipal,
  checkServiceAccount,
  checkTrustDomain,
  type ValueCheck,
} from './values.js';

/**
 * AuthorizationPolicy validation: Istio's validator's rules, plus Trellis's stricter ones where
 * Istio would accept a policy that silently never (or always) matches.
 */

const SOURCE_CHECKS: Record<keyof Source, ValueCheck | undefined> = {
  principals: checkPrincipal,
  notPrincipals: checkPrincipal,
  requestPrincipals: checkPattern,
  notRequestPrincipals: checkPattern,
  namespaces: undefined, // Istio treats every "*" in a namespace as a glob
  notNamespaces: undefined,
  serviceAccounts: checkServiceAccount,
  notServiceAccounts: checkServiceAccount,
  ipBlocks: checkIpBlock,
  notIpBlocks: checkIpBlock,
  remoteIpBlocks: checkIpBlock,
  notRemoteIpBlocks: checkIpBlock,
  trustDomains: checkTrustDomain,
  notTrustDomains: checkTrustDomain,
};

const OPERATION_CHECKS: Record<keyof Operation, ValueCheck> = {
  hosts: checkPattern,
  notHosts: checkPattern,
  ports: checkPort,
  notPorts: checkPort,
  methods: checkMethod,
  notMethods: checkMethod,
  paths: checkPath,
  notPaths: checkPath,
};

/** Source fields that need an HTTP request (the rest also work on TCP connections). */
const HTTP_ONLY_SOURCE: readonly (keyof Source)[] = ['requestPrincipals', 'notRequestPrincipals'];
const HTTP_ONLY_OPERATION: readonly (keyof Operation)[] = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];

/** What a CUSTOM policy cannot match on (its provider sees the request before identities are checked). */
const CUSTOM_UNSUPPORTED_SOURCE: readonly (keyof Source)[] = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
];

export function checkAuthorizationPolicy(checker: ResourceChecker, metadata: ResourceMeta, spec: AuthorizationPolicySpec): void {
  const action = spec.action ?? 'ALLOW';
  checkWorkloadSelector(checker, ['spec', 'selector'], spec.selector);
  checkTargetRefs(checker, spec);
  checkDryRun(checker, metadata, action);

  const hasRules = spec.rules !== undefined && spec.rules.length > 0;
  if (action === 'CUSTOM') {
    if (!hasRules) {
      checker.error(['spec'], 'a CUSTOM policy without rules never triggers: add rules (an empty rule "{}" matches every request)', 'TRELLIS_CONFIG_MISSING_FIELD');
    }
    if (spec.provider?.name === undefined || spec.provider.name === '') {
      checker.error(spec.provider ? ['spec', 'provider'] : ['spec'], 'a CUSTOM policy needs provider.name', 'TRELLIS_CONFIG_MISSING_FIELD');
    }
  } else if (spec.provider !== undefined) {
    checker.error(['spec', 'provider'], `provider is only used with action CUSTOM, not ${action}: remove it`);
  }
  if (action === 'DENY' && !hasRules) {
    checker.error(['spec'], 'a DENY policy without rules never triggers: add rules (an empty rule "{}" denies every request)', 'TRELLIS_CONFIG_MISSING_FIELD');
  }

  spec.rules?.forEach((rule, index) => checkRule(checker, ['spec', 'rules', index], rule, action));
}

function checkDryRun(checker: ResourceChecker, metadata: ResourceMeta, action: string): void {
  const value = metadata.annotations[DRY_RUN_ANNOTATION];
  if (value === undefined) return;
  const path = ['metadata', 'annotations', DRY_RUN_ANNOTATION];
  if (action !== 'ALLOW' && action !== 'DENY') {
    checker.error(path, `the ${DRY_RUN_ANNOTATION} annotation only works with action ALLOW or DENY, not ${action}`);
  } else if (value !== 'true' && value !== 'false') {
    checker.error(path, `${DRY_RUN_ANNOTATION} must be "true" or "false", found "${value}"`);
  }
}

function checkRule(checker: ResourceChecker, path: FieldPath, rule: Rule, action: string): void {
  // Istio's TCP rule: a DENY rule's HTTP-only fields are ignored on TCP, widening it.
  let httpOnly = false;
  let scopedByPort = false;

  if (rule.from !== undefined && rule.from.length === 0) {
    checker.error([...path, 'from'], '"from: []" matches nothing and is almost always a mistake: remove "from" to match any source, or list sources');
  }
  rule.from?.forEach((from, i) => {
    const fromPath = [...path, 'from', i];
    const source = from.source;
    if (source === undefined) {
      checker.error(fromPath, 'each "from" entry needs a "source"', 'TRELLIS_CONFIG_MISSING_FIELD');
      return;
    }
    const sourcePath = [...fromPath, 'source'];
    const fields = (Object.keys(source) as (keyof Source)[]).filter((k) => source[k] !== undefined);
    if (fields.length === 0) checker.error(sourcePath, 'empty "source": list at least one field, or remove the entry');
    if (fields.some((f) => HTTP_ONLY_SOURCE.includes(f))) httpOnly = true;
    const hasAccounts = source.serviceAccounts !== undefined || source.notServiceAccounts !== undefined;
    const hasIdentities = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].some((f) => source[f as keyof Source] !== undefined);
    if (hasAccounts && hasIdentities) {
      checker.error(sourcePath, 'serviceAccounts/notServiceAccounts cannot be combined with principals or namespaces in one source');
    }
    for (const field of fields) {
      checkList(checker, [...sourcePath, field], source[field], SOURCE_CHECKS[field]);
      if (action === 'CUSTOM' && CUSTOM_UNSUPPORTED_SOURCE.includes(field)) {
        checker.error([...sourcePath, field], `${field} is not supported with action CUSTOM`, 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
      }
    }
  });

  if (rule.to !== undefined && rule.to.length === 0) {
    checker.error([...path, 'to'], '"to: []" matches nothing and is almost always a mistake: remove "to" to match any operation, or list operations');
  }
  rule.to?.forEach((to, i) => {
    const toPath = [...path, 'to', i];
    const operation = to.operation;
    if (operation === undefined) {
      checker.error(toPath, 'each "to" entry needs an "operation"', 'TRELLIS_CONFIG_MISSING_FIELD');
      return;
    }
    const operationPath = [...toPath, 'operation'];
    const fields = (Object.keys(operation) as (keyof Operation)[]).filter((k) => operation[k] !== undefined);
    if (fields.length === 0) checker.error(operationPath, 'empty "operation": list at least one field, or remove the entry');
    if (fields.some((f) => HTTP_ONLY_OPERATION.includes(f))) httpOnly = true;
    if (operation.ports !== undefined || operation.notPorts !== undefined) scopedByPort = true;
    for (const field of fields) checkList(checker, [...operationPath, field], operation[field], OPERATION_CHECKS[field]);
  });

  rule.when?.forEach((condition, i) => {
    const key = checkCondition(checker, [...path, 'when', i], condition, action);
    if (key && isHttpOnlyCondition(key)) httpOnly = true;
    if (key?.attribute === 'destination.port') scopedByPort = true;
  });

  if (action !== 'ALLOW' && httpOnly && !scopedByPort) {
    const verb = action === 'AUDIT' ? 'audits' : 'denies';
    checker.warn(
      path,
      `this ${action} rule uses HTTP attributes, which TCP connections do not have: on TCP they are ignored, so the rule ${verb} TCP traffic more broadly (all of it if nothing else narrows it); scope it with ports`,
      'TRELLIS_CONFIG_TCP_WIDENED',
    );
  }
}

function checkCondition(checker: ResourceChecker, path: FieldPath, condition: Condition, action: string): ConditionKey | undefined {
  const parsed = parseConditionKey(condition.key);
  if (!parsed.ok) {
    checker.error([...path, 'key'], parsed.message);
    return undefined;
  }
  const hasValues = condition.values !== undefined && condition.values.length > 0;
  const hasNotValues = condition.notValues !== undefined && condition.notValues.length > 0;
  if (!hasValues && !hasNotValues) {
    checker.error(path, `condition "${condition.key}" needs values or notValues`, 'TRELLIS_CONFIG_MISSING_FIELD');
  }
  const check = conditionValueCheck(parsed.key);
  checkList(checker, [...path, 'values'], condition.values, check);
  checkList(checker, [...path, 'notValues'], condition.notValues, check);
  if (action === 'CUSTOM') {
    const attribute = parsed.key.attribute;
    if (['source.namespace', 'source.serviceAccount', 'source.principal'].includes(attribute) || attribute.startsWith('request.auth.')) {
      checker.error([...path, 'key'], `${condition.key} is not supported with action CUSTOM`);
    }
  }
  return parsed.key;
}

function conditionValueCheck(key: ConditionKey): ValueCheck | undefined {
  switch (key.attribute) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return checkIpBlock;
    case 'destination.port':
      return checkPort;
    case 'source.serviceAccount':
      return checkServiceAccount;
    case 'source.trustDomain':
      return checkTrustDomain;
    case 'source.principal':
      return checkPrincipal;
    case 'source.namespace':
      return undefined;
    default:
      return checkPattern;
  }
}
