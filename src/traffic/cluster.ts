/**
 * Per-proxy traffic state across snapshot versions: the compiled route tables, and for each
 * cluster its load balancer, outlier detector and circuit breaker, which keep their state
 * (rotation, active requests, ejections, counters) when a new version changes the endpoints or
 * the settings of a cluster that stays. This is what the sidecar's outbound path holds; every
 * piece is also usable on its own.
 */
import type { ClusterSnapshot, HttpRouteSnapshot, TrafficSnapshot } from '../mesh/snapshot.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { compileCors, type CompiledCors } from './cors.js';
import { ClusterLoadBalancer, lbEndpoints, type LbPick, type PickContext } from './load-balancer.js';
import { OutlierDetector, type Eligibility, type OutlierEvent, type OutlierOutcome } from './outlier.js';
import type { Clock, Random } from './random.js';
import { compileRetryPolicy, type CompiledRetryPolicy } from './retry.js';
import { compileRewrite, type CompiledRewrite } from './rewrite.js';
import { RouteTables } from './route-select.js';

export interface TrafficOptions {
  now: Clock;
  random: Random;
  /** Whether requests to a cluster share connections (HTTP/2); default: protocol HTTP2 or GRPC. */
  multiplexed?: (cluster: ClusterSnapshot) => boolean;
}

function defaultMultiplexed(cluster: ClusterSnapshot): boolean {
  return cluster.protocol === 'HTTP2' || cluster.protocol === 'GRPC';
}

export type ClusterPick = LbPick & { readonly panic: boolean; readonly healthy: number; readonly total: number };

export class ClusterRuntime {
  private snapshot: ClusterSnapshot;
  readonly balancer: ClusterLoadBalancer;
  readonly outlier: OutlierDetector;
  readonly breaker: CircuitBreaker;
  private readonly multiplexed: (cluster: ClusterSnapshot) => boolean;

  constructor(cluster: ClusterSnapshot, options: TrafficOptions) {
    this.snapshot = cluster;
    this.multiplexed = options.multiplexed ?? defaultMultiplexed;
    const endpoints = lbEndpoints(cluster.endpoints, cluster.targetPortName, cluster.port);
    this.balancer = new ClusterLoadBalancer(cluster.loadBalancer, endpoints, { random: options.random });
    this.outlier = new OutlierDetector(cluster.outlierDetection, endpoints.map((e) => e.key), { now: options.now });
    this.breaker = new CircuitBreaker(cluster.connectionPool, { multiplexed: this.multiplexed(cluster) });
  }

  get cluster(): ClusterSnapshot {
    return this.snapshot;
  }

  /** True when the cluster hashes (retries then keep the key's endpoint, as in Istio). */
  get consistentHash(): boolean {
    return 'consistentHash' in this.snapshot.loadBalancer;
  }

  update(cluster: ClusterSnapshot): void {
    this.snapshot = cluster;
    const endpoints = lbEndpoints(cluster.endpoints, cluster.targetPortName, cluster.port);
    this.balancer.update(endpoints, cluster.loadBalancer);
    this.outlier.updateConfig(cluster.outlierDetection);
    this.outlier.setEndpoints(endpoints.map((e) => e.key));
    this.breaker.update(cluster.connectionPool, { multiplexed: this.multiplexed(cluster) });
  }

  eligibility(): Eligibility {
    return this.outlier.eligibility();
  }

  /** An endpoint for one attempt, among the healthy ones (all of them in panic). */
  pick(context: Omit<PickContext, 'eligible'> = {}): ClusterPick {
    const eligibility = this.outlier.eligibility();
    const pick = this.balancer.pick({ ...context, eligible: eligibility.eligible });
    return { ...pick, panic: eligibility.panic, healthy: eligibility.healthy, total: eligibility.total };
  }

  /** Reports an attempt's outcome on an endpoint to outlier detection. */
  report(endpointKey: string, outcome: OutlierOutcome): OutlierEvent | undefined {
    return this.outlier.report(endpointKey, outcome);
  }
}

/** Route-level pieces compiled once per snapshot version. */
export interface RouteExtras {
  readonly rewrite: CompiledRewrite;
  readonly cors: CompiledCors | undefined;
  /** The route's retry policy for a destination cluster (hashing changes host avoidance). */
  retryPolicy(cluster: ClusterRuntime | undefined): CompiledRetryPolicy | undefined;
}

export class TrafficState {
  private routes: RouteTables;
  private readonly clusters = new Map<string, ClusterRuntime>();
  private extras = new WeakMap<HttpRouteSnapshot, RouteExtras>();
  private snapshot: TrafficSnapshot | undefined;
  private readonly options: TrafficOptions;

  constructor(traffic: TrafficSnapshot | undefined, options: TrafficOptions) {
    this.options = options;
    this.routes = new RouteTables([]);
    this.update(traffic);
  }

  /**
   * Applies a new version. Compiles everything first, so an invalid snapshot throws (the proxy
   * NACKs it) and leaves the previous state in place.
   */
  update(traffic: TrafficSnapshot | undefined): void {
    this.prepare(traffic)();
  }

  /**
   * Compiles a new version without touching the live one and returns the function that makes
   * it live, so the caller can apply it together with the rest of a version, or not at all.
   * Clusters that stay keep their runtime state; their settings change at commit.
   */
  prepare(traffic: TrafficSnapshot | undefined): () => void {
    const routes = new RouteTables(traffic?.routeTables ?? []);
    const extras = new WeakMap<HttpRouteSnapshot, RouteExtras>();
    for (const table of traffic?.routeTables ?? []) for (const route of table.http) extras.set(route, compileExtras(route));
    const added = new Map<string, ClusterRuntime>();
    for (const cluster of traffic?.clusters ?? []) {
      if (!this.clusters.has(cluster.name)) added.set(cluster.name, new ClusterRuntime(cluster, this.options));
    }
    return () => {
      this.routes = routes;
      this.extras = extras;
      this.snapshot = traffic;
      const names = new Set<string>();
      for (const cluster of traffic?.clusters ?? []) {
        names.add(cluster.name);
        const fresh = added.get(cluster.name);
        if (fresh) this.clusters.set(cluster.name, fresh);
        else this.clusters.get(cluster.name)?.update(cluster);
      }
      for (const name of this.clusters.keys()) if (!names.has(name)) this.clusters.delete(name);
    };
  }

  get traffic(): TrafficSnapshot | undefined {
    return this.snapshot;
  }

  get routeTables(): RouteTables {
    return this.routes;
  }

  cluster(name: string): ClusterRuntime | undefined {
    return this.clusters.get(name);
  }

  routeExtras(route: HttpRouteSnapshot): RouteExtras {
    let extras = this.extras.get(route);
    if (extras === undefined) {
      extras = compileExtras(route);
      this.extras.set(route, extras);
    }
    return extras;
  }
}

function compileExtras(route: HttpRouteSnapshot): RouteExtras {
  const rewrite = compileRewrite(route);
  const cors = route.corsPolicy === undefined ? undefined : compileCors(route.corsPolicy);
  const plain = compileRetryPolicy(route.retries);
  const hashed = compileRetryPolicy(route.retries, { consistentHash: true });
  return { rewrite, cors, retryPolicy: (cluster) => (cluster?.consistentHash === true ? hashed : plain) };
}
