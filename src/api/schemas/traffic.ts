import * as z from 'zod';
import { stringList, stringMap } from './common.js';

/**
 * networking.istio.io traffic kinds (v1, v1beta1 and v1alpha3 share one schema): VirtualService,
 * DestinationRule and Sidecar, field for field as Istio's API defines them. Fields Trellis does
 * not act on (gateways, tunnels, locality, …) are accepted so Istio YAML loads unchanged; the
 * validators warn that they are ignored.
 */

/** Anything Trellis accepts but does not read: validated only as "present". */
const ignored = z.unknown().optional();

export const stringMatchSchema = z.strictObject({
  exact: z.string().optional(),
  prefix: z.string().optional(),
  regex: z.string().optional(),
});
export type StringMatch = z.infer<typeof stringMatchSchema>;

export const percentSchema = z.strictObject({ value: z.number() });

export const portSelectorSchema = z.strictObject({ number: z.number() });

export const destinationSchema = z.strictObject({
  host: z.string(),
  subset: z.string().optional(),
  port: portSelectorSchema.optional(),
});
export type Destination = z.infer<typeof destinationSchema>;

export const headerOperationsSchema = z.strictObject({
  set: stringMap.optional(),
  add: stringMap.optional(),
  remove: stringList.optional(),
});
export type HeaderOperations = z.infer<typeof headerOperationsSchema>;

export const headersSchema = z.strictObject({
  request: headerOperationsSchema.optional(),
  response: headerOperationsSchema.optional(),
});
export type Headers = z.infer<typeof headersSchema>;

export const httpMatchRequestSchema = z.strictObject({
  name: z.string().optional(),
  uri: stringMatchSchema.optional(),
  scheme: stringMatchSchema.optional(),
  method: stringMatchSchema.optional(),
  authority: stringMatchSchema.optional(),
  headers: z.record(z.string(), stringMatchSchema).optional(),
  port: z.number().optional(),
  sourceLabels: stringMap.optional(),
  gateways: stringList.optional(),
  queryParams: z.record(z.string(), stringMatchSchema).optional(),
  ignoreUriCase: z.boolean().optional(),
  withoutHeaders: z.record(z.string(), stringMatchSchema).optional(),
  sourceNamespace: z.string().optional(),
  statPrefix: z.string().optional(),
});
export type HttpMatchRequest = z.infer<typeof httpMatchRequestSchema>;

export const httpRouteDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: z.number().optional(),
  headers: headersSchema.optional(),
});
export type HttpRouteDestination = z.infer<typeof httpRouteDestinationSchema>;

export const REDIRECT_PORT_DERIVATIONS = ['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'] as const;

export const httpRedirectSchema = z.strictObject({
  uri: z.string().optional(),
  authority: z.string().optional(),
  port: z.number().optional(),
  derivePort: z.enum(REDIRECT_PORT_DERIVATIONS).optional(),
  scheme: z.string().optional(),
  redirectCode: z.number().optional(),
});
export type HttpRedirect = z.infer<typeof httpRedirectSchema>;

export const httpDirectResponseSchema = z.strictObject({
  status: z.number(),
  body: z.strictObject({ string: z.string().optional(), bytes: z.string().optional() }).optional(),
});
export type HttpDirectResponse = z.infer<typeof httpDirectResponseSchema>;

export const httpRewriteSchema = z.strictObject({
  uri: z.string().optional(),
  authority: z.string().optional(),
  uriRegexRewrite: z.strictObject({ match: z.string(), rewrite: z.string() }).optional(),
});
export type HttpRewrite = z.infer<typeof httpRewriteSchema>;

export const httpRetrySchema = z.strictObject({
  attempts: z.number().optional(),
  perTryTimeout: z.string().optional(),
  retryOn: z.string().optional(),
  retryRemoteLocalities: z.boolean().optional(),
  retryIgnorePreviousHosts: z.boolean().optional(),
  backoff: z.string().optional(),
});
export type HttpRetry = z.infer<typeof httpRetrySchema>;

export const httpFaultInjectionSchema = z.strictObject({
  delay: z
    .strictObject({
      fixedDelay: z.string().optional(),
      exponentialDelay: z.string().optional(),
      percentage: percentSchema.optional(),
      percent: z.number().optional(),
    })
    .optional(),
  abort: z
    .strictObject({
      httpStatus: z.number().optional(),
      grpcStatus: z.string().optional(),
      http2Error: z.string().optional(),
      percentage: percentSchema.optional(),
    })
    .optional(),
});
export type HttpFaultInjection = z.infer<typeof httpFaultInjectionSchema>;

export const httpMirrorPolicySchema = z.strictObject({
  destination: destinationSchema,
  percentage: percentSchema.optional(),
});
export type HttpMirrorPolicy = z.infer<typeof httpMirrorPolicySchema>;

export const UNMATCHED_PREFLIGHTS = ['UNSPECIFIED', 'FORWARD', 'IGNORE'] as const;

export const corsPolicySchema = z.strictObject({
  allowOrigins: z.array(stringMatchSchema).optional(),
  /** Deprecated in Istio: exact origins. */
  allowOrigin: stringList.optional(),
  allowMethods: stringList.optional(),
  allowHeaders: stringList.optional(),
  exposeHeaders: stringList.optional(),
  maxAge: z.string().optional(),
  allowCredentials: z.boolean().optional(),
  unmatchedPreflights: z.enum(UNMATCHED_PREFLIGHTS).optional(),
});
export type CorsPolicy = z.infer<typeof corsPolicySchema>;

export const httpRouteSchema = z.strictObject({
  name: z.string().optional(),
  match: z.array(httpMatchRequestSchema).optional(),
  route: z.array(httpRouteDestinationSchema).optional(),
  redirect: httpRedirectSchema.optional(),
  directResponse: httpDirectResponseSchema.optional(),
  delegate: ignored,
  rewrite: httpRewriteSchema.optional(),
  timeout: z.string().optional(),
  retries: httpRetrySchema.optional(),
  fault: httpFaultInjectionSchema.optional(),
  mirror: destinationSchema.optional(),
  mirrors: z.array(httpMirrorPolicySchema).optional(),
  mirrorPercentage: percentSchema.optional(),
  /** Deprecated in Istio: an integer percentage. */
  mirrorPercent: z.number().optional(),
  corsPolicy: corsPolicySchema.optional(),
  headers: headersSchema.optional(),
});
export type HttpRoute = z.infer<typeof httpRouteSchema>;

export const routeDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: z.number().optional(),
});
export type RouteDestination = z.infer<typeof routeDestinationSchema>;

export const l4MatchSchema = z.strictObject({
  destinationSubnets: stringList.optional(),
  port: z.number().optional(),
  sourceLabels: stringMap.optional(),
  gateways: stringList.optional(),
  sourceNamespace: z.string().optional(),
  sourceSubnet: z.string().optional(),
});
export type L4Match = z.infer<typeof l4MatchSchema>;

export const tlsMatchSchema = z.strictObject({
  sniHosts: stringList,
  destinationSubnets: stringList.optional(),
  port: z.number().optional(),
  sourceLabels: stringMap.optional(),
  gateways: stringList.optional(),
  sourceNamespace: z.string().optional(),
});
export type TlsMatch = z.infer<typeof tlsMatchSchema>;

export const tcpRouteSchema = z.strictObject({
  match: z.array(l4MatchSchema).optional(),
  route: z.array(routeDestinationSchema).optional(),
});
export type TcpRoute = z.infer<typeof tcpRouteSchema>;

export const tlsRouteSchema = z.strictObject({
  match: z.array(tlsMatchSchema),
  route: z.array(routeDestinationSchema).optional(),
});
export type TlsRoute = z.infer<typeof tlsRouteSchema>;

export const virtualServiceSpecSchema = z.strictObject({
  hosts: stringList.optional(),
  gateways: stringList.optional(),
  http: z.array(httpRouteSchema).optional(),
  tls: z.array(tlsRouteSchema).optional(),
  tcp: z.array(tcpRouteSchema).optional(),
  exportTo: stringList.optional(),
});
export type VirtualServiceSpec = z.infer<typeof virtualServiceSpecSchema>;

// ---- DestinationRule

export const SIMPLE_LOAD_BALANCERS = ['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'] as const;

export const consistentHashSchema = z.strictObject({
  httpHeaderName: z.string().optional(),
  httpCookie: z.strictObject({ name: z.string(), path: z.string().optional(), ttl: z.string().optional(), attributes: ignored }).optional(),
  useSourceIp: z.boolean().optional(),
  httpQueryParameterName: z.string().optional(),
  ringHash: z.strictObject({ minimumRingSize: z.number().optional() }).optional(),
  maglev: ignored,
  minimumRingSize: z.number().optional(),
});
export type ConsistentHash = z.infer<typeof consistentHashSchema>;

export const loadBalancerSchema = z.strictObject({
  simple: z.enum(SIMPLE_LOAD_BALANCERS).optional(),
  consistentHash: consistentHashSchema.optional(),
  localityLbSetting: ignored,
  warmupDurationSecs: ignored,
  warmup: ignored,
});
export type LoadBalancerSettings = z.infer<typeof loadBalancerSchema>;

export const H2_UPGRADE_POLICIES = ['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'] as const;

export const connectionPoolSchema = z.strictObject({
  tcp: z
    .strictObject({
      maxConnections: z.number().optional(),
      connectTimeout: z.string().optional(),
      tcpKeepalive: ignored,
      maxConnectionDuration: ignored,
      idleTimeout: z.string().optional(),
    })
    .optional(),
  http: z
    .strictObject({
      http1MaxPendingRequests: z.number().optional(),
      http2MaxRequests: z.number().optional(),
      maxRequestsPerConnection: z.number().optional(),
      maxRetries: z.number().optional(),
      idleTimeout: z.string().optional(),
      h2UpgradePolicy: z.enum(H2_UPGRADE_POLICIES).optional(),
      useClientProtocol: z.boolean().optional(),
      maxConcurrentStreams: z.number().optional(),
    })
    .optional(),
});
export type ConnectionPoolSettings = z.infer<typeof connectionPoolSchema>;

export const outlierDetectionSchema = z.strictObject({
  splitExternalLocalOriginErrors: z.boolean().optional(),
  consecutiveLocalOriginFailures: z.number().optional(),
  consecutiveGatewayErrors: z.number().optional(),
  consecutive5xxErrors: z.number().optional(),
  /** Deprecated in Istio: same as consecutiveGatewayErrors. */
  consecutiveErrors: z.number().optional(),
  interval: z.string().optional(),
  baseEjectionTime: z.string().optional(),
  maxEjectionPercent: z.number().optional(),
  minHealthPercent: z.number().optional(),
});
export type OutlierDetection = z.infer<typeof outlierDetectionSchema>;

export const CLIENT_TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;

export const clientTlsSchema = z.strictObject({
  mode: z.enum(CLIENT_TLS_MODES).optional(),
  clientCertificate: z.string().optional(),
  privateKey: z.string().optional(),
  caCertificates: z.string().optional(),
  credentialName: z.string().optional(),
  subjectAltNames: stringList.optional(),
  sni: z.string().optional(),
  insecureSkipVerify: z.boolean().optional(),
  caCrl: z.string().optional(),
});
export type ClientTlsSettings = z.infer<typeof clientTlsSchema>;

const trafficPolicyFields = {
  loadBalancer: loadBalancerSchema.optional(),
  connectionPool: connectionPoolSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  tls: clientTlsSchema.optional(),
};

export const portTrafficPolicySchema = z.strictObject({
  port: portSelectorSchema.optional(),
  ...trafficPolicyFields,
});
export type PortTrafficPolicy = z.infer<typeof portTrafficPolicySchema>;

export const trafficPolicySchema = z.strictObject({
  ...trafficPolicyFields,
  portLevelSettings: z.array(portTrafficPolicySchema).optional(),
  tunnel: ignored,
  proxyProtocol: ignored,
  retryBudget: ignored,
});
export type TrafficPolicy = z.infer<typeof trafficPolicySchema>;

export const subsetSchema = z.strictObject({
  name: z.string(),
  labels: stringMap.optional(),
  trafficPolicy: trafficPolicySchema.optional(),
});
export type Subset = z.infer<typeof subsetSchema>;

export const destinationRuleSpecSchema = z.strictObject({
  host: z.string(),
  trafficPolicy: trafficPolicySchema.optional(),
  subsets: z.array(subsetSchema).optional(),
  exportTo: stringList.optional(),
  workloadSelector: z.strictObject({ matchLabels: stringMap.optional() }).optional(),
});
export type DestinationRuleSpec = z.infer<typeof destinationRuleSpecSchema>;

// ---- Sidecar

export const OUTBOUND_TRAFFIC_MODES = ['REGISTRY_ONLY', 'ALLOW_ANY'] as const;
export type OutboundTrafficMode = (typeof OUTBOUND_TRAFFIC_MODES)[number];

export const outboundTrafficPolicySchema = z.strictObject({
  mode: z.enum(OUTBOUND_TRAFFIC_MODES).optional(),
  egressProxy: ignored,
});

export const sidecarPortSchema = z.strictObject({
  number: z.number(),
  protocol: z.string().optional(),
  name: z.string().optional(),
  targetPort: z.number().optional(),
});

export const egressListenerSchema = z.strictObject({
  port: sidecarPortSchema.optional(),
  bind: z.string().optional(),
  captureMode: z.string().optional(),
  hosts: stringList,
});
export type EgressListener = z.infer<typeof egressListenerSchema>;

export const sidecarSpecSchema = z.strictObject({
  workloadSelector: z.strictObject({ labels: stringMap.optional() }).optional(),
  ingress: ignored,
  egress: z.array(egressListenerSchema).optional(),
  inboundConnectionPool: ignored,
  outboundTrafficPolicy: outboundTrafficPolicySchema.optional(),
});
export type SidecarSpec = z.infer<typeof sidecarSpecSchema>;

// ---- trellis.dev/v1alpha1 RateLimit: local rate limiting as a first-class kind (Istio only
// offers it through EnvoyFilter).

export const RATE_LIMIT_KEYS = ['workload', 'caller'] as const;

export const rateLimitSpecSchema = z.strictObject({
  selector: z.strictObject({ matchLabels: stringMap.optional() }).optional(),
  rules: z.array(
    z.strictObject({
      match: z
        .strictObject({
          paths: stringList.optional(),
          methods: stringList.optional(),
          ports: z.array(z.number()).optional(),
        })
        .optional(),
      per: z.enum(RATE_LIMIT_KEYS).optional(),
      tokenBucket: z.strictObject({
        maxTokens: z.number(),
        tokensPerFill: z.number().optional(),
        fillInterval: z.string(),
      }),
    }),
  ),
});
export type RateLimitSpec = z.infer<typeof rateLimitSpecSchema>;
