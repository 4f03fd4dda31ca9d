/**
 * Test issuers: key pairs generated at test time (no private key is ever committed), their
 * public JWKs, and a signer for tokens with arbitrary claims and headers.
 */
import { createHmac } from 'node:crypto';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload } from 'jose';

export interface TestKey {
  readonly alg: string;
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly publicPem: string;
  sign(claims: JWTPayload, header?: Record<string, unknown>): Promise<string>;
}

export async function makeKey(alg: 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA', kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return {
    alg,
    kid,
    publicJwk,
    publicPem: await exportSPKI(publicKey),
    async sign(claims, header = {}) {
      const protectedHeader = { alg, kid, typ: 'JWT', ...header };
      return new SignJWT(claims).setProtectedHeader(protectedHeader as { alg: string }).sign(privateKey);
    },
  };
}

export function jwksOf(...keys: TestKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => k.publicJwk) };
}

export function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/** An unsecured token (`alg: none`), as an attacker would craft it. */
export function unsecuredToken(claims: JWTPayload, header: Record<string, unknown> = { alg: 'none', typ: 'JWT' }): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}.`;
}

/** The classic key-confusion attack: HS256 with the issuer's public key (PEM) as the HMAC secret. */
export function hmacWithPublicKey(claims: JWTPayload, secret: string, kid?: string): string {
  const header = kid === undefined ? { alg: 'HS256', typ: 'JWT' } : { alg: 'HS256', typ: 'JWT', kid };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
