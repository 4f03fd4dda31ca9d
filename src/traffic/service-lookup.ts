/**
 * Outbound name resolution against the snapshot: which service a request's authority names, and
 * which of its ports. Only services in this proxy's snapshot resolve (their declared hosts and the
 * aliases the control plane computed for the proxy's namespace: `reviews`, `reviews.default`,
 * …); what happens to the rest is the egress policy's call (egress.ts). Pure: the sidecar's
 * outbound path (src/dataplane) and `trellis route check` (explain.ts) share it.
 */
import type { OutboundSnapshot, ServicePortSnapshot, ServiceSnapshot } from '../mesh/snapshot.js';

export interface ResolvedTarget {
  service: ServiceSnapshot;
  port: ServicePortSnapshot;
}

export class ServiceResolver {
  private readonly byName = new Map<string, ServiceSnapshot>();

  constructor(outbound: OutboundSnapshot) {
    // Declared hosts win over aliases when both would match a name.
    for (const service of outbound.services) {
      for (const alias of service.aliases) if (!this.byName.has(alias.toLowerCase())) this.byName.set(alias.toLowerCase(), service);
    }
    for (const service of outbound.services) this.byName.set(service.host.toLowerCase(), service);
  }

  /** `host[:port]` → service and port; `defaultPort` applies when the authority has none. */
  resolve(authority: string, defaultPort: number): ResolvedTarget | undefined {
    const { host, port } = splitAuthority(authority, defaultPort);
    const service = this.byName.get(host.toLowerCase());
    if (!service) return undefined;
    const servicePort = service.ports.find((candidate) => candidate.number === port) ?? (service.ports.length === 1 && !hasPort(authority) ? service.ports[0] : undefined);
    return servicePort ? { service, port: servicePort } : undefined;
  }
}

export function splitAuthority(authority: string, defaultPort: number): { host: string; port: number } {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    const rest = authority.slice(end + 1);
    return { host: authority.slice(1, end), port: rest.startsWith(':') ? Number(rest.slice(1)) : defaultPort };
  }
  const colon = authority.lastIndexOf(':');
  if (colon === -1) return { host: authority, port: defaultPort };
  return { host: authority.slice(0, colon), port: Number(authority.slice(colon + 1)) };
}

function hasPort(authority: string): boolean {
  return /:\d+$/.test(authority);
}
