/**
 * The outbound name lookup lives in the pure traffic core (src/traffic/service-lookup.ts), where
 * `trellis route check` uses it too; the data plane keeps importing it from here.
 */
export { type ResolvedTarget, ServiceResolver, splitAuthority } from '../traffic/service-lookup.js';
