/**
 * Egress: may this proxy send to a destination? Istio's `outboundTrafficPolicy`: REGISTRY_ONLY
 * lets through only hosts of the proxy's registry (its services, narrowed by the Sidecar's
 * egress hosts), and answers 502 for the rest; ALLOW_ANY passes unknown destinations through to
 * their original address. A snapshot without traffic settings keeps the proxy's old behaviour:
 * only registered services resolve (closed).
 */
import type { TrafficSnapshot } from '../mesh/snapshot.js';

export type EgressDecision =
  | { readonly allowed: true; readonly passthrough: boolean; readonly reason: string }
  | { readonly allowed: false; readonly status: 502; readonly reason: string };

export function egressDecision(
  traffic: Pick<TrafficSnapshot, 'outboundTrafficPolicy' | 'outboundTrafficPolicySource'> | undefined,
  destination: { host: string; registered: boolean },
): EgressDecision {
  if (destination.registered) return { allowed: true, passthrough: false, reason: `${destination.host} is a registered service` };
  if (traffic?.outboundTrafficPolicy === 'ALLOW_ANY') {
    return { allowed: true, passthrough: true, reason: `${destination.host} is not registered; outboundTrafficPolicy ALLOW_ANY (${traffic.outboundTrafficPolicySource}) passes it through` };
  }
  const source = traffic === undefined ? 'no traffic settings: registered services only' : `outboundTrafficPolicy REGISTRY_ONLY (${traffic.outboundTrafficPolicySource})`;
  return { allowed: false, status: 502, reason: `${destination.host} is not a registered service and ${source}` };
}
