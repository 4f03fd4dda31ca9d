import * as z from 'zod';

/**
 * Schema pieces shared by every kind. Objects are strict: an unknown field is an error, never
 * silently ignored (a typo such as `principal:` would otherwise widen or narrow a policy).
 */

export const stringList = z.array(z.string());
export const stringMap = z.record(z.string(), z.string());

/** Kubernetes ObjectMeta: the fields Trellis reads, plus the server-set ones `kubectl get -o yaml` prints. */
export const objectMetaSchema = z.strictObject({
  name: z.string(),
  namespace: z.string().optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  creationTimestamp: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  finalizers: stringList.optional(),
  ownerReferences: z.array(z.unknown()).optional(),
  managedFields: z.array(z.unknown()).optional(),
});
export type ObjectMeta = z.infer<typeof objectMetaSchema>;

/** istio.type.v1beta1.WorkloadSelector (security kinds). */
export const workloadSelectorSchema = z.strictObject({
  matchLabels: stringMap.optional(),
});
export type WorkloadSelector = z.infer<typeof workloadSelectorSchema>;

/** istio.type.v1beta1.PolicyTargetReference. */
export const policyTargetReferenceSchema = z.strictObject({
  group: z.string().optional(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
});
export type PolicyTargetReference = z.infer<typeof policyTargetReferenceSchema>;

/** The envelope of every resource; `spec` is kind-specific and may be absent or null (= empty). */
export function resourceSchema<Spec extends z.ZodType>(spec: Spec) {
  return z.strictObject({
    apiVersion: z.string(),
    kind: z.string(),
    metadata: objectMetaSchema,
    spec: spec.nullable().optional(),
    // Written by servers; accepted so `kubectl get -o yaml` output loads, never read.
    status: z.unknown().optional(),
  });
}
