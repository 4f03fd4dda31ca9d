import * as z from 'zod';
import { policyTargetReferenceSchema, stringList, workloadSelectorSchema } from './common.js';

/**
 * security.istio.io (v1 and v1beta1 share one schema): AuthorizationPolicy, PeerAuthentication,
 * RequestAuthentication and the JWTRule the JWT verifier takes. Field names are Istio's.
 */

export const sourceSchema = z.strictObject({
  principals: stringList.optional(),
  notPrincipals: stringList.optional(),
  requestPrincipals: stringList.optional(),
  notRequestPrincipals: stringList.optional(),
  namespaces: stringList.optional(),
  notNamespaces: stringList.optional(),
  serviceAccounts: stringList.optional(),
  notServiceAccounts: stringList.optional(),
  ipBlocks: stringList.optional(),
  notIpBlocks: stringList.optional(),
  remoteIpBlocks: stringList.optional(),
  notRemoteIpBlocks: stringList.optional(),
  trustDomains: stringList.optional(),
  notTrustDomains: stringList.optional(),
});
export type Source = z.infer<typeof sourceSchema>;

export const operationSchema = z.strictObject({
  hosts: stringList.optional(),
  notHosts: stringList.optional(),
  ports: stringList.optional(),
  notPorts: stringList.optional(),
  methods: stringList.optional(),
  notMethods: stringList.optional(),
  paths: stringList.optional(),
  notPaths: stringList.optional(),
});
export type Operation = z.infer<typeof operationSchema>;

export const conditionSchema = z.strictObject({
  key: z.string(),
  values: stringList.optional(),
  notValues: stringList.optional(),
});
export type Condition = z.infer<typeof conditionSchema>;

export const ruleSchema = z.strictObject({
  from: z.array(z.strictObject({ source: sourceSchema.optional() })).optional(),
  to: z.array(z.strictObject({ operation: operationSchema.optional() })).optional(),
  when: z.array(conditionSchema).optional(),
});
export type Rule = z.infer<typeof ruleSchema>;

export const AUTHZ_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;
export type AuthzAction = (typeof AUTHZ_ACTIONS)[number];

export const authorizationPolicySpecSchema = z.strictObject({
  selector: workloadSelectorSchema.optional(),
  targetRef: policyTargetReferenceSchema.optional(),
  targetRefs: z.array(policyTargetReferenceSchema).optional(),
  rules: z.array(ruleSchema).optional(),
  action: z.enum(AUTHZ_ACTIONS).optional(),
  provider: z.strictObject({ name: z.string().optional() }).optional(),
});
export type AuthorizationPolicySpec = z.infer<typeof authorizationPolicySpecSchema>;

export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
export type MtlsModeSetting = (typeof MTLS_MODES)[number];

const mutualTlsSchema = z.strictObject({ mode: z.enum(MTLS_MODES).optional() });

export const peerAuthenticationSpecSchema = z.strictObject({
  selector: workloadSelectorSchema.optional(),
  mtls: mutualTlsSchema.optional(),
  // Keys are workload port numbers (YAML map keys, so they arrive as strings).
  portLevelMtls: z.record(z.string(), mutualTlsSchema).optional(),
});
export type PeerAuthenticationSpec = z.infer<typeof peerAuthenticationSpecSchema>;

export const jwtHeaderSchema = z.strictObject({
  name: z.string(),
  prefix: z.string().optional(),
});

export const claimToHeaderSchema = z.strictObject({
  header: z.string(),
  claim: z.string(),
});

/** Istio's JWTRule. `jwks_uri` is the alternative spelling Istio's CRD accepts. */
export const jwtRuleSchema = z.strictObject({
  issuer: z.string().optional(),
  audiences: stringList.optional(),
  jwksUri: z.string().optional(),
  jwks_uri: z.string().optional(),
  jwks: z.string().optional(),
  fromHeaders: z.array(jwtHeaderSchema).optional(),
  fromParams: stringList.optional(),
  fromCookies: stringList.optional(),
  outputPayloadToHeader: z.string().optional(),
  forwardOriginalToken: z.boolean().optional(),
  outputClaimToHeaders: z.array(claimToHeaderSchema).optional(),
  timeout: z.string().optional(),
  spaceDelimitedClaims: stringList.optional(),
});
export type JwtRuleInput = z.infer<typeof jwtRuleSchema>;

export const requestAuthenticationSpecSchema = z.strictObject({
  selector: workloadSelectorSchema.optional(),
  targetRef: policyTargetReferenceSchema.optional(),
  targetRefs: z.array(policyTargetReferenceSchema).optional(),
  jwtRules: z.array(jwtRuleSchema).optional(),
});
export type RequestAuthenticationSpec = z.infer<typeof requestAuthenticationSpecSchema>;

/**
 * A JWT rule as the verifier takes it: Istio's JWTRule with the `jwks_uri` spelling folded into
 * `jwksUri`, and the issuer validation requires.
 */
export type JwtRule = Omit<JwtRuleInput, 'jwks_uri' | 'issuer'> & { readonly issuer: string };

export function normalizeJwtRule(input: JwtRuleInput): JwtRule {
  const { jwks_uri: alternative, issuer, ...rule } = input;
  return { ...rule, issuer: issuer ?? '', ...(alternative !== undefined && rule.jwksUri === undefined ? { jwksUri: alternative } : {}) };
}
