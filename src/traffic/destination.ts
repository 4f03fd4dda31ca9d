/**
 * Weighted choice among a route's destinations and the mirror decision, from injected draws.
 *
 * Envoy's weighted clusters: one draw in [0, total weight), then the first destination whose
 * cumulative weight exceeds it. A weight-0 destination is never picked (Istio drops it from
 * the weighted cluster list); a route with a single destination uses it whatever its weight
 * (Istio then routes to it directly). Weights are integers 0-100 that add up to 100 after
 * validation, but the choice only relies on their sum.
 */
import type { HttpRouteSnapshot, RouteDestinationSnapshot } from '../mesh/snapshot.js';
import { chance, randomInt, type Random } from './random.js';

/**
 * One destination of the list, by weight; undefined when the list is empty or every weight
 * of a multi-destination list is 0. Exactly one draw when there are several destinations,
 * none when there is one.
 */
export function pickDestination<T extends Pick<RouteDestinationSnapshot, 'weight'>>(destinations: readonly T[], random: Random): T | undefined {
  if (destinations.length === 0) return undefined;
  if (destinations.length === 1) return destinations[0];
  let total = 0;
  for (const destination of destinations) total += destination.weight > 0 ? destination.weight : 0;
  if (total <= 0) return undefined;
  let point = randomInt(random, total);
  for (const destination of destinations) {
    if (destination.weight <= 0) continue;
    if (point < destination.weight) return destination;
    point -= destination.weight;
  }
  return undefined; // unreachable: point < total
}

/**
 * The route's mirror destinations this request is copied to: each mirror independently, with
 * its own draw against its percentage (Envoy's runtime fraction per mirror policy).
 */
export function pickMirrors(route: Pick<HttpRouteSnapshot, 'mirrors'>, random: Random): HttpRouteSnapshot['mirrors'] {
  const chosen: HttpRouteSnapshot['mirrors'] = [];
  for (const mirror of route.mirrors) if (chance(random, mirror.percentage)) chosen.push(mirror);
  return chosen;
}
