/**
 * The metrics one Trellis proxy serves: Istio's standard metrics (names, labels and buckets as
 * Istio documents them, so Istio's Grafana dashboards and Kiali read them unchanged) and
 * Trellis's own `trellis_*` proxy metrics. Each instance owns its prom-client Registry: several
 * proxies share one process in tests, and the global default registry would mix them.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  HTTP_LABEL_NAMES,
  TCP_LABEL_NAMES,
  peerLabels,
  responseFlagsString,
  type PeerContext,
  type WorkloadMetadata,
} from './istio-labels.js';

/**
 * Envoy's default histogram buckets (`HistogramStatisticsImpl::supportedBuckets`), which Istio's
 * duration (milliseconds) and size (bytes) histograms use unless a workload overrides them.
 */
export const ENVOY_DEFAULT_BUCKETS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];

export const ISTIO_METRIC_NAMES = {
  requestsTotal: 'istio_requests_total',
  requestDuration: 'istio_request_duration_milliseconds',
  requestBytes: 'istio_request_bytes',
  responseBytes: 'istio_response_bytes',
  tcpSentBytes: 'istio_tcp_sent_bytes_total',
  tcpReceivedBytes: 'istio_tcp_received_bytes_total',
  tcpOpened: 'istio_tcp_connections_opened_total',
  tcpClosed: 'istio_tcp_connections_closed_total',
} as const;

/** One finished HTTP or gRPC request, as the reporting proxy saw it. */
export interface RequestRecord extends PeerContext {
  readonly protocol: 'http' | 'grpc';
  /** 0 when no response was sent (Envoy's convention). */
  readonly responseCode: number;
  /** gRPC status from trailers or headers; only for gRPC. */
  readonly grpcStatus?: number;
  /** Envoy short flags such as `UH`, `UO`, `RL`, `URX`. */
  readonly responseFlags?: readonly string[];
  readonly durationMs: number;
  /** Wire bytes received from the downstream / sent to it (Envoy's downstream bytes meter). */
  readonly requestBytes: number;
  readonly responseBytes: number;
}

/** A TCP connection's edge; the same object is passed to open, bytes and close. */
export interface TcpRecord extends PeerContext {
  readonly responseFlags?: readonly string[];
}

export type AuthzMetricDecision = 'allow' | 'deny';
/** The deciding policy's action; `none` when a default decided (no policy). */
export type AuthzMetricAction = 'ALLOW' | 'DENY' | 'CUSTOM' | 'AUDIT' | 'none';

export interface ProxyMetricsOptions {
  /** This proxy's workload (its node metadata in Istio terms). */
  readonly workload: WorkloadMetadata;
  /** Overrides {@link ENVOY_DEFAULT_BUCKETS} (Istio's `sidecar.istio.io/statsHistogramBuckets`). */
  readonly durationBuckets?: readonly number[];
  readonly sizeBuckets?: readonly number[];
  /** Clock for the config push age gauge; tests pass a fixed one. */
  readonly now?: () => number;
}

export interface Exposition {
  readonly contentType: string;
  readonly body: string;
}

type Http = (typeof HTTP_LABEL_NAMES)[number];
type Tcp = (typeof TCP_LABEL_NAMES)[number];

export class ProxyMetrics {
  readonly registry = new Registry();
  private workload: WorkloadMetadata;
  private readonly now: () => number;

  private readonly requests: Counter<Http>;
  private readonly duration: Histogram<Http>;
  private readonly requestSize: Histogram<Http>;
  private readonly responseSize: Histogram<Http>;
  private readonly tcpSent: Counter<Tcp>;
  private readonly tcpReceived: Counter<Tcp>;
  private readonly tcpOpened: Counter<Tcp>;
  private readonly tcpClosed: Counter<Tcp>;

  private readonly authz: Counter<'decision' | 'action' | 'policy'>;
  private readonly authzDryRun: Counter<'effect' | 'policy'>;
  private readonly jwtFailures: Counter<'reason'>;
  private readonly certExpiry: Gauge<'kind'>;
  private readonly configInfo: Gauge<'version'>;
  private readonly configUpdated: Gauge;
  private readonly configRejected: Counter;
  private readonly circuitBreaker: Counter<'cluster' | 'reason'>;
  private readonly rateLimit: Counter<'source' | 'per'>;

  private configVersion: string | undefined;
  private configAppliedAt: number | undefined;

  constructor(options: ProxyMetricsOptions) {
    this.workload = options.workload;
    this.now = options.now ?? Date.now;
    const registers = [this.registry];
    const durationBuckets = [...(options.durationBuckets ?? ENVOY_DEFAULT_BUCKETS)];
    const sizeBuckets = [...(options.sizeBuckets ?? ENVOY_DEFAULT_BUCKETS)];
    const http = [...HTTP_LABEL_NAMES];
    const tcp = [...TCP_LABEL_NAMES];

    this.requests = new Counter({ name: ISTIO_METRIC_NAMES.requestsTotal, help: 'Requests handled by the proxy.', labelNames: http, registers });
    this.duration = new Histogram({ name: ISTIO_METRIC_NAMES.requestDuration, help: 'Request duration in milliseconds.', labelNames: http, buckets: durationBuckets, registers });
    this.requestSize = new Histogram({ name: ISTIO_METRIC_NAMES.requestBytes, help: 'Request size in bytes.', labelNames: http, buckets: sizeBuckets, registers });
    this.responseSize = new Histogram({ name: ISTIO_METRIC_NAMES.responseBytes, help: 'Response size in bytes.', labelNames: http, buckets: sizeBuckets, registers });
    this.tcpSent = new Counter({ name: ISTIO_METRIC_NAMES.tcpSentBytes, help: 'Bytes sent to the downstream on TCP connections.', labelNames: tcp, registers });
    this.tcpReceived = new Counter({ name: ISTIO_METRIC_NAMES.tcpReceivedBytes, help: 'Bytes received from the downstream on TCP connections.', labelNames: tcp, registers });
    this.tcpOpened = new Counter({ name: ISTIO_METRIC_NAMES.tcpOpened, help: 'TCP connections opened.', labelNames: tcp, registers });
    this.tcpClosed = new Counter({ name: ISTIO_METRIC_NAMES.tcpClosed, help: 'TCP connections closed.', labelNames: tcp, registers });

    this.authz = new Counter({
      name: 'trellis_authz_decisions_total',
      help: 'Authorization decisions by outcome, deciding action and policy (namespace/name, "none" for a default).',
      labelNames: ['decision', 'action', 'policy'],
      registers,
    });
    this.authzDryRun = new Counter({
      name: 'trellis_authz_dry_run_matches_total',
      help: 'Dry-run policies that matched a request, by what they would have done.',
      labelNames: ['effect', 'policy'],
      registers,
    });
    this.jwtFailures = new Counter({ name: 'trellis_jwt_failures_total', help: 'Rejected request JWTs by reason.', labelNames: ['reason'], registers });
    this.certExpiry = new Gauge({
      name: 'trellis_certificate_expiry_timestamp_seconds',
      help: 'Unix time at which the proxy certificate (kind="leaf") or its trust root (kind="root") expires.',
      labelNames: ['kind'],
      registers,
    });
    this.configInfo = new Gauge({ name: 'trellis_config_info', help: 'The configuration version the proxy serves (value 1).', labelNames: ['version'], registers });
    this.configUpdated = new Gauge({ name: 'trellis_config_last_update_timestamp_seconds', help: 'Unix time the current configuration was applied; 0 before the first.', registers });
    const current = (): { version: string; age: number } | undefined =>
      this.configVersion === undefined || this.configAppliedAt === undefined
        ? undefined
        : { version: this.configVersion, age: Math.max(0, (this.now() - this.configAppliedAt) / 1000) };
    new Gauge({
      name: 'trellis_config_push_age_seconds',
      help: 'Seconds since the proxy applied its current configuration version; absent before the first.',
      labelNames: ['version'],
      registers,
      // Computed at scrape time so it keeps growing while the control plane is silent.
      collect() {
        this.reset();
        const now = current();
        if (now !== undefined) this.set({ version: now.version }, now.age);
      },
    });
    this.configRejected = new Counter({ name: 'trellis_config_rejected_total', help: 'Configuration versions the proxy refused (NACKed).', registers });
    this.circuitBreaker = new Counter({
      name: 'trellis_circuit_breaker_rejections_total',
      help: 'Requests refused by an upstream circuit breaker, by cluster and the limit that tripped.',
      labelNames: ['cluster', 'reason'],
      registers,
    });
    this.rateLimit = new Counter({
      name: 'trellis_rate_limit_rejections_total',
      help: 'Requests refused by a local rate limit, by RateLimit resource and bucket scope.',
      labelNames: ['source', 'per'],
      registers,
    });
  }

  /** This proxy's workload metadata changed (e.g. the control plane pushed its labels). */
  setWorkload(workload: WorkloadMetadata): void {
    this.workload = workload;
  }

  recordRequest(record: RequestRecord): void {
    const labels = {
      ...peerLabels(this.workload, record, record.protocol, responseFlagsString(record.responseFlags)),
      response_code: String(record.responseCode),
      // Istio leaves the label empty for plain HTTP.
      grpc_response_status: record.protocol === 'grpc' && record.grpcStatus !== undefined ? String(record.grpcStatus) : '',
    };
    this.requests.inc(labels);
    this.duration.observe(labels, record.durationMs);
    this.requestSize.observe(labels, record.requestBytes);
    this.responseSize.observe(labels, record.responseBytes);
  }

  recordTcpOpen(record: TcpRecord): void {
    this.tcpOpened.inc(this.tcpLabels(record));
  }

  /** Byte deltas since the last call for this connection (Istio reports periodically and at close). */
  recordTcpBytes(record: TcpRecord, sent: number, received: number): void {
    const labels = this.tcpLabels(record);
    if (sent > 0) this.tcpSent.inc(labels, sent);
    if (received > 0) this.tcpReceived.inc(labels, received);
  }

  /** Counts the close and the final byte deltas. */
  recordTcpClose(record: TcpRecord, sent = 0, received = 0): void {
    this.recordTcpBytes(record, sent, received);
    this.tcpClosed.inc(this.tcpLabels(record));
  }

  recordAuthzDecision(decision: AuthzMetricDecision, action: AuthzMetricAction, policy: string | null): void {
    this.authz.inc({ decision, action, policy: policy ?? 'none' });
  }

  recordAuthzDryRun(effect: 'would allow' | 'would deny', policy: string): void {
    this.authzDryRun.inc({ effect: effect === 'would allow' ? 'allow' : 'deny', policy });
  }

  /** `reason` is the JWT verifier's reason code (`expired`, `bad_signature`, …). */
  recordJwtFailure(reason: string): void {
    this.jwtFailures.inc({ reason });
  }

  setCertificateExpiry(kind: 'leaf' | 'root', notAfter: Date): void {
    this.certExpiry.set({ kind }, notAfter.getTime() / 1000);
  }

  /** A new configuration version became live. */
  recordConfigApplied(version: string): void {
    if (this.configVersion !== undefined && this.configVersion !== version) this.configInfo.remove({ version: this.configVersion });
    this.configVersion = version;
    this.configAppliedAt = this.now();
    this.configInfo.set({ version }, 1);
    this.configUpdated.set(this.configAppliedAt / 1000);
  }

  recordConfigRejected(): void {
    this.configRejected.inc();
  }

  /** `reason`: the traffic core's overflow reason (`max-requests`, `max-pending-requests`, …). */
  recordCircuitBreakerRejection(cluster: string, reason: string): void {
    this.circuitBreaker.inc({ cluster, reason });
  }

  recordRateLimitRejection(source: string, per: 'workload' | 'caller'): void {
    this.rateLimit.inc({ source, per });
  }

  async exposition(): Promise<Exposition> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private tcpLabels(record: TcpRecord): Record<Tcp, string> {
    return peerLabels(this.workload, record, 'tcp', responseFlagsString(record.responseFlags));
  }
}
