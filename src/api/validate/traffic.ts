import type { ResourceMeta } from '../resources.js';
import type { DestinationRuleSpec, RateLimitSpec, SidecarSpec, VirtualServiceSpec } from '../schemas/traffic.js';
import type { ResourceChecker } from './checker.js';

/** Semantic checks of the traffic kinds (filled in by the traffic validation work). */

export function checkVirtualService(_checker: ResourceChecker, _meta: ResourceMeta, _spec: VirtualServiceSpec): void {}

export function checkDestinationRule(_checker: ResourceChecker, _meta: ResourceMeta, _spec: DestinationRuleSpec): void {}

export function checkSidecar(_checker: ResourceChecker, _spec: SidecarSpec): void {}

export function checkRateLimit(_checker: ResourceChecker, _spec: RateLimitSpec): void {}
