/**
 * gRPC server credentials whose certificate can change while the server runs: the control
 * plane's SVID rotates and the bundle changes on root rotation. grpc-js re-applies the new
 * secure context to its listening servers; live connections keep their session.
 *
 * Client certificates are requested but optional at the TLS layer (a proxy bootstrapping with
 * a join token has none yet); each RPC then decides what it requires — see peer-auth.ts.
 */
import { ServerCredentials } from '@grpc/grpc-js';
import type { SecureContextOptions } from 'node:tls';
import type { TrustBundle } from '../identity/bundle.js';
import type { Svid } from '../identity/svid.js';
import { MESH_TLS_MIN_VERSION } from '../identity/tls.js';

export class RotatingServerCredentials extends ServerCredentials {
  constructor(svid: Pick<Svid, 'keyPem' | 'chainPem'>, bundle: TrustBundle) {
    super({ requestCert: true, rejectUnauthorized: false, minVersion: MESH_TLS_MIN_VERSION }, contextOptions(svid, bundle));
  }

  update(svid: Pick<Svid, 'keyPem' | 'chainPem'>, bundle: TrustBundle): void {
    this.updateSecureContextOptions(contextOptions(svid, bundle));
  }

  override _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

function contextOptions(svid: Pick<Svid, 'keyPem' | 'chainPem'>, bundle: TrustBundle): SecureContextOptions {
  return { key: svid.keyPem, cert: svid.chainPem, ca: bundle.toPem(), minVersion: MESH_TLS_MIN_VERSION };
}
