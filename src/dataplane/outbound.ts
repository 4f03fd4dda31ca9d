/**
 * The outbound side: where the local application's calls enter the mesh. Two kinds of local
 * listeners feed one pipeline (route → mesh upstream):
 *   - the HTTP proxy port (HTTP_PROXY): absolute-form requests and CONNECT, any mesh service;
 *   - explicit upstream ports: everything sent to the port goes to one service.
 * Unknown destinations fail with 502 — egress is closed unless the service is registered.
 */
import { once } from 'node:events';
import type http from 'node:http';
import net from 'node:net';
import type { Logger } from 'pino';
import { SpiffeId } from '../identity/spiffe-id.js';
import { MESH_ALPN } from './alpn.js';
import { type ConnectionInfo, connectionInfo, type ConnectionTracker } from './connection.js';
import { createHttp1Server, createHttp2Server } from './l7/downstream.js';
import { localReply } from './l7/local-reply.js';
import { composeLayers, type L7Handler, type L7Layer, type L7Request } from './l7/types.js';
import { UpstreamError } from './l7/upstream.js';
import type { MeshDestination, MeshUpstream } from './mesh-upstream.js';
import type { ResolvedTarget, ServiceResolver } from './service-resolver.js';
import { replayableSocket, sniffSocket } from './sniff.js';

export interface OutboundDeps {
  resolver: () => ServiceResolver;
  upstream: MeshUpstream;
  tracker: ConnectionTracker;
  log: Logger;
}

const SNIFF_TIMEOUT_MS = 10_000;

/** Per-request routing result, passed from the route layer to the forwarder. */
const destinationOf = new WeakMap<L7Request, { target: ResolvedTarget; destination: MeshDestination }>();

export function serverNameFor(target: ResolvedTarget): string {
  return `outbound_.${target.port.number}_._.${target.service.host}`;
}

/** Resolves the authority (or uses a fixed target) and picks an endpoint. */
function route(deps: OutboundDeps, fixedTarget?: () => ResolvedTarget | undefined): L7Layer {
  return (next) => (request) => {
    const resolver = deps.resolver();
    const target = fixedTarget?.() ?? resolver.resolve(request.authority, 80);
    if (!target) {
      request.context.responseFlags.push('NR');
      return Promise.resolve(localReply(request, 502, `no route to "${request.authority}": not a service registered in the mesh`));
    }
    if (target.service.location === 'MESH_EXTERNAL') {
      // Egress to services outside the mesh is part of traffic management (not built yet).
      request.context.responseFlags.push('NR');
      return Promise.resolve(localReply(request, 502, `${target.service.host} is outside the mesh (MESH_EXTERNAL): egress is not supported yet`));
    }
    const picked = resolver.pick(target);
    if (!picked) {
      request.context.responseFlags.push('UH');
      return Promise.resolve(localReply(request, 503, `no healthy upstream for ${target.service.host}:${target.port.number}`));
    }
    const destination = { endpoint: picked.endpoint, port: picked.port, serverName: serverNameFor(target), serviceIdentities: target.service.identities };
    request.context.upstreamHost = `${picked.endpoint.address}:${picked.port}`;
    destinationOf.set(request, { target, destination });
    return next(request);
  };
}

function forward(deps: OutboundDeps): L7Handler {
  return async (request) => {
    const routed = destinationOf.get(request);
    if (!routed) return localReply(request, 500, 'internal proxy error: request was not routed');
    const protocol = routed.target.port.protocol;
    const http2Upstream = protocol === 'GRPC' || protocol === 'HTTP2' || (protocol === 'UNKNOWN' && request.protocol === 'HTTP/2');
    try {
      return await deps.upstream.sendHttp(request, routed.destination, http2Upstream);
    } catch (err) {
      const error = err instanceof UpstreamError ? err : new UpstreamError('UF', String(err));
      request.context.responseFlags.push(error.flag);
      deps.log.info({ event: 'upstream.failure', upstream: request.context.upstreamHost, flag: error.flag, err: error.message }, 'upstream request failed');
      return localReply(request, 503, `upstream connect error or disconnect/reset before headers: ${error.message}`);
    }
  };
}

/**
 * A local listener for the application: classifies each connection (HTTP/1.1, HTTP/2 prior
 * knowledge, or other bytes) and hands it to the outbound pipeline.
 */
export class OutboundListener {
  private readonly server: net.Server;
  private readonly http1;
  private readonly http2;
  private readonly infos = new WeakMap<net.Socket, ConnectionInfo>();
  private readonly sockets = new Set<net.Socket>();
  private readonly deps: OutboundDeps;
  private readonly fixedTarget: (() => ResolvedTarget | undefined) | undefined;
  private readonly port: number;

  /**
   * @param fixedTarget for an explicit upstream port: the one service it leads to; without it
   *   this is the HTTP proxy port and requests name their destination.
   */
  constructor(port: number, deps: OutboundDeps, fixedTarget?: () => ResolvedTarget | undefined) {
    this.port = port;
    this.deps = deps;
    this.fixedTarget = fixedTarget;
    const handler = composeLayers([route(deps, fixedTarget)], forward(deps));
    const options = {
      handler,
      onError: (error: unknown) => deps.log.error({ err: error }, 'outbound request failed'),
    };
    this.http1 = createHttp1Server(options);
    this.http2 = createHttp2Server(options);
    this.http1.server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.onConnectMethod(req, socket, head));
    this.server = net.createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      const info = connectionInfo(socket);
      this.infos.set(socket, info);
      deps.tracker.add(socket, info);
      this.classify(socket).catch(() => socket.destroy());
    });
  }

  async listen(host: string): Promise<number> {
    this.server.listen(this.port, host);
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Stops accepting, lets requests in flight finish for up to `drainMs`, then closes the rest. */
  async close(drainMs = 5_000): Promise<void> {
    this.server.close();
    this.http1.close();
    this.http2.close();
    const deadline = Date.now() + drainMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    for (const socket of this.sockets) socket.destroy();
  }

  private async classify(socket: net.Socket): Promise<void> {
    const fixed = this.fixedTarget?.();
    if (fixed?.port.protocol === 'TCP') return this.tunnelTcp(socket, fixed);
    const kind = await sniffSocket(socket, SNIFF_TIMEOUT_MS);
    if (kind === 'h2' || kind === 'http1') return this.acceptHttp(socket, kind);
    if (fixed && kind === 'tcp' && fixed.port.protocol === 'UNKNOWN') return this.tunnelTcp(socket, fixed);
    this.deps.log.info({ port: this.port, kind }, 'outbound connection closed: not HTTP');
    socket.destroy();
  }

  /** CONNECT host:port on the proxy port: a tunnel to a mesh service. */
  private onConnectMethod(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const target = this.deps.resolver().resolve(req.url ?? '', 443);
    if (!target) {
      socket.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n\r\nno route to "${req.url ?? ''}": not a service registered in the mesh`);
      return;
    }
    if (target.service.location === 'MESH_EXTERNAL') {
      socket.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n\r\n${target.service.host} is outside the mesh (MESH_EXTERNAL): egress is not supported yet`);
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    if (target.port.protocol === 'TCP' || target.port.protocol === 'UNKNOWN') {
      this.tunnelTcp(socket, target);
      return;
    }
    // An HTTP service: terminate the tunnel here so the request goes through L7 like any other.
    sniffSocket(socket, SNIFF_TIMEOUT_MS)
      .then((kind) => (kind === 'h2' || kind === 'http1' ? this.acceptHttp(socket, kind) : socket.destroy()))
      .catch(() => socket.destroy());
  }

  private acceptHttp(socket: net.Socket, kind: 'h2' | 'http1'): void {
    const info = this.infos.get(socket) ?? connectionInfo(socket);
    if (kind === 'http1') this.http1.accept(socket, info);
    else this.http2.accept(replayableSocket(socket), info);
    // Resume only once a server listens, or the bytes read meanwhile would be lost.
    if (socket.readableFlowing === false) socket.resume();
  }

  private tunnelTcp(socket: net.Socket, target: ResolvedTarget): void {
    const picked = this.deps.resolver().pick(target);
    if (!picked) {
      socket.destroy();
      return;
    }
    const upstream = this.deps.upstream.connectTls(
      { endpoint: picked.endpoint, port: picked.port, serverName: serverNameFor(target), serviceIdentities: target.service.identities },
      MESH_ALPN.tcp,
    );
    upstream.once('secureConnect', () => {
      // Tracked with the server's identity, so revoking the server closes this tunnel too.
      const cert = upstream.getPeerCertificate();
      const id = peerIdentityOf(cert);
      if (id) {
        this.deps.tracker.add(upstream, {
          ...connectionInfo(upstream),
          peer: { identity: id, serial: cert.serialNumber.toLowerCase(), certSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(), notAfter: new Date(cert.valid_to) },
        });
      }
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.resume();
    });
    upstream.on('error', (err) => {
      this.deps.log.info({ event: 'upstream.failure', upstream: `${picked.endpoint.address}:${picked.port}`, err: err.message }, 'TCP upstream failed');
      socket.destroy();
    });
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
  }
}

/** The SPIFFE ID in a verified peer certificate's URI SAN (the TLS layer already checked it). */
function peerIdentityOf(cert: { subjectaltname?: string }): SpiffeId | undefined {
  const uri = /URI:(spiffe:\/\/[^,\s]+)/.exec(cert.subjectaltname ?? '')?.[1];
  return uri && SpiffeId.isValid(uri) ? SpiffeId.parse(uri) : undefined;
}
