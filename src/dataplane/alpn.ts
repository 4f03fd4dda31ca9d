/** ALPN values between Trellis sidecars: they name the protocol inside the mTLS connection. */
export const MESH_ALPN = { http2: 'h2', http1: 'http/1.1', tcp: 'trellis-tcp' } as const;
