/**
 * One inbound listener per workload port: accept → TLS or plaintext (by the first byte, per the
 * port's PeerAuthentication mode) → the peer's SVID verified → protocol (ALPN, the port's
 * declared protocol, or sniffing) → L4 (connection authz, then bytes to the app) or L7 (the
 * inbound layers, then the app).
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { SpiffeTls } from '../identity/tls.js';
import type { InboundPortSnapshot } from '../mesh/snapshot.js';
import type { InboundDecision } from '../policy/inbound.js';
import type { ProxyTracer } from '../telemetry/tracing.js';
import type { LocalRateLimiter } from '../traffic/index.js';
import { MESH_ALPN } from './alpn.js';
import { AppForwarder, type AppTarget } from './app-forwarder.js';
import { type ConnectionInfo, connectionInfo, type ConnectionTracker } from './connection.js';
import type { InboundPolicy } from './inbound-policy.js';
import { createHttp1Server, createHttp2Server } from './l7/downstream.js';
import { connectionAttributes, inboundLayers } from './l7/inbound-layers.js';
import { inboundTracing } from './l7/tracing.js';
import { composeLayers, type L7Request } from './l7/types.js';
import { replayableSocket, sniffSocket } from './sniff.js';
import type { DataPlaneTelemetry } from './telemetry.js';

const FIRST_BYTES_TIMEOUT_MS = 10_000;
/** How long a closing listener lets requests in flight finish. */
const DRAIN_MS = 5_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface InboundDeps {
  tls: () => SpiffeTls;
  policy: () => InboundPolicy;
  /** Local rate limits (RateLimit resources): checked after authorization. */
  rateLimiter?: LocalRateLimiter;
  ownIdentity: () => string;
  tracker: ConnectionTracker;
  log: Logger;
  /** Records a SERVER span per request (outermost layer); absent: trace headers pass unchanged. */
  tracer?: ProxyTracer;
  onDecision?: (request: L7Request, decision: InboundDecision) => void;
  onConnectionDecision?: (connection: ConnectionInfo, decision: InboundDecision) => void;
  /** Metrics and access log; absent: nothing is measured. */
  telemetry?: DataPlaneTelemetry;
}

export class InboundListener {
  private port: InboundPortSnapshot;
  private readonly deps: InboundDeps;
  private readonly server: net.Server;
  /** Every connection accepted on this port, for draining on close. */
  private readonly sockets = new Set<net.Socket | tls.TLSSocket>();
  private readonly app: AppForwarder;
  private readonly http1;
  private readonly http2;

  constructor(port: InboundPortSnapshot, app: AppTarget, deps: InboundDeps) {
    this.port = port;
    this.deps = deps;
    this.app = new AppForwarder(app, port.protocol);
    const tracing = deps.tracer ? [inboundTracing({ tracer: deps.tracer, port: port.port })] : [];
    const handler = composeLayers([...tracing, ...inboundLayers(deps)], this.app.handler);
    const options = {
      handler,
      onError: (error: unknown) => deps.log.error({ err: error, port: port.port }, 'inbound request failed'),
      ...(deps.telemetry?.measuring ? { onComplete: deps.telemetry.requestDone.bind(deps.telemetry, 'inbound') } : {}),
    };
    this.http1 = createHttp1Server(options);
    this.http2 = createHttp2Server(options);
    this.server = net.createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      this.accept(socket).catch((err: unknown) => {
        deps.log.warn({ err, port: this.port.port }, 'inbound connection failed');
        socket.destroy();
      });
    });
  }

  get name(): string {
    return this.port.name;
  }

  /** Applies a new mode or protocol for this port; new connections use it. */
  update(port: InboundPortSnapshot): void {
    this.port = port;
  }

  async listen(host: string): Promise<number> {
    this.server.listen(this.port.port, host);
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }

  /**
   * Stops accepting, lets requests in flight finish for up to `drainMs`, then closes whatever is
   * left (idle keep-alive connections at once, long-lived TCP streams at the deadline).
   */
  async close(drainMs = DRAIN_MS): Promise<void> {
    this.server.close();
    this.http1.close();
    this.http2.close();
    const deadline = Date.now() + drainMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    for (const socket of this.sockets) socket.destroy();
    this.app.close();
  }

  private async accept(socket: net.Socket): Promise<void> {
    socket.on('error', () => socket.destroy());
    const port = this.port;
    const first = await sniffSocket(socket, FIRST_BYTES_TIMEOUT_MS, true);
    if (first === 'closed' || first === 'timeout') return void socket.destroy();
    if (first === 'tls') return this.acceptTls(socket, port);
    if (port.mtls === 'STRICT') {
      this.deps.log.info({ port: port.port, source: socket.remoteAddress, event: 'mtls.plaintext_refused' }, 'plaintext connection refused: mTLS is STRICT on this port');
      return void socket.destroy();
    }
    const info = connectionInfo(socket);
    this.track(socket, info);
    return this.dispatch(socket, info, port);
  }

  private acceptTls(socket: net.Socket, port: InboundPortSnapshot): void {
    const spiffe = this.deps.tls();
    const secure = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: spiffe.secureContext(),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: [MESH_ALPN.http2, MESH_ALPN.http1, MESH_ALPN.tcp],
    });
    // From here the TLS socket owns the connection: track it (the raw one may never emit 'close').
    this.sockets.delete(socket);
    this.sockets.add(secure);
    secure.once('close', () => this.sockets.delete(secure));
    const timer = setTimeout(() => secure.destroy(), HANDSHAKE_TIMEOUT_MS);
    secure.on('error', (err) => {
      clearTimeout(timer);
      this.deps.log.debug({ err, port: port.port }, 'inbound TLS error');
      secure.destroy();
    });
    secure.once('secure', () => {
      clearTimeout(timer);
      const peer = spiffe.verifyPeer(secure, 'client');
      if (!peer.ok) {
        this.deps.log.info({ port: port.port, source: socket.remoteAddress, reason: peer.reason, event: 'mtls.peer_rejected' }, `peer rejected: ${peer.message}`);
        secure.destroy();
        return;
      }
      const cert = secure.getPeerCertificate();
      // Under DISABLE the port does not use mTLS identities: policies, XFCC and denial details
      // all behave as for plaintext (the certificate was still checked).
      const usesIdentity = port.mtls !== 'DISABLE';
      const info = connectionInfo(socket, {
        ...(usesIdentity
          ? {
              peer: {
                identity: peer.id,
                serial: peer.leaf.serialNumber.toLowerCase(),
                certSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
                notAfter: peer.notAfter,
              },
            }
          : {}),
        ...(typeof secure.alpnProtocol === 'string' ? { alpn: secure.alpnProtocol } : {}),
        ...(typeof (secure as { servername?: unknown }).servername === 'string' ? { sni: (secure as unknown as { servername: string }).servername } : {}),
      });
      this.track(secure, info);
      this.dispatch(secure, info, port).catch((err: unknown) => {
        this.deps.log.warn({ err }, 'inbound dispatch failed');
        secure.destroy();
      });
    });
  }

  private track(socket: net.Socket, info: ConnectionInfo): void {
    this.deps.tracker.add(socket, info);
  }

  /** Picks L4 or L7 from the port's declared protocol, ALPN, or the first bytes. */
  private async dispatch(socket: net.Socket, info: ConnectionInfo, port: InboundPortSnapshot): Promise<void> {
    if (port.protocol === 'TCP') return this.forwardTcp(socket, info);
    let kind: 'h2' | 'http1' | 'tcp';
    if (info.alpn === MESH_ALPN.http2) kind = 'h2';
    else if (info.alpn === MESH_ALPN.http1) kind = 'http1';
    else if (info.alpn === MESH_ALPN.tcp) kind = 'tcp';
    else {
      const result = await sniffSocket(socket, FIRST_BYTES_TIMEOUT_MS);
      if (result === 'closed') return void socket.destroy();
      kind = result === 'h2' || result === 'http1' ? result : 'tcp';
    }
    if (kind === 'tcp') {
      // An HTTP port only takes HTTP: a raw tunnel would bypass the L7 policy.
      if (port.protocol !== 'UNKNOWN') {
        this.deps.log.info({ port: port.port, event: 'protocol.refused' }, `non-HTTP traffic refused on ${port.protocol} port ${port.name}`);
        return void socket.destroy();
      }
      return this.forwardTcp(socket, info);
    }
    if (kind === 'http1') this.http1.accept(socket, info);
    // HTTP/2 sessions read the socket's native handle and would miss bytes already read into
    // its JavaScript buffer (sniffed bytes, or data that came with the TLS handshake).
    else this.http2.accept(replayableSocket(socket), info);
    // Resume only once a server listens: bytes read before would be lost. (A TLS socket was
    // never paused; one that sniffSocket paused must be.)
    if (socket.readableFlowing === false) socket.resume();
  }

  private async forwardTcp(socket: net.Socket, info: ConnectionInfo): Promise<void> {
    socket.pause();
    const decision = await this.deps.policy().check(connectionAttributes(info));
    this.deps.onConnectionDecision?.(info, decision);
    if (decision.decision === 'DENY') {
      socket.destroy();
      return;
    }
    const target = this.app.targetAddress;
    const upstream = net.connect({ host: target.host, port: target.port, noDelay: true });
    this.deps.telemetry?.tcpOpened({ direction: 'inbound', connection: info, upstreamHost: `${target.host}:${target.port}`, upstreamCluster: `inbound|${this.port.port}||` }, upstream);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.resume();
  }
}
