/**
 * The per-proxy snapshot: everything one proxy needs and nothing more, as plain JSON. The
 * control plane compiles it from resources + registry (pure), pushes it in four parts, one per
 * resource type, and the proxy applies each part atomically. Proxies never read Istio YAML.
 */
import type { SpiffeBundleJson } from '../identity/bundle.js';
import type { RevocationListJson } from '../identity/revocation.js';
import type { WorkloadPolicy } from '../policy/inbound.js';

/** The resource types of the discovery protocol, pushed and acknowledged independently. */
export const RESOURCE_TYPES = ['workload', 'inbound', 'outbound', 'trust'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** How a port's traffic is parsed. UNKNOWN: sniffed (HTTP/1.1, HTTP/2 prior knowledge, else TCP). */
export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP' | 'UNKNOWN';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** Who this proxy is: from its WorkloadEntry. */
export interface WorkloadSnapshot {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** The SPIFFE ID its SVID must carry. */
  identity: string;
  /** Where mesh peers reach this workload's sidecar (WorkloadEntry address). */
  address: string;
  trustDomain: string;
}

export interface InboundPortSnapshot {
  /** Port name from the WorkloadEntry (`http`, `grpc-api`, …). */
  name: string;
  /** The port the sidecar listens on for mesh traffic (the WorkloadEntry's port). */
  port: number;
  protocol: PortProtocol;
  /** Effective PeerAuthentication mode for this port. */
  mtls: MtlsMode;
}

/**
 * What the inbound side enforces. `policy` is the serializable output of the policy selection
 * step in src/policy (`workloadPolicy`: authorization policies, effective PeerAuthentication,
 * RequestAuthentication JWT rules and mesh options for this workload); the proxy compiles it
 * once per version with `compileWorkloadPolicy`.
 */
export interface InboundSnapshot {
  ports: InboundPortSnapshot[];
  policy: WorkloadPolicy;
}

export interface EndpointSnapshot {
  address: string;
  /**
   * Service port name → the port this endpoint serves it on, resolved as Istio does: the
   * WorkloadEntry's port of that name, else the ServicePort's targetPort, else its number.
   */
  ports: Record<string, number>;
  labels: Record<string, string>;
  /** The SPIFFE ID the endpoint's sidecar must present. */
  identity: string;
  /** `namespace/name` of the WorkloadEntry, for logs. */
  workload: string;
  weight?: number;
}

export interface ServicePortSnapshot {
  number: number;
  name: string;
  protocol: PortProtocol;
  /** The key of `EndpointSnapshot.ports` that holds this port's endpoint port (the port's name). */
  targetPortName: string;
}

export interface ServiceSnapshot {
  /** The service host as declared (e.g. `reviews.default.svc.cluster.local`). */
  host: string;
  /** Other names the workload may use for it (`reviews`, `reviews.default`, …). */
  aliases: string[];
  namespace: string;
  /**
   * ServiceEntry location. MESH_INTERNAL: endpoints run sidecars, the proxy originates mTLS and
   * checks `identities`. MESH_EXTERNAL (Istio's default): endpoints are outside the mesh.
   */
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  ports: ServicePortSnapshot[];
  endpoints: EndpointSnapshot[];
  /** Identities allowed to serve this service (endpoint identities + subjectAltNames). */
  identities: string[];
}

export interface OutboundSnapshot {
  services: ServiceSnapshot[];
}

export interface TrustSnapshot {
  trustDomain: string;
  bundle: SpiffeBundleJson;
  revocations: RevocationListJson;
}

export interface ProxySnapshot {
  workload: WorkloadSnapshot;
  inbound: InboundSnapshot;
  outbound: OutboundSnapshot;
  trust: TrustSnapshot;
}

export type ResourceOfType<T extends ResourceType> = ProxySnapshot[T];
