/**
 * trellis.dev/v1alpha1 RateLimit → the inbound rate limits of one workload. A RateLimit applies
 * to the workloads of its namespace that its selector matches (no selector: all of them); one in
 * the root namespace without a selector applies to every workload, as mesh-wide policies do.
 */
import type { ConfigSet } from '../api/config-set.js';
import { parseDuration } from '../api/duration.js';
import type { RateLimitResource } from '../api/resources.js';
import { compareStrings, labelsMatch, type RegistryWorkload } from './registry.js';
import type { RateLimitSnapshot } from './snapshot.js';

export function rateLimitsFor(config: ConfigSet, workload: RegistryWorkload): RateLimitSnapshot[] {
  const applies = (limit: RateLimitResource): boolean => {
    const namespace = limit.metadata.namespace ?? 'default';
    const selector = limit.spec.selector?.matchLabels;
    if (namespace === workload.namespace) return labelsMatch(selector, workload.labels);
    return namespace === config.mesh.rootNamespace && Object.keys(selector ?? {}).length === 0;
  };
  return config.rateLimits
    .filter(applies)
    .map((limit) => ({
      source: `${limit.metadata.namespace ?? 'default'}/${limit.metadata.name}`,
      rules: limit.spec.rules.map((rule) => ({
        match: {
          ...(rule.match?.paths === undefined ? {} : { paths: rule.match.paths }),
          ...(rule.match?.methods === undefined ? {} : { methods: rule.match.methods }),
          ...(rule.match?.ports === undefined ? {} : { ports: rule.match.ports }),
        },
        per: rule.per ?? 'workload',
        maxTokens: rule.tokenBucket.maxTokens,
        tokensPerFill: rule.tokenBucket.tokensPerFill ?? 1,
        fillIntervalMs: parseDuration(rule.tokenBucket.fillInterval),
      })),
    }))
    .sort((a, b) => compareStrings(a.source, b.source));
}
