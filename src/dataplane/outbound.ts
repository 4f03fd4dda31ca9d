/**
 * The outbound side: where the local application's calls enter the mesh. Two kinds of local
 * listeners feed the traffic router (routes, retries, timeouts… see traffic-router.ts):
 *   - the HTTP proxy port (HTTP_PROXY): absolute-form requests and CONNECT;
 *   - explicit upstream ports: everything sent to the port goes to one service.
 * Destinations outside the registry follow the egress policy (REGISTRY_ONLY: 502).
 */
import { once } from 'node:events';
import type http from 'node:http';
import net from 'node:net';
import type tls from 'node:tls';
import { SpiffeId } from '../identity/spiffe-id.js';
import type { ProxyTracer } from '../telemetry/tracing.js';
import { type CompiledRouteTable, egressDecision, pickDestination, selectL4Route } from '../traffic/index.js';
import { MESH_ALPN } from './alpn.js';
import { readClientHelloSni } from './client-hello.js';
import { type ConnectionInfo, connectionInfo, type ConnectionTracker } from './connection.js';
import { createHttp1Server, createHttp2Server } from './l7/downstream.js';
import { outboundTracing } from './l7/tracing.js';
import { type ResolvedTarget, splitAuthority } from './service-resolver.js';
import { replayableSocket, sniffSocket } from './sniff.js';
import type { TcpEdge } from './telemetry.js';
import { trafficRouter, type TrafficRouterDeps } from './traffic-router.js';

export interface OutboundDeps extends TrafficRouterDeps {
  tracker: ConnectionTracker;
  /** Records a CLIENT span per request; absent: trace headers pass unchanged. */
  tracer?: ProxyTracer;
}

const SNIFF_TIMEOUT_MS = 10_000;

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
    const options = {
      handler: outboundTracing(deps.tracer)(trafficRouter(deps, fixedTarget)),
      onError: (error: unknown) => deps.log.error({ err: error }, 'outbound request failed'),
      ...(deps.telemetry?.measuring ? { onComplete: deps.telemetry.requestDone.bind(deps.telemetry, 'outbound') } : {}),
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
    if (fixed && (kind === 'tcp' || kind === 'tls') && fixed.port.protocol === 'UNKNOWN') return this.tunnelTcp(socket, fixed);
    this.deps.log.info({ port: this.port, kind }, 'outbound connection closed: not HTTP');
    socket.destroy();
  }

  /**
   * CONNECT host:port on the proxy port. A registered HTTP service: the tunnel ends here and
   * its requests take the L7 path. A TCP service or an external one (HTTPS the app encrypts
   * itself): a byte tunnel. Unregistered: the egress policy decides.
   */
  private onConnectMethod(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const authority = req.url ?? '';
    const target = this.deps.resolver().resolve(authority, 443);
    if (!target) {
      const { host, port } = splitAuthority(authority, 443);
      const egress = egressDecision(this.deps.traffic().traffic, { host, registered: false });
      if (!egress.allowed) {
        this.deps.log.info({ event: 'egress.blocked', host, reason: egress.reason }, 'egress blocked');
        socket.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n\r\nno route to "${authority}": ${egress.reason}`);
        return;
      }
      this.established(socket, head);
      this.pipeTo(socket, this.deps.external.connectTcp({ host, port }), 'connect');
      return;
    }
    this.established(socket, head);
    if (target.service.location === 'MESH_EXTERNAL' || target.port.protocol === 'TCP' || target.port.protocol === 'UNKNOWN') {
      this.tunnelTcp(socket, target);
      return;
    }
    sniffSocket(socket, SNIFF_TIMEOUT_MS)
      .then((kind) => (kind === 'h2' || kind === 'http1' ? this.acceptHttp(socket, kind) : socket.destroy()))
      .catch(() => socket.destroy());
  }

  private established(socket: net.Socket, head: Buffer): void {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
  }

  private acceptHttp(socket: net.Socket, kind: 'h2' | 'http1'): void {
    const info = this.infos.get(socket) ?? connectionInfo(socket);
    if (kind === 'http1') this.http1.accept(socket, info);
    else this.http2.accept(replayableSocket(socket), info);
    // Resume only once a server listens, or the bytes read meanwhile would be lost.
    if (socket.readableFlowing === false) socket.resume();
  }

  /**
   * A byte tunnel routed by the service's TLS routes (by the ClientHello's SNI, when the
   * VirtualService has any), else its TCP routes (weighted destinations, subsets).
   */
  private tunnelTcp(socket: net.Socket, target: ResolvedTarget): void {
    const table = this.deps.traffic().routeTables.get(target.service.host, target.port.number);
    if (table === undefined || table.tls.length === 0) {
      this.routeTcp(socket, target, table, undefined);
      return;
    }
    readClientHelloSni(socket, SNIFF_TIMEOUT_MS)
      .then((sni) => this.routeTcp(socket, target, table, sni))
      .catch(() => socket.destroy());
  }

  private routeTcp(socket: net.Socket, target: ResolvedTarget, table: CompiledRouteTable | undefined, sni: string | undefined): void {
    const traffic = this.deps.traffic();
    const connection = { port: target.port.number, source: this.deps.source(), ...(sni === undefined ? {} : { sni }) };
    const byTls = table && sni !== undefined ? selectL4Route(table, connection, 'tls') : undefined;
    const selection = byTls?.matched ? byTls : table ? selectL4Route(table, connection, 'tcp') : undefined;
    const destination = selection?.matched ? pickDestination(selection.route.route, this.deps.random) : undefined;
    const cluster = destination ? traffic.cluster(destination.cluster) : undefined;
    const pick = cluster?.pick({ sourceIp: socket.remoteAddress ?? '' });
    if (!cluster || !pick || pick.kind !== 'endpoint') {
      this.deps.log.info({ event: 'tcp.no_upstream', service: target.service.host, port: target.port.number }, 'no TCP route or healthy endpoint');
      socket.destroy();
      return;
    }
    const snapshot = cluster.cluster;
    const edge = { service: { host: target.service.host, namespace: target.service.namespace }, upstreamCluster: snapshot.name, upstreamHost: `${pick.target.endpoint.address}:${pick.target.port}` };
    if (snapshot.location === 'MESH_EXTERNAL' || snapshot.tls.mode !== 'ISTIO_MUTUAL') {
      const host = snapshot.resolution === 'DNS' || snapshot.resolution === 'DNS_ROUND_ROBIN' ? pick.target.endpoint.address || snapshot.host : pick.target.endpoint.address;
      this.pipeTo(socket, this.deps.external.connectTcp({ host, port: pick.target.port, ...(snapshot.connectionPool.connectTimeoutMs ? { connectTimeoutMs: snapshot.connectionPool.connectTimeoutMs } : {}) }), 'connect', edge);
      return;
    }
    const upstream = this.deps.upstream.connectTls(
      {
        endpoint: pick.target.endpoint,
        port: pick.target.port,
        serverName: `outbound_.${snapshot.port}_.${snapshot.subset ?? ''}_.${snapshot.host}`,
        serviceIdentities: target.service.identities,
        limits: snapshot.connectionPool,
      },
      MESH_ALPN.tcp,
    );
    upstream.once('secureConnect', () => this.trackServer(upstream));
    this.pipeTo(socket, upstream, 'secureConnect', { ...edge, endpoint: pick.target.endpoint });
  }

  /** Tracked with the server's identity, so revoking the server closes this tunnel too. */
  private trackServer(upstream: tls.TLSSocket): void {
    const cert = upstream.getPeerCertificate();
    const id = peerIdentityOf(cert);
    if (!id) return;
    this.deps.tracker.add(upstream, {
      ...connectionInfo(upstream),
      peer: { identity: id, serial: cert.serialNumber.toLowerCase(), certSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(), notAfter: new Date(cert.valid_to) },
    });
  }

  private pipeTo(socket: net.Socket, upstream: net.Socket, ready: 'connect' | 'secureConnect', edge?: Omit<TcpEdge, 'direction' | 'connection'>): void {
    upstream.once(ready, () => {
      const connection = this.infos.get(socket);
      if (this.deps.telemetry && edge && connection) this.deps.telemetry.tcpOpened({ direction: 'outbound', connection, ...edge }, socket);
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.resume();
    });
    upstream.on('error', (err) => {
      this.deps.log.info({ event: 'upstream.failure', upstream: `${upstream.remoteAddress ?? '?'}:${upstream.remotePort ?? '?'}`, err: err.message }, 'TCP upstream failed');
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
