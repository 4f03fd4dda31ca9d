/**
 * The condition names Istio accepts in `HTTPRetry.retryOn` (Envoy's `x-envoy-retry-on` and
 * `x-envoy-retry-grpc-on` policies). Validation (src/api) and the retry state machine
 * (src/traffic/retry.ts) share this list.
 */

export const HTTP_CONDITIONS = [
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
] as const;

/** gRPC condition names and the `grpc-status` code each one retries. */
export const GRPC_CONDITIONS: Readonly<Record<string, number>> = Object.freeze({
  cancelled: 1,
  'deadline-exceeded': 4,
  'resource-exhausted': 8,
  internal: 13,
  unavailable: 14,
});

/** Whether `name` is a condition Istio/Envoy accept in `retryOn` (a status code counts too). */
export function isRetryCondition(name: string): boolean {
  return (HTTP_CONDITIONS as readonly string[]).includes(name) || Object.hasOwn(GRPC_CONDITIONS, name) || isRetryStatusCode(name);
}

/** A bare HTTP status code in `retryOn`: three digits, 100–599. */
export function isRetryStatusCode(text: string): boolean {
  return /^[1-5][0-9][0-9]$/.test(text);
}
