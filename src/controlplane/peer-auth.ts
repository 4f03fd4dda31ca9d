/**
 * Who is calling: the client SVID of a gRPC call, verified with verifySvid against the current
 * bundle and revocations. gRPC exposes the peer certificate only when OpenSSL validated the
 * chain against the bundle at handshake; without one the caller is anonymous. Fail closed:
 * anything that does not verify is refused, never treated as a lesser identity.
 */
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import type { TrustBundle } from '../identity/bundle.js';
import type { RevocationList } from '../identity/revocation.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import { verifySvid } from '../identity/verify.js';
import { INTERMEDIATES_METADATA_KEY, MAX_METADATA_INTERMEDIATES } from '../mesh/discovery-protocol.js';

export interface TrustState {
  bundle: TrustBundle;
  revocations: RevocationList;
}

export type PeerAuthentication =
  | { kind: 'anonymous' }
  | { kind: 'verified'; id: SpiffeId; chain: Uint8Array[]; notAfter: Date }
  | { kind: 'refused'; message: string };

/** The parts of a server call (unary or stream) that identify the caller. */
export type CallerContext = Pick<ServerUnaryCall<unknown, unknown>, 'getAuthContext' | 'metadata'>;

export function authenticatePeer(call: CallerContext, trust: TrustState): PeerAuthentication {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!cert?.raw) return { kind: 'anonymous' };
  const chain = [new Uint8Array(cert.raw), ...intermediatesOf(call.metadata)];
  return verifyChain(chain, trust);
}

/** Re-checks a chain verified earlier, e.g. after the revocations changed. */
export function verifyChain(chain: Uint8Array[], trust: TrustState): PeerAuthentication {
  const result = verifySvid(chain, trust.bundle, trust.revocations, { purpose: 'client' });
  if (!result.ok) return { kind: 'refused', message: `client SVID rejected: ${result.reason}: ${result.message}` };
  return { kind: 'verified', id: result.id, chain, notAfter: result.notAfter };
}

function intermediatesOf(metadata: Metadata): Uint8Array[] {
  return metadata
    .get(INTERMEDIATES_METADATA_KEY)
    .filter((value): value is Buffer => Buffer.isBuffer(value))
    .slice(0, MAX_METADATA_INTERMEDIATES)
    .map((value) => new Uint8Array(value));
}
