/** Small builders for traffic snapshots and requests in the traffic unit tests. */
import type { ClusterSnapshot, EndpointSnapshot, HttpMatchSnapshot, HttpRouteSnapshot, RouteDestinationSnapshot, RouteTableSnapshot } from '../../../src/mesh/snapshot.js';
import { headerMap, type RequestView } from '../../../src/traffic/request.js';

export function destination(host: string, subset?: string, weight = 100, port = 9080): RouteDestinationSnapshot {
  return { cluster: `outbound|${port}|${subset ?? ''}|${host}`, host, ...(subset === undefined ? {} : { subset }), port, weight };
}

export function httpRoute(index: number, match: HttpMatchSnapshot[], extra: Partial<HttpRouteSnapshot> = {}): HttpRouteSnapshot {
  return { index, match, route: [destination('reviews.default.svc.cluster.local', `v${index + 1}`)], mirrors: [], ...extra };
}

export function table(http: HttpRouteSnapshot[], extra: Partial<RouteTableSnapshot> = {}): RouteTableSnapshot {
  return { host: 'reviews.default.svc.cluster.local', port: 9080, virtualService: 'default/reviews', http, tcp: [], tls: [], ...extra };
}

export function request(overrides: Partial<Omit<RequestView, 'headers'>> & { headers?: Record<string, string> } = {}): RequestView {
  const { headers, ...rest } = overrides;
  return {
    method: 'GET',
    path: '/reviews/1',
    authority: 'reviews:9080',
    scheme: 'http',
    port: 9080,
    source: { namespace: 'default', labels: { app: 'productpage', version: 'v1' } },
    ...rest,
    headers: headerMap(Object.entries(headers ?? {})),
  };
}

export function endpoint(address: string, port = 9080, extra: Partial<EndpointSnapshot> = {}): EndpointSnapshot {
  return { address, ports: { http: port }, labels: {}, identity: `spiffe://cluster.local/ns/default/sa/${address}`, workload: `default/${address}`, ...extra };
}

export function cluster(endpoints: EndpointSnapshot[], extra: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return {
    name: 'outbound|9080||reviews.default.svc.cluster.local',
    host: 'reviews.default.svc.cluster.local',
    port: 9080,
    protocol: 'HTTP',
    location: 'MESH_INTERNAL',
    resolution: 'STATIC',
    endpoints,
    targetPortName: 'http',
    tls: { mode: 'ISTIO_MUTUAL' },
    loadBalancer: { simple: 'ROUND_ROBIN' },
    connectionPool: {},
    ...extra,
  };
}

/** A fake clock the test moves by hand. */
export class FakeClock {
  time: number;

  constructor(start = 1_000_000) {
    this.time = start;
  }

  readonly now = (): number => this.time;

  advance(ms: number): void {
    this.time += ms;
  }
}

/** A scripted "random": returns the given draws in order, then repeats the last. */
export function draws(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] as number;
}
