/**
 * Downstream adapters: HTTP/1.1 and HTTP/2 servers that turn each request into an L7Request,
 * run it through a handler, and write the L7Response back. The servers never listen themselves;
 * the listener hands them connections it has already classified (and authenticated).
 */
import http from 'node:http';
import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { ConnectionInfo } from '../connection.js';
import { fromRawHeaders, getHeader, type HeaderList, removeHeader, stripHopByHop } from '../headers.js';
import { localReply } from './local-reply.js';
import { forward, writeAll } from './streams.js';
import type { L7Handler, L7Request, L7Response } from './types.js';

export interface DownstreamOptions {
  handler: L7Handler;
  /** Reports handler failures (the client gets a 500/503). */
  onError?: (error: unknown, request: L7Request) => void;
  /**
   * Called once per request after the response was written (or failed), for metrics and the
   * access log. Synchronous and must not throw; without it nothing is measured.
   */
  onComplete?: (request: L7Request, outcome: RequestOutcome) => void;
}

/** How one request went, as the downstream side saw it. */
export interface RequestOutcome {
  /** Epoch milliseconds when the request reached the pipeline. */
  readonly startTime: number;
  readonly durationMs: number;
  /** Until the response headers were ready (upstream time for proxied requests). */
  readonly headersMs?: number;
  /** The path as received, before normalization and rewrites. */
  readonly path: string;
  /** 0 when no response was produced. */
  readonly responseCode: number;
  readonly grpcStatus?: number;
  /** Header sizes (names + values, as Envoy's byteSize) plus body bytes. */
  readonly requestBytes: number;
  readonly responseBytes: number;
}

/** Node's header limits, raised to Envoy's default of 60 KiB. */
const MAX_HEADER_BYTES = 60 * 1024;

/** A server that never listens: the listener hands it classified connections with their info. */
export interface DownstreamServer {
  accept(socket: Duplex, info: ConnectionInfo): void;
  /** Closes idle keep-alive connections; active ones finish their requests. */
  close(): void;
}

export function createHttp1Server(options: DownstreamOptions): DownstreamServer & { server: http.Server } {
  const infos = new WeakMap<object, ConnectionInfo>();
  // Requests in flight per connection, so closing can end idle keep-alive connections at once
  // and busy ones right after their response.
  const inFlight = new Map<Duplex, number>();
  let closing = false;
  const finished = (socket: Duplex): void => {
    const count = (inFlight.get(socket) ?? 1) - 1;
    inFlight.set(socket, count);
    if (closing && count === 0) socket.destroy();
  };
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 0, keepAliveTimeout: 60_000 }, (req, res) => {
    const info = infos.get(req.socket);
    if (!info) {
      res.destroy();
      return;
    }
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    if (closing) res.shouldKeepAlive = false;
    res.once('close', () => finished(socket));
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    const target = parseRequestTarget(req.url ?? '/', req.headers.host ?? '');
    const request: L7Request = {
      method: req.method ?? 'GET',
      authority: target.authority,
      path: target.path,
      scheme: info.peer ? 'https' : 'http',
      headers: removeHeader(stripHopByHop(fromRawHeaders(req.rawHeaders)), 'host'),
      body: req,
      protocol: 'HTTP/1.1',
      connection: info,
      signal: controller.signal,
      context: { responseFlags: [] },
    };
    run(options, request, (response, count) => writeHttp1(res, response, count));
  });
  // Tolerate slow or idle keep-alive clients like Envoy does; each request has its own limits.
  server.headersTimeout = 60_000;
  return {
    server,
    accept(socket, info) {
      infos.set(socket, info);
      inFlight.set(socket, 0);
      socket.once('close', () => inFlight.delete(socket));
      server.emit('connection', socket);
    },
    close() {
      closing = true;
      for (const [socket, count] of inFlight) if (count === 0) socket.destroy();
    },
  };
}

export function createHttp2Server(options: DownstreamOptions): DownstreamServer & { server: http2.Http2Server } {
  // Sessions are created synchronously while 'connection' is emitted: that is when each one
  // learns its connection's info (session.socket is a proxy object, useless as a map key).
  const infos = new WeakMap<http2.Http2Session, ConnectionInfo>();
  const sessions = new Set<http2.Http2Session>();
  let accepting: ConnectionInfo | undefined;
  const server = http2.createServer({ maxHeaderListPairs: 256, settings: { maxHeaderListSize: MAX_HEADER_BYTES } });
  server.on('session', (session) => {
    if (accepting) infos.set(session, accepting);
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    const info = stream.session ? infos.get(stream.session) : undefined;
    if (!info) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const controller = new AbortController();
    stream.once('close', () => {
      if (!stream.writableFinished) controller.abort();
    });
    const list: HeaderList = [];
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith(':') || value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) list.push([name, String(item)]);
    }
    const request: L7Request = {
      method: String(headers[':method'] ?? 'GET'),
      authority: String(headers[':authority'] ?? headers['host'] ?? ''),
      path: String(headers[':path'] ?? '/'),
      scheme: info.peer ? 'https' : 'http',
      headers: removeHeader(stripHopByHop(list), 'host'),
      body: stream,
      protocol: 'HTTP/2',
      connection: info,
      signal: controller.signal,
      context: { responseFlags: [] },
    };
    run(options, request, (response, count) => writeHttp2(stream, response, count));
  });
  return {
    server,
    accept(socket, info) {
      accepting = info;
      try {
        server.emit('connection', socket);
      } finally {
        accepting = undefined;
      }
    },
    close() {
      for (const session of sessions) session.close();
    },
  };
}

/** Splits an origin-form or absolute-form request target into authority and path. */
export function parseRequestTarget(target: string, hostHeader: string): { authority: string; path: string } {
  if (target.startsWith('/') || target === '*') return { authority: hostHeader, path: target };
  const match = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)([^#]*)/.exec(target);
  if (!match) return { authority: hostHeader, path: target };
  const path = match[2] ?? '';
  return { authority: match[1] ?? hostHeader, path: path === '' ? '/' : path.startsWith('?') ? `/${path}` : path };
}

/** The handler's response; a handler that throws gets a plain 500 (flag DPE) and is reported. */
function handle(options: DownstreamOptions, request: L7Request): Promise<L7Response> {
  return options.handler(request).catch((error: unknown) => {
    options.onError?.(error, request);
    request.context.responseFlags.push('DPE');
    return localReply(request, 500, 'internal proxy error');
  });
}

function run(options: DownstreamOptions, request: L7Request, write: (response: L7Response, count?: (bytes: number) => void) => Promise<void>): void {
  if (options.onComplete) return measured(options, options.onComplete, request, write);
  handle(options, request)
    .then(write)
    .catch(() => {
      // The downstream went away while we wrote: nothing left to tell it.
    });
}

/** `run` with measurements: sizes, timings and the outcome reported through `onComplete`. */
function measured(options: DownstreamOptions, onComplete: NonNullable<DownstreamOptions['onComplete']>, request: L7Request, write: (response: L7Response, count?: (bytes: number) => void) => Promise<void>): void {
  const started = performance.now();
  const startTime = Date.now();
  const path = request.path;
  const requestBody = meterBody(request.body);
  const requestHeaderBytes = request.method.length + path.length + request.authority.length + headerBytes(request.headers);
  let response: L7Response | undefined;
  let headersMs: number | undefined;
  let responseBytes = 0;
  handle(options, request)
    .then((result) => {
      response = result;
      headersMs = performance.now() - started;
      responseBytes = String(result.status).length + headerBytes(result.headers);
      return write(result, (bytes) => (responseBytes += bytes));
    })
    .catch(() => {
      // The downstream went away while we wrote: nothing left to tell it.
    })
    .finally(() => {
      try {
        const grpcStatus = response ? grpcStatusOf(response) : undefined;
        onComplete(request, {
          startTime,
          durationMs: performance.now() - started,
          ...(headersMs === undefined ? {} : { headersMs }),
          path,
          responseCode: response?.status ?? 0,
          ...(grpcStatus === undefined ? {} : { grpcStatus }),
          requestBytes: requestHeaderBytes + requestBody.bytes,
          responseBytes,
        });
      } catch (error) {
        options.onError?.(error, request);
      }
    });
}

/**
 * Counts the bytes of a body without changing how it is read: the listener is attached only
 * once a consumer set the stream flowing (pipe, a 'data' listener), so no chunk is lost.
 */
function meterBody(body: Readable): { bytes: number } {
  const meter = { bytes: 0 };
  body.once('resume', () => body.on('data', (chunk: Buffer | string) => (meter.bytes += chunk.length)));
  return meter;
}

function headerBytes(headers: HeaderList): number {
  let bytes = 0;
  for (const [name, value] of headers) bytes += name.length + value.length;
  return bytes;
}

function grpcStatusOf(response: L7Response): number | undefined {
  const value = getHeader(response.trailers?.() ?? [], 'grpc-status') ?? getHeader(response.headers, 'grpc-status');
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

async function writeHttp1(res: http.ServerResponse, response: L7Response, count?: (bytes: number) => void): Promise<void> {
  if (res.destroyed) return;
  const headers = stripHopByHop(response.headers);
  res.writeHead(response.status, headers.flatMap(([name, value]) => [name, value]));
  await writeBody(response.body, res, count);
}

async function writeHttp2(stream: http2.ServerHttp2Stream, response: L7Response, count?: (bytes: number) => void): Promise<void> {
  if (stream.destroyed || stream.closed) return;
  const headers: http2.OutgoingHttpHeaders = { ':status': response.status };
  for (const [name, value] of stripHopByHop(response.headers)) appendHeader(headers, name.toLowerCase(), value);
  const trailers = response.trailers;
  if (trailers === undefined && Buffer.isBuffer(response.body) && response.body.length === 0) {
    // No body, no trailers: one HEADERS frame that ends the stream. For gRPC this is the
    // Trailers-Only form local replies rely on (grpc-status in the headers); a HEADERS frame
    // followed by an empty DATA frame would leave the call without a status.
    stream.respond(headers, { endStream: true });
    return;
  }
  stream.respond(headers, { waitForTrailers: trailers !== undefined });
  if (trailers) {
    stream.once('wantTrailers', () => {
      const outgoing: http2.OutgoingHttpHeaders = {};
      for (const [name, value] of trailers() ?? []) appendHeader(outgoing, name.toLowerCase(), value);
      stream.sendTrailers(outgoing);
    });
  }
  await writeBody(response.body, stream, count);
}

function writeBody(body: Readable | Buffer, sink: Writable, count?: (bytes: number) => void): Promise<void> {
  if (Buffer.isBuffer(body)) {
    count?.(body.length);
    return writeAll(sink, body);
  }
  const done = forward(body, sink);
  // Attached in the same tick as the pipe: the stream starts flowing on the next one.
  if (count) body.on('data', (chunk: Buffer | string) => count(chunk.length));
  return done;
}

function appendHeader(headers: http2.OutgoingHttpHeaders, name: string, value: string): void {
  const existing = headers[name];
  if (existing === undefined) headers[name] = value;
  else headers[name] = Array.isArray(existing) ? [...existing, value] : [String(existing), value];
}
