/**
 * The one place that sets up @peculiar/x509 and Node's WebCrypto, plus the small PEM and key
 * helpers every identity module needs. ECDSA P-256 with SHA-256 throughout (DESIGN §2.3).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { TrellisError } from '../api/errors.js';

x509.cryptoProvider.set(webcrypto);

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

export { x509 };

export const SIGNING_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A key pair whose private half can be exported as PKCS#8 PEM for Node's TLS. */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(SIGNING_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

/** A signing key with the algorithm its signatures use. */
export interface SigningKey {
  keys: CryptoKeyPair;
  /** WebCrypto algorithm for signing with this key (hash included). */
  algorithm: { name: string; hash: string; namedCurve?: string };
}

/**
 * Imports a PEM private key (PKCS#8, SEC1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY"). The
 * mesh's own keys are P-256; an operator's root may also be P-384 or RSA (≥ 2048 bits).
 */
export async function importSigningKeyPem(pem: string, what: string, allowed: 'p256' | 'operator' = 'p256'): Promise<SigningKey> {
  let pkcs8: Buffer;
  let spki: Buffer;
  let algorithm: SigningKey['algorithm'];
  try {
    const nodeKey = createPrivateKey(pem);
    const type = nodeKey.asymmetricKeyType;
    const details = nodeKey.asymmetricKeyDetails;
    if (type === 'ec' && details?.namedCurve === 'prime256v1') {
      algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    } else if (allowed === 'operator' && type === 'ec' && details?.namedCurve === 'secp384r1') {
      algorithm = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
    } else if (allowed === 'operator' && type === 'rsa' && (details?.modulusLength ?? 0) >= 2048) {
      algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    } else {
      const accepted = allowed === 'p256' ? 'ECDSA P-256' : 'ECDSA P-256, ECDSA P-384 or RSA of at least 2048 bits';
      throw new Error(`expected ${accepted}, got ${type ?? 'unknown'} ${details?.namedCurve ?? (details?.modulusLength ? `${details.modulusLength} bits` : '')}`.trim());
    }
    pkcs8 = nodeKey.export({ format: 'der', type: 'pkcs8' });
    spki = createPublicKey(nodeKey).export({ format: 'der', type: 'spki' });
  } catch (err) {
    throw new TrellisError('TRELLIS_BAD_KEY', `cannot read ${what}: ${(err as Error).message}`);
  }
  const importAlgorithm = algorithm.name === 'ECDSA' ? { name: 'ECDSA', namedCurve: algorithm.namedCurve as string } : { name: algorithm.name, hash: algorithm.hash };
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, importAlgorithm, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spki, importAlgorithm, true, ['verify']);
  return { keys: { privateKey, publicKey } as CryptoKeyPair, algorithm };
}

/** Imports the mesh's own P-256 signing key. */
export async function importKeyPairPem(pem: string, what: string): Promise<CryptoKeyPair> {
  return (await importSigningKeyPem(pem, what, 'p256')).keys;
}

/** Splits a PEM bundle into its certificates (DER), refusing anything that is not a certificate. */
export function parseCertificatesPem(pem: string, what: string): x509.X509Certificate[] {
  const blocks = pem.match(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g) ?? [];
  if (blocks.length === 0) throw new TrellisError('TRELLIS_BAD_CERT', `${what}: no PEM certificate found`);
  return blocks.map((block, index) => {
    if (!block.startsWith('-----BEGIN CERTIFICATE-----')) {
      throw new TrellisError('TRELLIS_BAD_CERT', `${what}: PEM block ${index + 1} is not a CERTIFICATE`);
    }
    return parseCertificate(block, `${what} (certificate ${index + 1})`);
  });
}

export function parseCertificate(data: string | Uint8Array, what: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(typeof data === 'string' ? data : new Uint8Array(data));
  } catch (err) {
    throw new TrellisError('TRELLIS_BAD_CERT', `${what}: not a valid X.509 certificate (${(err as Error).message})`);
  }
}

export function certificatesToPem(certs: readonly x509.X509Certificate[]): string {
  return certs.map((cert) => `${cert.toString('pem')}\n`).join('');
}

export function toNodeCertificate(cert: x509.X509Certificate): NodeX509 {
  return new NodeX509(Buffer.from(cert.rawData));
}

/**
 * A random positive 128-bit serial number as lowercase hex (RFC 5280 §4.1.2.2: positive, at
 * most 20 octets; random serials make them unpredictable and unique without coordination).
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** Serial numbers compare as lowercase hex without leading zero octets. */
export function normalizeSerial(serial: string): string {
  const hex = serial.toLowerCase().replace(/[^0-9a-f]/g, '');
  return hex.replace(/^(00)+(?=..)/, '');
}

export const OID_SUBJECT_ALT_NAME = '2.5.29.17';

/** Every name in every Subject Alternative Name extension (normally there is at most one). */
export function subjectAltNames(cert: x509.X509Certificate | x509.Pkcs10CertificateRequest): Array<{ type: string; value: string }> {
  return cert.extensions
    .filter((ext) => ext.type === OID_SUBJECT_ALT_NAME)
    .flatMap((ext) => {
      const san = ext instanceof x509.SubjectAlternativeNameExtension ? ext : new x509.SubjectAlternativeNameExtension(ext.rawData);
      return san.names.items.map((name) => ({ type: name.type, value: name.value }));
    });
}

/** URIs among the Subject Alternative Names (no extension → []). */
export function uriSans(cert: x509.X509Certificate | x509.Pkcs10CertificateRequest): string[] {
  return subjectAltNames(cert)
    .filter((name) => name.type === 'url')
    .map((name) => name.value);
}

/** Lowercase hex SHA-256 fingerprint of a certificate's DER encoding. */
export function fingerprint(cert: x509.X509Certificate): string {
  return toNodeCertificate(cert).fingerprint256.replace(/:/g, '').toLowerCase();
}
