/**
 * Peer metadata exchange between sidecars, Trellis's counterpart of Istio's
 * `x-envoy-peer-metadata` header: the client sidecar tells the server sidecar which workload is
 * calling (name, namespace, the labels the standard metrics use), because a SPIFFE ID carries
 * only namespace and service account. The header is added only on mesh mTLS requests, removed
 * by the server sidecar before the application sees it, and believed only from a peer whose SVID
 * verified and whose namespace it matches (a workload can claim another workload's name in its
 * own namespace, never another namespace). It feeds metrics and logs, never authorization.
 */
import type { WorkloadMetadata } from './istio-labels.js';

export const PEER_METADATA_HEADER = 'x-trellis-peer-metadata';

/** The labels Istio's metrics read (app, version, canonical service and revision, workload name). */
const EXCHANGED_LABELS = [
  'app',
  'version',
  'service.istio.io/canonical-name',
  'service.istio.io/canonical-revision',
  'app.kubernetes.io/name',
  'app.kubernetes.io/version',
] as const;

/** Longer headers are ignored (base64 of a few short strings is far below this). */
const MAX_HEADER_LENGTH = 2048;
const MAX_VALUE_LENGTH = 253;

interface Wire {
  n?: string;
  ns?: string;
  c?: string;
  l?: Record<string, string>;
}

/** The header value for this workload: base64url of a small JSON object. */
export function encodePeerMetadata(meta: WorkloadMetadata): string {
  const labels: Record<string, string> = {};
  for (const key of EXCHANGED_LABELS) {
    const value = meta.labels?.[key];
    if (value !== undefined) labels[key] = value;
  }
  const wire: Wire = {
    ...(meta.name === undefined ? {} : { n: meta.name }),
    ...(meta.namespace === undefined ? {} : { ns: meta.namespace }),
    ...(meta.cluster === undefined ? {} : { c: meta.cluster }),
    ...(Object.keys(labels).length === 0 ? {} : { l: labels }),
  };
  return Buffer.from(JSON.stringify(wire), 'utf8').toString('base64url');
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_VALUE_LENGTH ? value : undefined;
}

/**
 * The caller's metadata from a header value, or undefined when it is malformed or claims a
 * namespace other than `peerNamespace` (the namespace of the caller's verified SPIFFE ID).
 */
export function decodePeerMetadata(value: string, peerNamespace: string | undefined): WorkloadMetadata | undefined {
  if (value.length > MAX_HEADER_LENGTH || peerNamespace === undefined) return undefined;
  let wire: unknown;
  try {
    wire = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) return undefined;
  const { n, ns, c, l } = wire as Record<string, unknown>;
  if (text(ns) !== peerNamespace) return undefined;
  const labels: Record<string, string> = {};
  if (typeof l === 'object' && l !== null && !Array.isArray(l)) {
    for (const key of EXCHANGED_LABELS) {
      const label = text((l as Record<string, unknown>)[key]);
      if (label !== undefined) labels[key] = label;
    }
  }
  const name = text(n);
  const cluster = text(c);
  return { namespace: peerNamespace, labels, ...(name === undefined ? {} : { name }), ...(cluster === undefined ? {} : { cluster }) };
}
