import { LineCounter, parseAllDocuments } from 'yaml';
import * as z from 'zod';
import type { ConfigDiagnostic, FieldPath } from './diagnostics.js';
import { closestName } from './names.js';
import { lookupKind, resourceId, type HandledResource, type ResourceMeta, type UnhandledResource } from './resources.js';
import type { ObjectMeta } from './schemas/common.js';
import { ResourceChecker } from './validate/checker.js';
import { checkAuthorizationPolicy } from './validate/authorization-policy.js';
import { checkPeerAuthentication, checkRequestAuthentication } from './validate/authentication.js';
import { checkMetadata } from './validate/common.js';
import { checkMeshConfig } from './validate/mesh-config.js';
import { checkServiceEntry, checkWorkloadEntry } from './validate/networking.js';
import { checkDestinationRule, checkRateLimit, checkSidecar, checkVirtualService } from './validate/traffic.js';
import { DocumentSource } from './yaml-source.js';

/**
 * Parses one YAML text (one or more documents) into typed resources and diagnostics. Pure: no
 * I/O. Each resource is checked against its strict schema, then against the semantic rules of
 * its kind; every problem is reported, not only the first.
 */

export interface ParsedDocument {
  readonly resource: HandledResource | UnhandledResource;
  readonly handled: boolean;
  /** Resolves a field path of this resource to its position in the file. */
  readonly source: DocumentSource;
}

export interface ParsedText {
  readonly file: string;
  readonly documents: readonly ParsedDocument[];
  readonly diagnostics: readonly ConfigDiagnostic[];
}

export function parseDocuments(text: string, file: string): ParsedText {
  const lineCounter = new LineCounter();
  const diagnostics: ConfigDiagnostic[] = [];
  const documents: ParsedDocument[] = [];
  // YAML 1.2 core schema: `yes`/`no`/`on` stay strings, as in Kubernetes.
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true, version: '1.2', schema: 'core' });
  for (const doc of docs) {
    const source = new DocumentSource(doc, lineCounter, file);
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        diagnostics.push({ severity: 'error', code: 'TRELLIS_CONFIG_YAML', ...source.at(error.pos[0]), message: `YAML syntax: ${firstLine(error.message)}` });
      }
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      diagnostics.push({ severity: 'error', code: 'TRELLIS_CONFIG_YAML', ...source.position([]), message: `YAML: ${err instanceof Error ? err.message : String(err)}` });
      continue;
    }
    if (value === null || value === undefined) continue; // an empty document, e.g. a trailing `---`
    const parsed = parseResource(value, source);
    diagnostics.push(...parsed.diagnostics);
    if (parsed.document) documents.push(parsed.document);
  }
  return { file, documents, diagnostics };
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

function parseResource(
  value: unknown,
  source: DocumentSource,
): { document?: ParsedDocument; diagnostics: readonly ConfigDiagnostic[] } {
  const envelope = new ResourceChecker(source, undefined);
  if (!isPlainObject(value)) {
    envelope.error([], `a resource is a YAML mapping with apiVersion, kind, metadata and spec; found ${describe(value)}`, 'TRELLIS_CONFIG_NOT_A_RESOURCE');
    return { diagnostics: envelope.diagnostics };
  }
  const { apiVersion, kind } = value;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    for (const [field, fieldValue] of [['apiVersion', apiVersion], ['kind', kind]] as const) {
      if (typeof fieldValue !== 'string') {
        envelope.error([field], fieldValue === undefined ? `missing ${field}` : `${field} must be a string, found ${describe(fieldValue)}`, 'TRELLIS_CONFIG_NOT_A_RESOURCE');
      }
    }
    return { diagnostics: envelope.diagnostics };
  }
  const lookup = lookupKind(apiVersion, kind);
  if (lookup.status === 'unknown') {
    envelope.error([lookup.field], lookup.message, 'TRELLIS_CONFIG_UNKNOWN_KIND');
    return { diagnostics: envelope.diagnostics };
  }

  const metadataValue = value['metadata'];
  const name = isPlainObject(metadataValue) && typeof metadataValue['name'] === 'string' ? metadataValue['name'] : undefined;
  const rawNamespace = isPlainObject(metadataValue) && typeof metadataValue['namespace'] === 'string' ? metadataValue['namespace'] : undefined;
  const namespaced = lookup.status === 'handled' ? lookup.info.namespaced : true;
  const namespace = namespaced ? (rawNamespace ?? 'default') : rawNamespace;
  const id = name === undefined ? undefined : resourceId(kind, { name, namespace });
  const checker = new ResourceChecker(source, id);

  if (lookup.status === 'not-handled') {
    if (name === undefined) {
      checker.error(['metadata', 'name'], 'missing metadata.name', 'TRELLIS_CONFIG_MISSING_FIELD');
      return { diagnostics: checker.diagnostics };
    }
    checker.warn([], `${kind} is an Istio kind Trellis does not handle yet: it is loaded and has no effect`, 'TRELLIS_CONFIG_NOT_HANDLED');
    const metadata = resolveMeta({ name, ...(rawNamespace === undefined ? {} : { namespace: rawNamespace }) }, true);
    const resource: UnhandledResource = { kind, apiVersion, metadata, source: source.position([]) };
    return { document: { resource, handled: false, source }, diagnostics: checker.diagnostics };
  }

  const { info } = lookup;
  const result = parseStrict(info.schema, value, checker);
  if (!result) return { diagnostics: checker.diagnostics };
  const raw = result.data as { metadata: ObjectMeta; spec?: unknown };
  const metadata = resolveMeta(raw.metadata, info.namespaced);
  checkMetadata(checker, raw.metadata, { namespaced: info.namespaced, kind });
  const resource = {
    kind: info.kind,
    apiVersion,
    metadata,
    spec: raw.spec ?? {},
    source: source.position([]),
  } as HandledResource;
  checkKind(checker, resource);
  return { document: { resource, handled: true, source }, diagnostics: checker.diagnostics };
}

function checkKind(checker: ResourceChecker, resource: HandledResource): void {
  switch (resource.kind) {
    case 'AuthorizationPolicy':
      return checkAuthorizationPolicy(checker, resource.metadata, resource.spec);
    case 'PeerAuthentication':
      return checkPeerAuthentication(checker, resource.spec);
    case 'RequestAuthentication':
      return checkRequestAuthentication(checker, resource.spec);
    case 'WorkloadEntry':
      return checkWorkloadEntry(checker, ['spec'], resource.spec, { requireAddress: true });
    case 'ServiceEntry':
      return checkServiceEntry(checker, resource.spec);
    case 'MeshConfig':
      return checkMeshConfig(checker, resource.spec);
    case 'VirtualService':
      return checkVirtualService(checker, resource.metadata, resource.spec);
    case 'DestinationRule':
      return checkDestinationRule(checker, resource.metadata, resource.spec);
    case 'Sidecar':
      return checkSidecar(checker, resource.spec);
    case 'RateLimit':
      return checkRateLimit(checker, resource.spec);
  }
}

function resolveMeta(meta: Pick<ObjectMeta, 'name' | 'namespace' | 'labels' | 'annotations' | 'creationTimestamp'>, namespaced: boolean): ResourceMeta {
  return {
    name: meta.name,
    ...(namespaced ? { namespace: meta.namespace ?? 'default' } : {}),
    labels: meta.labels ?? {},
    annotations: meta.annotations ?? {},
    ...(meta.creationTimestamp === undefined ? {} : { creationTimestamp: meta.creationTimestamp }),
  };
}

/**
 * Parses with the strict schema and reports every issue. Then, so the semantic checks still run
 * and the user sees all errors at once, the value is repaired where that is unambiguous (unknown
 * fields and bad enum values dropped, numbers written where strings belong turned into strings)
 * and parsed again; the repaired value is only used for further diagnostics.
 */
function parseStrict(schema: z.ZodType, value: Record<string, unknown>, checker: ResourceChecker): { data: unknown } | undefined {
  const first = schema.safeParse(value);
  if (first.success) return { data: first.data };
  for (const issue of first.error.issues) reportIssue(checker, schema, value, issue);
  const repaired = structuredClone(value);
  for (const issue of first.error.issues) {
    const path = issueFieldPath(issue);
    if (issue.code === 'unrecognized_keys') {
      const parent = valueAt(repaired, path);
      if (isPlainObject(parent)) for (const key of issue.keys) delete parent[key];
      checker.repaired(path);
      continue;
    }
    const parent = valueAt(repaired, path.slice(0, -1));
    const last = path[path.length - 1];
    const actual = valueAt(repaired, path);
    if (issue.code === 'invalid_type' && issue.expected === 'string' && (typeof actual === 'number' || typeof actual === 'boolean')) {
      if (Array.isArray(parent) && typeof last === 'number') parent[last] = String(actual);
      else if (isPlainObject(parent) && last !== undefined) parent[String(last)] = String(actual);
      continue;
    }
    if (issue.code === 'invalid_value' && isPlainObject(parent) && last !== undefined) {
      delete parent[String(last)];
      checker.repaired(path.slice(0, -1));
      continue;
    }
    return undefined;
  }
  const second = schema.safeParse(repaired);
  return second.success ? { data: second.data } : undefined;
}

function issueFieldPath(issue: z.core.$ZodIssue): FieldPath {
  return issue.path.filter((p): p is string | number => typeof p !== 'symbol');
}

function reportIssue(checker: ResourceChecker, schema: z.ZodType, value: unknown, issue: z.core.$ZodIssue): void {
  const path = issueFieldPath(issue);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeysAt(schema, path);
      for (const key of issue.keys) {
        const hint = closestName(key, allowed);
        const suffix = hint ? `did you mean "${hint}"?` : allowed.length > 0 ? `expected one of ${allowed.join(', ')}` : '';
        checker.error([...path, key], `unknown field "${key}"${suffix ? ` (${suffix})` : ''}`, 'TRELLIS_CONFIG_UNKNOWN_FIELD', { atKey: true });
      }
      return;
    }
    case 'invalid_type': {
      const actual = valueAt(value, path);
      if (actual === undefined) {
        checker.error(path, `missing required field "${String(path[path.length - 1] ?? '')}"`, 'TRELLIS_CONFIG_MISSING_FIELD');
      } else {
        const hint = issue.expected === 'string' && (typeof actual === 'number' || typeof actual === 'boolean') ? ` (quote it: "${String(actual)}")` : '';
        checker.error(path, `expected ${article(issue.expected)}, found ${describe(actual)}${hint}`, 'TRELLIS_CONFIG_WRONG_TYPE');
      }
      return;
    }
    case 'invalid_value': {
      const actual = valueAt(value, path);
      const options = issue.values.map(String);
      const hint = typeof actual === 'string' ? closestName(actual, options) : undefined;
      checker.error(path, `${JSON.stringify(actual)} is not one of ${options.join(', ')}${hint ? ` (did you mean ${hint}?)` : ''}`, 'TRELLIS_CONFIG_INVALID_VALUE');
      return;
    }
    default:
      checker.error(path, issue.message, 'TRELLIS_CONFIG_INVALID_VALUE');
  }
}

/** The field names a strict object accepts at `path`, for "did you mean" hints. */
function allowedKeysAt(schema: z.ZodType, path: FieldPath): string[] {
  let current: unknown = schema;
  for (const segment of path) {
    current = unwrap(current);
    if (current instanceof z.ZodObject) current = (current.shape as Record<string, unknown>)[String(segment)];
    else if (current instanceof z.ZodArray) current = current.element;
    else if (current instanceof z.ZodRecord) current = current.valueType;
    else return [];
  }
  current = unwrap(current);
  return current instanceof z.ZodObject ? Object.keys(current.shape as Record<string, unknown>) : [];
}

function unwrap(schema: unknown): unknown {
  let current = schema;
  while (current instanceof z.ZodOptional || current instanceof z.ZodNullable) current = current.unwrap();
  return current;
}

function valueAt(value: unknown, path: FieldPath): unknown {
  let current = value;
  for (const segment of path) {
    if (Array.isArray(current) && typeof segment === 'number') current = current[segment];
    else if (isPlainObject(current)) current = current[String(segment)];
    else return undefined;
  }
  return current;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${article(typeof value)} (${String(value)})`;
}

function article(type: string): string {
  const names: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'a string', number: 'a number', boolean: 'a boolean (true or false)', int: 'an integer' };
  return names[type] ?? type;
}
