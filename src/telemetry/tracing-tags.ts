/**
 * Envoy's span tags that depend on the response, apart from the tracer so that the data plane can
 * use them without loading the OpenTelemetry SDK (tracing.ts is loaded only when tracing is on).
 */

/** `http.status_code` (`0`: no response), `response_flags` (`-`: none), and `error` for 5xx or none. */
export function responseAttributes(status: number, responseFlags: readonly string[]): Record<string, string | boolean> {
  return {
    'http.status_code': String(status),
    response_flags: responseFlags.length === 0 ? '-' : [...new Set(responseFlags)].join(','),
    ...(status >= 500 || status === 0 ? { error: true } : {}),
  };
}
