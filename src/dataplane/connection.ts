/**
 * Downstream connections as the proxy sees them, and the registry of live ones, so a revocation
 * or shutdown can close exactly the connections it concerns.
 */
import type { Socket } from 'node:net';
import type { SpiffeId } from '../identity/spiffe-id.js';

export interface PeerIdentity {
  identity: SpiffeId;
  /** Lowercase hex serial of the peer's leaf certificate. */
  serial: string;
  /** SHA-256 of the peer's leaf certificate (hex), as Envoy puts in XFCC `Hash=`. */
  certSha256: string;
  notAfter: Date;
}

export interface ConnectionInfo {
  id: number;
  sourceIp: string;
  sourcePort: number;
  destIp: string;
  destPort: number;
  /** Set when the peer authenticated with an SVID (mesh mTLS). */
  peer?: PeerIdentity;
  sni?: string;
  alpn?: string;
}

let nextId = 1;

export function connectionInfo(socket: Socket, extra: Partial<Omit<ConnectionInfo, 'id'>> = {}): ConnectionInfo {
  return {
    id: nextId++,
    sourceIp: stripIpv4Mapped(socket.remoteAddress ?? ''),
    sourcePort: socket.remotePort ?? 0,
    destIp: stripIpv4Mapped(socket.localAddress ?? ''),
    destPort: socket.localPort ?? 0,
    ...extra,
  };
}

/** `::ffff:10.0.0.1` → `10.0.0.1`, so IPv4 policies match dual-stack sockets. */
export function stripIpv4Mapped(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export class ConnectionTracker {
  private readonly live = new Map<Socket, ConnectionInfo>();

  add(socket: Socket, info: ConnectionInfo): void {
    this.live.set(socket, info);
    socket.once('close', () => this.live.delete(socket));
  }

  get size(): number {
    return this.live.size;
  }

  /** Destroys every live connection for which `predicate` holds; returns how many. */
  closeWhere(predicate: (info: ConnectionInfo) => boolean): number {
    let closed = 0;
    for (const [socket, info] of this.live) {
      if (!predicate(info)) continue;
      socket.destroy();
      this.live.delete(socket);
      closed += 1;
    }
    return closed;
  }

  closeAll(): void {
    this.closeWhere(() => true);
  }
}
