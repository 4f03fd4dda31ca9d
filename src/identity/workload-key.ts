/**
 * The workload side of issuance: the key pair is generated here, where it is used, and only the
 * CSR (public key + requested SPIFFE ID, signed with the private key) ever leaves.
 */
import type { SpiffeId } from './spiffe-id.js';
import { exportPrivateKeyPem, generateKeyPair, SIGNING_ALGORITHM, x509 } from './x509.js';

export interface KeyAndCsr {
  keyPem: string;
  csrPem: string;
}

export async function createKeyAndCsr(id: SpiffeId): Promise<KeyAndCsr> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id.toString() }], true)],
  });
  return { keyPem: await exportPrivateKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}
