import type * as z from 'zod';
import type { SourcePosition } from './diagnostics.js';
import { resourceSchema } from './schemas/common.js';
import { meshConfigSpecSchema, type MeshConfigSpec } from './schemas/mesh-config.js';
import { serviceEntrySpecSchema, workloadEntrySpecSchema, type ServiceEntrySpec, type WorkloadEntrySpec } from './schemas/networking.js';
import {
  destinationRuleSpecSchema,
  rateLimitSpecSchema,
  sidecarSpecSchema,
  virtualServiceSpecSchema,
  type DestinationRuleSpec,
  type RateLimitSpec,
  type SidecarSpec,
  type VirtualServiceSpec,
} from './schemas/traffic.js';
import {
  authorizationPolicySpecSchema,
  peerAuthenticationSpecSchema,
  requestAuthenticationSpecSchema,
  type AuthorizationPolicySpec,
  type PeerAuthenticationSpec,
  type RequestAuthenticationSpec,
} from './schemas/security.js';

/**
 * The kinds Trellis reads, the Istio kinds it accepts for later features, and the typed
 * resource objects the rest of the code works with.
 */

export interface ResourceMeta {
  readonly name: string;
  /** Resolved: `default` when the YAML has none; absent only for mesh-wide kinds. */
  readonly namespace?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** RFC 3339 text as written; absent when the YAML has none. */
  readonly creationTimestamp?: string;
}

interface ResourceOf<K extends string, S> {
  readonly kind: K;
  readonly apiVersion: string;
  readonly metadata: ResourceMeta;
  /** Never null: an absent or empty spec is `{}`. */
  readonly spec: S;
  /** Where the document starts, for messages that are about the resource as a whole. */
  readonly source: SourcePosition;
}

export type AuthorizationPolicyResource = ResourceOf<'AuthorizationPolicy', AuthorizationPolicySpec>;
export type PeerAuthenticationResource = ResourceOf<'PeerAuthentication', PeerAuthenticationSpec>;
export type RequestAuthenticationResource = ResourceOf<'RequestAuthentication', RequestAuthenticationSpec>;
export type WorkloadEntryResource = ResourceOf<'WorkloadEntry', WorkloadEntrySpec>;
export type ServiceEntryResource = ResourceOf<'ServiceEntry', ServiceEntrySpec>;
export type MeshConfigResource = ResourceOf<'MeshConfig', MeshConfigSpec>;
export type VirtualServiceResource = ResourceOf<'VirtualService', VirtualServiceSpec>;
export type DestinationRuleResource = ResourceOf<'DestinationRule', DestinationRuleSpec>;
export type SidecarResource = ResourceOf<'Sidecar', SidecarSpec>;
export type RateLimitResource = ResourceOf<'RateLimit', RateLimitSpec>;

/** A known Istio kind that a later feature will implement: loaded, reported, not used yet. */
export interface UnhandledResource {
  readonly kind: string;
  readonly apiVersion: string;
  readonly metadata: ResourceMeta;
  readonly source: SourcePosition;
}

export type HandledResource =
  | AuthorizationPolicyResource
  | PeerAuthenticationResource
  | RequestAuthenticationResource
  | WorkloadEntryResource
  | ServiceEntryResource
  | MeshConfigResource
  | VirtualServiceResource
  | DestinationRuleResource
  | SidecarResource
  | RateLimitResource;

export type HandledKind = HandledResource['kind'];

interface HandledKindInfo {
  readonly kind: HandledKind;
  readonly group: string;
  readonly versions: readonly string[];
  readonly namespaced: boolean;
  readonly schema: z.ZodType;
}

const SECURITY = 'security.istio.io';
const NETWORKING = 'networking.istio.io';
const SECURITY_VERSIONS = ['v1', 'v1beta1'];
const NETWORKING_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'];
const TRELLIS = 'trellis.dev';
const TRELLIS_VERSIONS = ['v1alpha1'];

export const HANDLED_KINDS: readonly HandledKindInfo[] = [
  { kind: 'AuthorizationPolicy', group: SECURITY, versions: SECURITY_VERSIONS, namespaced: true, schema: resourceSchema(authorizationPolicySpecSchema) },
  { kind: 'PeerAuthentication', group: SECURITY, versions: SECURITY_VERSIONS, namespaced: true, schema: resourceSchema(peerAuthenticationSpecSchema) },
  { kind: 'RequestAuthentication', group: SECURITY, versions: SECURITY_VERSIONS, namespaced: true, schema: resourceSchema(requestAuthenticationSpecSchema) },
  { kind: 'WorkloadEntry', group: NETWORKING, versions: NETWORKING_VERSIONS, namespaced: true, schema: resourceSchema(workloadEntrySpecSchema) },
  { kind: 'ServiceEntry', group: NETWORKING, versions: NETWORKING_VERSIONS, namespaced: true, schema: resourceSchema(serviceEntrySpecSchema) },
  { kind: 'VirtualService', group: NETWORKING, versions: NETWORKING_VERSIONS, namespaced: true, schema: resourceSchema(virtualServiceSpecSchema) },
  { kind: 'DestinationRule', group: NETWORKING, versions: NETWORKING_VERSIONS, namespaced: true, schema: resourceSchema(destinationRuleSpecSchema) },
  { kind: 'Sidecar', group: NETWORKING, versions: NETWORKING_VERSIONS, namespaced: true, schema: resourceSchema(sidecarSpecSchema) },
  { kind: 'MeshConfig', group: TRELLIS, versions: TRELLIS_VERSIONS, namespaced: false, schema: resourceSchema(meshConfigSpecSchema) },
  { kind: 'RateLimit', group: TRELLIS, versions: TRELLIS_VERSIONS, namespaced: true, schema: resourceSchema(rateLimitSpecSchema) },
];

/** Istio kinds that later issues implement. They load (with a warning) so a whole Istio config directory can be used. */
export const NOT_HANDLED_KINDS: readonly { kind: string; group: string; versions: readonly string[] }[] = [
  { kind: 'Gateway', group: NETWORKING, versions: NETWORKING_VERSIONS },
  { kind: 'WorkloadGroup', group: NETWORKING, versions: NETWORKING_VERSIONS },
  { kind: 'EnvoyFilter', group: NETWORKING, versions: ['v1alpha3'] },
  { kind: 'ProxyConfig', group: NETWORKING, versions: ['v1beta1'] },
  { kind: 'Telemetry', group: 'telemetry.istio.io', versions: ['v1', 'v1alpha1'] },
  { kind: 'WasmPlugin', group: 'extensions.istio.io', versions: ['v1alpha1'] },
];

export type KindLookup =
  | { readonly status: 'handled'; readonly info: HandledKindInfo }
  | { readonly status: 'not-handled' }
  | { readonly status: 'unknown'; readonly message: string; readonly field: 'apiVersion' | 'kind' };

export function lookupKind(apiVersion: string, kind: string): KindLookup {
  const slash = apiVersion.indexOf('/');
  const group = slash === -1 ? '' : apiVersion.slice(0, slash);
  const version = slash === -1 ? apiVersion : apiVersion.slice(slash + 1);
  const all = [...HANDLED_KINDS, ...NOT_HANDLED_KINDS];
  const inGroup = all.filter((k) => k.group === group);
  if (inGroup.length === 0) {
    const groups = [...new Set(all.map((k) => k.group))].join(', ');
    return { status: 'unknown', field: 'apiVersion', message: `unknown apiVersion "${apiVersion}": Trellis reads the groups ${groups}` };
  }
  const match = inGroup.find((k) => k.kind === kind);
  if (!match) {
    const kinds = inGroup.map((k) => k.kind).join(', ');
    return { status: 'unknown', field: 'kind', message: `unknown kind "${kind}" in ${group}: expected one of ${kinds}` };
  }
  if (!match.versions.includes(version)) {
    const versions = match.versions.map((v) => `${group}/${v}`).join(', ');
    return { status: 'unknown', field: 'apiVersion', message: `${kind} is not served as "${apiVersion}": use ${versions}` };
  }
  const handled = HANDLED_KINDS.find((k) => k.kind === match.kind && k.group === match.group);
  return handled ? { status: 'handled', info: handled } : { status: 'not-handled' };
}

/** `AuthorizationPolicy foo/bar`, or `MeshConfig mesh` for mesh-wide kinds. */
export function resourceId(kind: string, metadata: { name: string; namespace?: string | undefined }): string {
  return metadata.namespace === undefined ? `${kind} ${metadata.name}` : `${kind} ${metadata.namespace}/${metadata.name}`;
}
