/**
 * Istio's standard metrics and their labels as Istio documents them (istio.io, "Istio Standard
 * Metrics"; label names as istio/proxy's istio_stats filter emits them). Written out here, not
 * imported from src/telemetry, so tests check the code against the documented list.
 */
export const ISTIO_HTTP_METRICS = {
  istio_requests_total: 'counter',
  istio_request_duration_milliseconds: 'histogram',
  istio_request_bytes: 'histogram',
  istio_response_bytes: 'histogram',
} as const;

export const ISTIO_TCP_METRICS = {
  istio_tcp_sent_bytes_total: 'counter',
  istio_tcp_received_bytes_total: 'counter',
  istio_tcp_connections_opened_total: 'counter',
  istio_tcp_connections_closed_total: 'counter',
} as const;

export const ISTIO_COMMON_LABELS: readonly string[] = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
];

export const ISTIO_HTTP_LABELS: readonly string[] = [...ISTIO_COMMON_LABELS, 'response_code', 'grpc_response_status'];
