/**
 * The discovery protocol between a proxy and the control plane: gRPC with xDS semantics and
 * JSON messages. Pure definitions shared by the server (controlplane) and the client
 * (dataplane); neither side imports the other.
 *
 *   Discovery.Stream (bidi, mTLS with the proxy's SVID)
 *     proxy → {node, typeUrl, versionInfo: '', responseNonce: ''}         subscribe
 *     cp    → {typeUrl, versionInfo: 'v3', nonce: 'n7', resource}         push
 *     proxy → {typeUrl, versionInfo: 'v3', responseNonce: 'n7'}          ACK
 *     proxy → {typeUrl, versionInfo: 'v2', responseNonce: 'n7', errorDetail} NACK (keeps v2)
 *   Certificates.Create (unary): a CSR plus a join token (bootstrap), or over an mTLS channel
 *     authenticated by the current SVID (renewal).
 *   Certificates.DescribeToken (unary): the identity a join token is bound to, without using it.
 *   Audit.Report (unary, mTLS with the proxy's SVID): a batch of the proxy's audit records; the
 *     control plane stamps each with the caller's identity and writes it to the mesh's audit log.
 *
 * Subscriptions carry the version the proxy already holds (after a reconnect): when it is still
 * current the server records it as acknowledged and sends nothing for that type, so a proxy that
 * reconnects keeps its state without re-applying it.
 *
 * The control plane serves with the SVID `spiffe://<trust domain>/ns/<root namespace>/sa/
 * trellis-controlplane`; proxies check that identity on every connection.
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import type { SpiffeBundleJson } from '../identity/bundle.js';
import type { ResourceType } from './snapshot.js';

export const DISCOVERY_SERVICE = 'trellis.discovery.v1.Discovery';
export const CERTIFICATE_SERVICE = 'trellis.ca.v1.Certificates';
export const AUDIT_SERVICE = 'trellis.audit.v1.Audit';

/** Most records one Audit.Report call may carry. */
export const MAX_AUDIT_BATCH = 500;

/** Istio's port for discovery over mTLS. */
export const DEFAULT_DISCOVERY_PORT = 15012;

/** The service account the control plane's own SVID names, in the mesh's root namespace. */
export const CONTROL_PLANE_SERVICE_ACCOUNT = 'trellis-controlplane';

export function controlPlaneIdentity(trustDomain: string, rootNamespace: string): string {
  return `spiffe://${trustDomain}/ns/${rootNamespace}/sa/${CONTROL_PLANE_SERVICE_ACCOUNT}`;
}

/**
 * Binary metadata a proxy sends with every call: the DER intermediates of its SVID chain (one
 * value each). The TLS layer of gRPC exposes only the peer's leaf, and a CA under an operator
 * root signs through an intermediate; these are untrusted path-building hints, exactly like the
 * chain in a TLS handshake: the path must still end at a root of the bundle.
 */
export const INTERMEDIATES_METADATA_KEY = 'trellis-svid-intermediates-bin';
/** At most this many intermediates are read from the metadata. */
export const MAX_METADATA_INTERMEDIATES = 4;

/** Trailing metadata on a failed call: the stable TRELLIS_ error code. */
export const ERROR_CODE_METADATA_KEY = 'trellis-error-code';

export interface NodeInfo {
  /** `namespace/name` of the WorkloadEntry this proxy serves. */
  workload: string;
  /** Free-form, for proxy-status: version, hostname, pid. */
  proxyVersion: string;
  hostname?: string;
  pid?: number;
  /**
   * `host:port` where this proxy serves its Prometheus metrics (`/stats/prometheus`), when it
   * does; `trellis top` scrapes it. An unspecified host (0.0.0.0, ::) means the address the
   * control plane sees the proxy connect from.
   */
  metrics?: string;
}

export interface DiscoveryRequest {
  /** Sent on the first request of a stream. */
  node?: NodeInfo;
  typeUrl: ResourceType;
  /** The version the proxy has applied ('' before the first). */
  versionInfo: string;
  /** The nonce of the response this request answers ('' for a subscription). */
  responseNonce: string;
  /** Present on a NACK: why the proxy refused the version. */
  errorDetail?: { message: string };
}

export interface DiscoveryResponse {
  typeUrl: ResourceType;
  versionInfo: string;
  nonce: string;
  resource: unknown;
}

export interface CreateCertificateRequest {
  csrPem: string;
  /** Required when the channel carries no client SVID. */
  joinToken?: string;
  ttlSeconds?: number;
}

export interface CreateCertificateResponse {
  /** Leaf first, then intermediates. */
  chainPem: string;
  bundle: SpiffeBundleJson;
}

export interface DescribeTokenRequest {
  joinToken: string;
}

export interface DescribeTokenResponse {
  identity: string;
}

export interface AuditReportRequest {
  /** Audit records (src/telemetry/audit/record.ts), at most MAX_AUDIT_BATCH. */
  records: unknown[];
}

export interface AuditReportResponse {
  accepted: number;
}

/** JSON codec for the gRPC method definitions. */
export function encodeMessage(message: unknown): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

export function decodeMessage<T>(buffer: Buffer): T {
  return JSON.parse(buffer.toString('utf8')) as T;
}

function method<Req, Res>(service: string, name: string, streaming: boolean): MethodDefinition<Req, Res> {
  return {
    path: `/${service}/${name}`,
    requestStream: streaming,
    responseStream: streaming,
    requestSerialize: encodeMessage,
    requestDeserialize: (buffer: Buffer) => decodeMessage<Req>(buffer),
    responseSerialize: encodeMessage,
    responseDeserialize: (buffer: Buffer) => decodeMessage<Res>(buffer),
  };
}

/** gRPC method definitions (JSON codec), for `server.addService` and `client.make…Request`. */
export const DISCOVERY_METHODS = {
  Stream: method<DiscoveryRequest, DiscoveryResponse>(DISCOVERY_SERVICE, 'Stream', true),
} as const;

export const CERTIFICATE_METHODS = {
  Create: method<CreateCertificateRequest, CreateCertificateResponse>(CERTIFICATE_SERVICE, 'Create', false),
  DescribeToken: method<DescribeTokenRequest, DescribeTokenResponse>(CERTIFICATE_SERVICE, 'DescribeToken', false),
} as const;

export const AUDIT_METHODS = {
  Report: method<AuditReportRequest, AuditReportResponse>(AUDIT_SERVICE, 'Report', false),
} as const;
