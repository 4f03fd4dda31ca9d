import * as z from 'zod';
import { stringList, stringMap } from './common.js';

/**
 * networking.istio.io WorkloadEntry and ServiceEntry (v1, v1beta1 and v1alpha3 share one
 * schema): Istio's model of workloads outside Kubernetes, which fills Trellis's registry.
 */

export const workloadEntrySpecSchema = z.strictObject({
  address: z.string().optional(),
  ports: z.record(z.string(), z.number()).optional(),
  labels: stringMap.optional(),
  network: z.string().optional(),
  locality: z.string().optional(),
  weight: z.number().optional(),
  serviceAccount: z.string().optional(),
});
export type WorkloadEntrySpec = z.infer<typeof workloadEntrySpecSchema>;

export const SERVICE_LOCATIONS = ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const;
export const SERVICE_RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] as const;

export const servicePortSchema = z.strictObject({
  number: z.number(),
  protocol: z.string().optional(),
  name: z.string(),
  targetPort: z.number().optional(),
});
export type ServicePort = z.infer<typeof servicePortSchema>;

export const serviceEntrySpecSchema = z.strictObject({
  hosts: stringList,
  addresses: stringList.optional(),
  ports: z.array(servicePortSchema).optional(),
  location: z.enum(SERVICE_LOCATIONS).optional(),
  resolution: z.enum(SERVICE_RESOLUTIONS).optional(),
  endpoints: z.array(workloadEntrySpecSchema).optional(),
  workloadSelector: z.strictObject({ labels: stringMap.optional() }).optional(),
  exportTo: stringList.optional(),
  subjectAltNames: stringList.optional(),
});
export type ServiceEntrySpec = z.infer<typeof serviceEntrySpecSchema>;
