/**
 * The traffic snapshot a proxy uses when the control plane sent none: every service port gets a
 * catch-all route to one cluster of all its endpoints, round robin, Istio's default retries; and
 * egress stays closed to anything unregistered.
 */
import type { ClusterSnapshot, OutboundSnapshot, RouteTableSnapshot, TrafficSnapshot } from '../mesh/snapshot.js';

export function defaultTraffic(outbound: OutboundSnapshot): TrafficSnapshot {
  const routeTables: RouteTableSnapshot[] = [];
  const clusters: ClusterSnapshot[] = [];
  for (const service of outbound.services) {
    for (const port of service.ports) {
      const name = `outbound|${port.number}||${service.host}`;
      const destination = { cluster: name, host: service.host, port: port.number, weight: 100 };
      routeTables.push({ host: service.host, port: port.number, http: [{ name: 'default', index: 0, match: [], route: [destination], mirrors: [] }], tcp: [{ index: 0, match: [], route: [destination] }], tls: [] });
      clusters.push({
        name,
        host: service.host,
        port: port.number,
        protocol: port.protocol,
        location: service.location,
        resolution: 'STATIC',
        endpoints: service.endpoints,
        targetPortName: port.targetPortName,
        tls: { mode: service.location === 'MESH_INTERNAL' ? 'ISTIO_MUTUAL' : 'DISABLE' },
        loadBalancer: { simple: 'ROUND_ROBIN' },
        connectionPool: {},
      });
    }
  }
  return { routeTables, clusters, outboundTrafficPolicy: 'REGISTRY_ONLY', outboundTrafficPolicySource: 'proxy default (no traffic settings pushed)' };
}
