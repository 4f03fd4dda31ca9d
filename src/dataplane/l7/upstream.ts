/**
 * Upstream adapters: send an L7Request over HTTP/1.1 (through a pooling Agent) or HTTP/2 (over
 * a shared session) and return the L7Response as soon as the response headers arrive. Bodies
 * stream in both directions with backpressure.
 */
import http from 'node:http';
import type http2 from 'node:http2';
import https from 'node:https';
import { fromRawHeaders, type HeaderList, stripHopByHop } from '../headers.js';
import { forward } from './streams.js';
import type { L7Request, L7Response } from './types.js';

export class UpstreamError extends Error {
  /** Envoy-style response flag: UF (connect failure), UC (connection reset), UH (no healthy upstream)… */
  readonly flag: string;

  constructor(flag: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.flag = flag;
  }
}

export interface Http1Target {
  host: string;
  port: number;
  agent: http.Agent | https.Agent;
  secure: boolean;
  /** A new connection that is not up by then fails the attempt (UF); pooled ones are not timed. */
  connectTimeoutMs?: number;
}

export function sendHttp1(request: L7Request, target: Http1Target): Promise<L7Response> {
  return new Promise((resolve, reject) => {
    const raw: string[] = ['Host', request.authority];
    for (const [name, value] of request.headers) raw.push(name, value);
    const options: http.RequestOptions = {
      host: target.host,
      port: target.port,
      method: request.method,
      path: request.path,
      headers: raw as unknown as http.OutgoingHttpHeaders, // Node accepts the raw [name, value, …] form, which keeps case.
      agent: target.agent,
      setHost: false,
      signal: request.signal,
    };
    const upstream = (target.secure ? https : http).request(options);
    upstream.once('response', (res) => {
      resolve({
        status: res.statusCode ?? 502,
        headers: stripHopByHop(fromRawHeaders(res.rawHeaders)),
        body: res,
        trailers: () => (res.rawTrailers.length > 0 ? fromRawHeaders(res.rawTrailers) : undefined),
      });
    });
    upstream.once('error', (err) => reject(classify(err)));
    if (target.connectTimeoutMs !== undefined) limitConnectTime(upstream, target.connectTimeoutMs, target.secure);
    // Failures surface through the request's 'error' event (above).
    forward(request.body, upstream).catch(() => undefined);
  });
}

/** Reuses one HTTP/2 session per key until it closes, errors or receives GOAWAY. */
function limitConnectTime(upstream: http.ClientRequest, timeoutMs: number, secure: boolean): void {
  upstream.once('socket', (socket) => {
    if (!socket.connecting) return;
    const timer = setTimeout(() => upstream.destroy(Object.assign(new Error(`connect timeout after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
  });
}

/** How long a retired HTTP/2 session stays quiet before it closes (at most). */
const RETIRED_QUIET_MS = 1_000;

export class Http2SessionPool {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private readonly streams = new WeakMap<http2.ClientHttp2Session, number>();

  /**
   * The pooled session for `key`, connecting one if needed. With `maxStreams`, a session is
   * retired once it has been handed out that many times: it leaves the pool at once, and
   * closes gracefully once quiet (closing it right away could cancel the stream being opened).
   */
  get(key: string, connect: () => http2.ClientHttp2Session, maxStreams?: number): http2.ClientHttp2Session {
    const session = this.pooled(key, connect);
    if (maxStreams !== undefined && maxStreams > 0) {
      const count = (this.streams.get(session) ?? 0) + 1;
      this.streams.set(session, count);
      if (count >= maxStreams) {
        this.sessions.delete(key);
        session.setTimeout(RETIRED_QUIET_MS, () => session.close());
      }
    }
    return session;
  }

  private pooled(key: string, connect: () => http2.ClientHttp2Session): http2.ClientHttp2Session {
    const existing = this.sessions.get(key);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const session = connect();
    this.sessions.set(key, session);
    const forget = (): void => {
      if (this.sessions.get(key) === session) this.sessions.delete(key);
    };
    session.once('close', forget);
    session.once('goaway', forget);
    session.on('error', forget);
    // Idle sessions must not keep the process alive.
    session.unref();
    return session;
  }

  closeAll(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}

export function sendHttp2(request: L7Request, session: http2.ClientHttp2Session, scheme: 'http' | 'https'): Promise<L7Response> {
  return new Promise((resolve, reject) => {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': request.method,
      ':path': request.path,
      ':authority': request.authority,
      ':scheme': scheme,
    };
    for (const [name, value] of request.headers) {
      const lower = name.toLowerCase();
      const existing = headers[lower];
      headers[lower] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [String(existing), value];
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { signal: request.signal });
    } catch (err) {
      reject(classify(err));
      return;
    }
    let trailers: HeaderList | undefined;
    stream.once('trailers', (incoming: http2.IncomingHttpHeaders) => {
      trailers = headerListOf(incoming);
    });
    stream.once('response', (incoming) => {
      resolve({ status: Number(incoming[':status'] ?? 502), headers: stripHopByHop(headerListOf(incoming)), body: stream, trailers: () => trailers });
    });
    stream.once('error', (err) => reject(classify(err)));
    // Failures surface through the stream's 'error' event (above).
    forward(request.body, stream).catch(() => undefined);
  });
}

function headerListOf(headers: http2.IncomingHttpHeaders): HeaderList {
  const list: HeaderList = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) list.push([name, String(item)]);
  }
  return list;
}

/** Maps a socket or TLS failure to the response flag and message a user can act on. */
export function classify(err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const error = err as NodeJS.ErrnoException;
  const code = error?.code ?? '';
  if (code === 'ABORT_ERR') return new UpstreamError('DC', 'downstream closed the request', { cause: err });
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT') {
    return new UpstreamError('UF', `upstream connect error: ${code}`, { cause: err });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_HTTP2_STREAM_ERROR' || code === 'ERR_HTTP2_SESSION_ERROR') {
    return new UpstreamError('UC', `upstream connection reset (${code})`, { cause: err });
  }
  if (/SVID|certificate|handshake|TLS|SSL/i.test(error?.message ?? '') || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL')) {
    return new UpstreamError('UF', `upstream TLS error: ${error.message}`, { cause: err });
  }
  return new UpstreamError('UF', `upstream error: ${error?.message ?? String(err)}`, { cause: err });
}
