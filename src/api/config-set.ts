import { compareDiagnostics, type ConfigDiagnostic } from './diagnostics.js';
import { parseDocuments, type ParsedDocument, type ParsedText } from './parse.js';
import {
  resourceId,
  type AuthorizationPolicyResource,
  type DestinationRuleResource,
  type RateLimitResource,
  type SidecarResource,
  type VirtualServiceResource,
  type HandledResource,
  type MeshConfigResource,
  type PeerAuthenticationResource,
  type RequestAuthenticationResource,
  type ServiceEntryResource,
  type UnhandledResource,
  type WorkloadEntryResource,
} from './resources.js';
import { resolveMeshSettings, type MeshSettings } from './schemas/mesh-config.js';
import { ResourceChecker } from './validate/checker.js';
import { checkTrafficReferences } from './validate/traffic-references.js';

/**
 * A validated set of resources grouped by kind, with the mesh settings resolved. A set is all
 * or nothing: if any resource is invalid there is no set, only the list of every error, so a
 * half-applied policy can never happen.
 */
export interface ConfigSet {
  readonly mesh: MeshSettings;
  readonly meshConfig?: MeshConfigResource;
  readonly authorizationPolicies: readonly AuthorizationPolicyResource[];
  readonly peerAuthentications: readonly PeerAuthenticationResource[];
  readonly requestAuthentications: readonly RequestAuthenticationResource[];
  readonly workloadEntries: readonly WorkloadEntryResource[];
  readonly serviceEntries: readonly ServiceEntryResource[];
  readonly virtualServices: readonly VirtualServiceResource[];
  readonly destinationRules: readonly DestinationRuleResource[];
  readonly sidecars: readonly SidecarResource[];
  readonly rateLimits: readonly RateLimitResource[];
  /** Known Istio kinds later features implement; loaded, not used. */
  readonly notHandled: readonly UnhandledResource[];
}

export interface ConfigLoadResult {
  /** Present only when there are no errors. */
  readonly config?: ConfigSet;
  readonly errors: readonly ConfigDiagnostic[];
  readonly warnings: readonly ConfigDiagnostic[];
  /** Every resource that parsed, valid or not (for summaries). */
  readonly resources: readonly (HandledResource | UnhandledResource)[];
}

/** One in-memory YAML text: what a file, a watched directory entry or an etcd value holds. */
export interface ConfigText {
  readonly file: string;
  readonly text: string;
}

/** Parses and validates one YAML text (one or more documents) into a config set. */
export function parseConfigText(text: string, file: string): ConfigLoadResult {
  return buildConfigSet([parseDocuments(text, file)]);
}

/** Parses and validates several texts as one set (cross-file checks such as duplicates apply). */
export function parseConfigTexts(texts: readonly ConfigText[]): ConfigLoadResult {
  return buildConfigSet(texts.map((t) => parseDocuments(t.text, t.file)));
}

/** Builds the set from parsed texts, adding the checks that span resources. */
export function buildConfigSet(parsed: readonly ParsedText[], extraDiagnostics: readonly ConfigDiagnostic[] = []): ConfigLoadResult {
  const diagnostics: ConfigDiagnostic[] = [...extraDiagnostics];
  const documents: ParsedDocument[] = [];
  for (const text of parsed) {
    diagnostics.push(...text.diagnostics);
    documents.push(...text.documents);
  }

  const handled = documents.filter((d) => d.handled);
  diagnostics.push(...checkDuplicates(handled));
  diagnostics.push(...checkTrafficReferences(handled));

  const meshConfigs = handled.filter((d) => d.resource.kind === 'MeshConfig');
  for (const extra of meshConfigs.slice(1)) {
    const first = meshConfigs[0]?.resource.source;
    const checker = new ResourceChecker(extra.source, resourceId(extra.resource.kind, extra.resource.metadata));
    checker.error([], `a mesh has at most one MeshConfig; another is defined at ${first?.file ?? '?'}:${first?.line ?? 0}`, 'TRELLIS_CONFIG_MESH_CONFIG');
    diagnostics.push(...checker.diagnostics);
  }
  const meshConfig = meshConfigs[0]?.resource as MeshConfigResource | undefined;
  const mesh = resolveMeshSettings(meshConfig?.spec);

  for (const doc of handled) {
    const r = doc.resource as HandledResource;
    if (r.kind === 'PeerAuthentication' && r.metadata.namespace === mesh.rootNamespace && Object.keys(r.spec.selector?.matchLabels ?? {}).length > 0) {
      const checker = new ResourceChecker(doc.source, resourceId(r.kind, r.metadata));
      checker.warn(['spec', 'selector'], `a PeerAuthentication with a selector in the root namespace (${mesh.rootNamespace}) is ignored, as in Istio: move it to the workload's namespace`, 'TRELLIS_CONFIG_IGNORED');
      diagnostics.push(...checker.diagnostics);
    }
  }

  diagnostics.sort(compareDiagnostics);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  const warnings = diagnostics.filter((d) => d.severity === 'warning');
  const resources = documents.map((d) => d.resource).sort(compareResources);
  if (errors.length > 0) return { errors, warnings, resources };

  const ofKind = <R extends HandledResource>(kind: R['kind']): R[] => resources.filter((r): r is R => r.kind === kind && isHandled(r));
  const handledSet = new Set(handled.map((d) => d.resource));
  const isHandled = (r: HandledResource | UnhandledResource): boolean => handledSet.has(r);
  const config: ConfigSet = {
    mesh,
    ...(meshConfig === undefined ? {} : { meshConfig }),
    authorizationPolicies: ofKind<AuthorizationPolicyResource>('AuthorizationPolicy'),
    peerAuthentications: ofKind<PeerAuthenticationResource>('PeerAuthentication'),
    requestAuthentications: ofKind<RequestAuthenticationResource>('RequestAuthentication'),
    workloadEntries: ofKind<WorkloadEntryResource>('WorkloadEntry'),
    serviceEntries: ofKind<ServiceEntryResource>('ServiceEntry'),
    virtualServices: ofKind<VirtualServiceResource>('VirtualService'),
    destinationRules: ofKind<DestinationRuleResource>('DestinationRule'),
    sidecars: ofKind<SidecarResource>('Sidecar'),
    rateLimits: ofKind<RateLimitResource>('RateLimit'),
    notHandled: resources.filter((r): r is UnhandledResource => !isHandled(r)),
  };
  return { config, errors, warnings, resources };
}

/** Every resource of the set, of every kind (the MeshConfig first). */
export function configResources(config: ConfigSet): (HandledResource | UnhandledResource)[] {
  return [
    ...(config.meshConfig ? [config.meshConfig] : []),
    ...config.authorizationPolicies,
    ...config.peerAuthentications,
    ...config.requestAuthentications,
    ...config.workloadEntries,
    ...config.serviceEntries,
    ...config.virtualServices,
    ...config.destinationRules,
    ...config.sidecars,
    ...config.rateLimits,
    ...config.notHandled,
  ];
}

/** How many resources the set holds, of every kind. */
export function configResourceCount(config: ConfigSet): number {
  return configResources(config).length;
}

/** A config set with no resources: the mesh defaults, nothing else. */
export function emptyConfigSet(mesh: Partial<MeshSettings> = {}): ConfigSet {
  return {
    mesh: { ...resolveMeshSettings(undefined), ...mesh },
    authorizationPolicies: [],
    peerAuthentications: [],
    requestAuthentications: [],
    workloadEntries: [],
    serviceEntries: [],
    virtualServices: [],
    destinationRules: [],
    sidecars: [],
    rateLimits: [],
    notHandled: [],
  };
}

function checkDuplicates(documents: readonly ParsedDocument[]): ConfigDiagnostic[] {
  const seen = new Map<string, ParsedDocument>();
  const out: ConfigDiagnostic[] = [];
  for (const doc of documents) {
    const id = resourceId(doc.resource.kind, doc.resource.metadata);
    const previous = seen.get(id);
    if (previous) {
      const at = previous.resource.source;
      const checker = new ResourceChecker(doc.source, id);
      checker.error(['metadata', 'name'], `${id} is defined twice; the first definition is at ${at.file}:${at.line}`, 'TRELLIS_CONFIG_DUPLICATE');
      out.push(...checker.diagnostics);
    } else {
      seen.set(id, doc);
    }
  }
  return out;
}

function compareResources(a: { kind: string; metadata: { namespace?: string; name: string } }, b: typeof a): number {
  const key = (r: typeof a): string => `${r.kind}\u0000${r.metadata.namespace ?? ''}\u0000${r.metadata.name}`;
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}
