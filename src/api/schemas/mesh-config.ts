import * as z from 'zod';
import { parseAllowSampling, type AllowSampling } from '../audit-config.js';
import { OUTBOUND_TRAFFIC_MODES, type OutboundTrafficMode } from './traffic.js';

/**
 * trellis.dev/v1alpha1 MeshConfig: the Trellis-only, mesh-wide settings. At most one per
 * config set; every field has a default so an absent MeshConfig is a valid mesh. New fields
 * (certificate TTL, …) are added here as the features that read them land.
 */

export const DEFAULT_AUTHORIZATIONS = ['ALLOW', 'DENY'] as const;
export type DefaultAuthorization = (typeof DEFAULT_AUTHORIZATIONS)[number];

export const PATH_NORMALIZATIONS = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export type PathNormalization = (typeof PATH_NORMALIZATIONS)[number];

export const meshConfigSpecSchema = z.strictObject({
  trustDomain: z.string().optional(),
  rootNamespace: z.string().optional(),
  defaultAuthorization: z.enum(DEFAULT_AUTHORIZATIONS).optional(),
  pathNormalization: z.enum(PATH_NORMALIZATIONS).optional(),
  /** Istio's MeshConfig field: what happens to traffic for hosts not in the registry. */
  outboundTrafficPolicy: z.strictObject({ mode: z.enum(OUTBOUND_TRAFFIC_MODES).optional() }).optional(),
  /** Trellis: the audit log of authorization decisions (docs/guide/audit.md). */
  audit: z
    .strictObject({
      /** Which allows proxies write: `all`, `none` (default), a fraction `0.1` or `10%`. Denials are always written. */
      allows: z.union([z.string(), z.number()]).optional(),
      /** Where the control plane sends the collected records, besides <state>/audit.log. */
      sinks: z.array(z.string()).optional(),
    })
    .optional(),
});
export type MeshConfigSpec = z.infer<typeof meshConfigSpecSchema>;

/** The resolved mesh settings, every default applied. */
export interface MeshSettings {
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly defaultAuthorization: DefaultAuthorization;
  readonly pathNormalization: PathNormalization;
  readonly outboundTrafficPolicy: OutboundTrafficMode;
  /** Present only when the MeshConfig has `audit`; absent means allows `none`, no extra sinks. */
  readonly audit?: { readonly allows: AllowSampling; readonly sinks: readonly string[] };
}

/** Istio's defaults: an Istio mesh means the same thing under Trellis. */
export const DEFAULT_MESH_SETTINGS: MeshSettings = {
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  defaultAuthorization: 'ALLOW',
  pathNormalization: 'BASE',
  outboundTrafficPolicy: 'ALLOW_ANY',
};

/** The audit settings without MeshConfig `audit`: allows are not recorded, no sinks besides <state>/audit.log. */
export const DEFAULT_AUDIT_SETTINGS: { readonly allows: AllowSampling; readonly sinks: readonly string[] } = { allows: 'none', sinks: [] };

export function resolveMeshSettings(spec: MeshConfigSpec | undefined): MeshSettings {
  return {
    trustDomain: spec?.trustDomain ?? DEFAULT_MESH_SETTINGS.trustDomain,
    rootNamespace: spec?.rootNamespace ?? DEFAULT_MESH_SETTINGS.rootNamespace,
    defaultAuthorization: spec?.defaultAuthorization ?? DEFAULT_MESH_SETTINGS.defaultAuthorization,
    pathNormalization: spec?.pathNormalization ?? DEFAULT_MESH_SETTINGS.pathNormalization,
    outboundTrafficPolicy: spec?.outboundTrafficPolicy?.mode ?? DEFAULT_MESH_SETTINGS.outboundTrafficPolicy,
    ...(spec?.audit === undefined ? {} : { audit: { allows: resolveAllows(spec.audit.allows), sinks: spec.audit.sinks ?? [] } }),
  };
}

/** An invalid value is reported by validation (src/api/validate/mesh-config.ts); here it falls back to the default. */
function resolveAllows(value: string | number | undefined): AllowSampling {
  if (value === undefined) return DEFAULT_AUDIT_SETTINGS.allows;
  try {
    return parseAllowSampling(String(value));
  } catch {
    return DEFAULT_AUDIT_SETTINGS.allows;
  }
}
