/**
 * The traffic-management core: pure functions and small state machines, no I/O, no timers.
 * The sidecar's outbound path and `trellis route check` use these; see each module's header
 * for the Istio/Envoy semantics it follows.
 */
export * from './circuit-breaker.js';
export * from './cluster.js';
export * from './cors.js';
export * from './destination.js';
export * from './egress.js';
export * from './explain.js';
export * from './fault.js';
export * from './hash.js';
export * from './header-ops.js';
export * from './load-balancer.js';
export * from './matchers.js';
export * from './outlier.js';
export * from './random.js';
export * from './rate-limit.js';
export * from './redirect.js';
export * from './request.js';
export * from './retry.js';
export * from './rewrite.js';
export * from './route-select.js';
export * from './service-lookup.js';
