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
 */
import type { SpiffeBundleJson } from '../identity/bundle.js';
import type { ResourceType } from './snapshot.js';

export const DISCOVERY_SERVICE = 'trellis.discovery.v1.Discovery';
export const CERTIFICATE_SERVICE = 'trellis.ca.v1.Certificates';

export interface NodeInfo {
  /** `namespace/name` of the WorkloadEntry this proxy serves. */
  workload: string;
  /** Free-form, for proxy-status: version, hostname, pid. */
  proxyVersion: string;
  hostname?: string;
  pid?: number;
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

/** JSON codec for the gRPC method definitions. */
export function encodeMessage(message: unknown): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

export function decodeMessage<T>(buffer: Buffer): T {
  return JSON.parse(buffer.toString('utf8')) as T;
}
