import type { FieldPath } from '../diagnostics.js';
import { isHeaderName } from '../names.js';
import type { ResourceMeta } from '../resources.js';
import type {
  ClientTlsSettings,
  ConnectionPoolSettings,
  DestinationRuleSpec,
  LoadBalancerSettings,
  OutlierDetection,
  PortTrafficPolicy,
  TrafficPolicy,
} from '../schemas/traffic.js';
import type { ResourceChecker } from './checker.js';
import { checkLabelMap, checkSelectorLabels } from './common.js';
import { checkCount, checkDuration, checkExportTo, checkHost, checkIntegerPercent, checkPortNumber, checkSubsetName } from './traffic-values.js';

/**
 * DestinationRule validation: Istio's rules, and errors for settings Trellis cannot honor where
 * ignoring them would change what the traffic does (TLS origination with your own certificates,
 * CA pinning); warnings for settings that only tune (maglev, locality, keepalive).
 */

export function checkDestinationRule(checker: ResourceChecker, meta: ResourceMeta, spec: DestinationRuleSpec): void {
  const namespace = meta.namespace ?? 'default';
  if (spec.host === '') checker.error(['spec', 'host'], 'host is required: the service this rule applies to', 'TRELLIS_CONFIG_MISSING_FIELD');
  else if (spec.host !== '*') checkHost(checker, ['spec', 'host'], spec.host, 'host');

  if (spec.trafficPolicy !== undefined) checkTrafficPolicy(checker, ['spec', 'trafficPolicy'], spec.trafficPolicy);

  const names = new Map<string, number>();
  spec.subsets?.forEach((subset, i) => {
    const path = ['spec', 'subsets', i];
    checkSubsetName(checker, [...path, 'name'], subset.name);
    const first = names.get(subset.name);
    if (first !== undefined) checker.error([...path, 'name'], `subset "${subset.name}" is defined twice (first at subsets[${first}])`, 'TRELLIS_CONFIG_DUPLICATE');
    else names.set(subset.name, i);
    checkLabelMap(checker, [...path, 'labels'], subset.labels);
    if (subset.trafficPolicy !== undefined) checkTrafficPolicy(checker, [...path, 'trafficPolicy'], subset.trafficPolicy);
  });

  checkExportTo(checker, ['spec', 'exportTo'], namespace, spec.exportTo);
  if (spec.workloadSelector !== undefined) {
    checkSelectorLabels(checker, ['spec', 'workloadSelector'], 'matchLabels', spec.workloadSelector.matchLabels);
    const exported = (spec.exportTo ?? []).map((v) => (v === '.' ? namespace : v));
    if (exported.some((v) => v !== namespace)) {
      checker.error(['spec', 'exportTo'], 'a DestinationRule with workloadSelector applies to its own namespace only: exportTo may only hold "." or the namespace');
    }
  }
}

const TRAFFIC_POLICY_IGNORED: Readonly<Record<string, string>> = {
  tunnel: 'tunnel settings (HTTP CONNECT/POST tunnels to a proxy) are not supported',
  proxyProtocol: 'the PROXY protocol toward upstreams is not supported',
  retryBudget: 'retry budgets are not supported: the connection pool maxRetries limit applies',
};

function checkTrafficPolicy(checker: ResourceChecker, path: FieldPath, policy: TrafficPolicy): void {
  const fields = Object.entries(policy).filter(([, v]) => v !== undefined);
  if (fields.length === 0) {
    checker.error(path, 'an empty trafficPolicy: set at least one of loadBalancer, connectionPool, outlierDetection, tls and portLevelSettings, or remove it');
    return;
  }
  for (const [field, why] of Object.entries(TRAFFIC_POLICY_IGNORED)) {
    if (policy[field as keyof TrafficPolicy] !== undefined) checker.warn([...path, field], `${why}: ${field} is ignored`, 'TRELLIS_CONFIG_IGNORED', { atKey: true });
  }
  checkPolicySettings(checker, path, policy);
  const ports = new Map<number, number>();
  policy.portLevelSettings?.forEach((settings, i) => {
    const at = [...path, 'portLevelSettings', i];
    checkPortPolicy(checker, at, settings);
    const port = settings.port?.number;
    if (port === undefined) return;
    const first = ports.get(port);
    if (first !== undefined) checker.error([...at, 'port', 'number'], `port ${port} already has settings (portLevelSettings[${first}])`, 'TRELLIS_CONFIG_DUPLICATE');
    else ports.set(port, i);
  });
}

function checkPortPolicy(checker: ResourceChecker, path: FieldPath, policy: PortTrafficPolicy): void {
  if (policy.port === undefined) checker.error(path, 'port-level settings need port.number', 'TRELLIS_CONFIG_MISSING_FIELD');
  else checkPortNumber(checker, [...path, 'port', 'number'], policy.port.number);
  if (policy.loadBalancer === undefined && policy.connectionPool === undefined && policy.outlierDetection === undefined && policy.tls === undefined) {
    checker.error(path, 'port-level settings need at least one of loadBalancer, connectionPool, outlierDetection and tls', 'TRELLIS_CONFIG_MISSING_FIELD');
    return;
  }
  checkPolicySettings(checker, path, policy);
}

function checkPolicySettings(checker: ResourceChecker, path: FieldPath, policy: PortTrafficPolicy | TrafficPolicy): void {
  if (policy.loadBalancer !== undefined) checkLoadBalancer(checker, [...path, 'loadBalancer'], policy.loadBalancer);
  if (policy.connectionPool !== undefined) checkConnectionPool(checker, [...path, 'connectionPool'], policy.connectionPool);
  if (policy.outlierDetection !== undefined) checkOutlierDetection(checker, [...path, 'outlierDetection'], policy.outlierDetection);
  if (policy.tls !== undefined) checkClientTls(checker, [...path, 'tls'], policy.tls);
}

function checkLoadBalancer(checker: ResourceChecker, path: FieldPath, lb: LoadBalancerSettings): void {
  if (lb.simple !== undefined && lb.consistentHash !== undefined) checker.error(path, 'set simple or consistentHash, not both');
  if (lb.simple === 'PASSTHROUGH') {
    checker.error([...path, 'simple'], 'PASSTHROUGH (send to the original destination address) is not supported: a sidecar has no original destination to pass through to; use ROUND_ROBIN, LEAST_REQUEST or RANDOM', 'TRELLIS_CONFIG_UNSUPPORTED');
  }
  if (lb.simple === 'LEAST_CONN') checker.warn([...path, 'simple'], 'LEAST_CONN is deprecated: use LEAST_REQUEST (same behavior)', 'TRELLIS_CONFIG_DEPRECATED');
  for (const field of ['localityLbSetting', 'warmupDurationSecs', 'warmup'] as const) {
    if (lb[field] !== undefined) {
      const why = field === 'localityLbSetting' ? 'Trellis has no localities' : 'slow start (warmup) is not supported';
      checker.warn([...path, field], `${why}: ${field} is ignored`, 'TRELLIS_CONFIG_IGNORED', { atKey: true });
    }
  }
  const hash = lb.consistentHash;
  if (hash === undefined) return;
  const hashPath = [...path, 'consistentHash'];
  const keys = (['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const).filter((k) => hash[k] !== undefined);
  if (keys.length === 0) checker.error(hashPath, 'consistentHash needs one hash key: httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName', 'TRELLIS_CONFIG_MISSING_FIELD');
  else if (keys.length > 1) checker.error(hashPath, `consistentHash takes one hash key, not ${keys.join(' and ')}`);
  if (hash.httpHeaderName !== undefined && !isHeaderName(hash.httpHeaderName)) {
    checker.error([...hashPath, 'httpHeaderName'], hash.httpHeaderName === '' ? 'header name cannot be empty' : `"${hash.httpHeaderName}" is not a valid header name`);
  }
  if (hash.httpCookie !== undefined) {
    if (hash.httpCookie.name === '') checker.error([...hashPath, 'httpCookie', 'name'], 'the cookie needs a name', 'TRELLIS_CONFIG_MISSING_FIELD');
    checkDuration(checker, [...hashPath, 'httpCookie', 'ttl'], hash.httpCookie.ttl, { allowZero: true });
    if (hash.httpCookie.attributes !== undefined) {
      checker.warn([...hashPath, 'httpCookie', 'attributes'], 'cookie attributes are not supported: they are ignored', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
    }
  }
  if (hash.useSourceIp === false) checker.error([...hashPath, 'useSourceIp'], 'useSourceIp: false hashes on nothing: set it to true or choose another key');
  if (hash.httpQueryParameterName === '') checker.error([...hashPath, 'httpQueryParameterName'], 'query parameter name cannot be empty');
  if (hash.minimumRingSize !== undefined) {
    checker.warn([...hashPath, 'minimumRingSize'], 'minimumRingSize is deprecated: use ringHash.minimumRingSize', 'TRELLIS_CONFIG_DEPRECATED', { atKey: true });
    if (hash.ringHash !== undefined || hash.maglev !== undefined) checker.error([...hashPath, 'minimumRingSize'], 'set minimumRingSize or ringHash/maglev, not both', 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
  }
  if (hash.ringHash !== undefined && hash.maglev !== undefined) checker.error(hashPath, 'set ringHash or maglev, not both');
  for (const [at, size] of [
    [[...hashPath, 'minimumRingSize'], hash.minimumRingSize],
    [[...hashPath, 'ringHash', 'minimumRingSize'], hash.ringHash?.minimumRingSize],
  ] as const) {
    if (size !== undefined && (!Number.isInteger(size) || size < 1 || size > 8_388_608)) checker.error(at, `ring size ${size} must be a positive integer (at most 8388608)`);
  }
  if (hash.maglev !== undefined) {
    checker.warn([...hashPath, 'maglev'], 'Trellis hashes with a ring hash: maglev is ignored (the same keys stick to the same endpoints)', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
  }
}

function checkConnectionPool(checker: ResourceChecker, path: FieldPath, pool: ConnectionPoolSettings): void {
  if (pool.tcp === undefined && pool.http === undefined) {
    checker.error(path, 'an empty connectionPool: set tcp or http settings, or remove it');
    return;
  }
  const tcp = pool.tcp;
  if (tcp !== undefined) {
    const tcpPath = [...path, 'tcp'];
    checkCount(checker, [...tcpPath, 'maxConnections'], tcp.maxConnections, { zeroMeansUnset: true });
    checkDuration(checker, [...tcpPath, 'connectTimeout'], tcp.connectTimeout);
    checkDuration(checker, [...tcpPath, 'idleTimeout'], tcp.idleTimeout, { allowZero: true });
    for (const field of ['tcpKeepalive', 'maxConnectionDuration'] as const) {
      if (tcp[field] !== undefined) checker.warn([...tcpPath, field], `${field} is not supported: it is ignored`, 'TRELLIS_CONFIG_IGNORED', { atKey: true });
    }
  }
  const http = pool.http;
  if (http !== undefined) {
    const httpPath = [...path, 'http'];
    for (const field of ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries'] as const) {
      checkCount(checker, [...httpPath, field], http[field], { zeroMeansUnset: true });
    }
    checkDuration(checker, [...httpPath, 'idleTimeout'], http.idleTimeout);
    if (http.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol === true) {
      checker.error([...httpPath, 'useClientProtocol'], 'useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE');
    }
    if (http.h2UpgradePolicy !== undefined && http.h2UpgradePolicy !== 'DEFAULT') {
      checker.warn([...httpPath, 'h2UpgradePolicy'], 'Trellis chooses the upstream protocol itself: h2UpgradePolicy is ignored', 'TRELLIS_CONFIG_IGNORED');
    }
    if (http.useClientProtocol !== undefined) checker.warn([...httpPath, 'useClientProtocol'], 'Trellis chooses the upstream protocol itself: useClientProtocol is ignored', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
    if (http.maxConcurrentStreams !== undefined) {
      checkCount(checker, [...httpPath, 'maxConcurrentStreams'], http.maxConcurrentStreams);
      checker.warn([...httpPath, 'maxConcurrentStreams'], 'maxConcurrentStreams is not supported: it is ignored', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
    }
  }
}

function checkOutlierDetection(checker: ResourceChecker, path: FieldPath, outlier: OutlierDetection): void {
  for (const field of ['consecutiveLocalOriginFailures', 'consecutiveGatewayErrors', 'consecutive5xxErrors', 'consecutiveErrors'] as const) {
    checkCount(checker, [...path, field], outlier[field]);
  }
  if (outlier.consecutiveErrors !== undefined) {
    checker.warn([...path, 'consecutiveErrors'], 'consecutiveErrors is deprecated: use consecutiveGatewayErrors (502, 503, 504) or consecutive5xxErrors', 'TRELLIS_CONFIG_DEPRECATED', { atKey: true });
  }
  if (outlier.splitExternalLocalOriginErrors !== true && (outlier.consecutiveLocalOriginFailures ?? 0) > 0) {
    checker.error([...path, 'consecutiveLocalOriginFailures'], 'consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true');
  }
  checkDuration(checker, [...path, 'interval'], outlier.interval);
  checkDuration(checker, [...path, 'baseEjectionTime'], outlier.baseEjectionTime);
  checkIntegerPercent(checker, [...path, 'maxEjectionPercent'], outlier.maxEjectionPercent);
  checkIntegerPercent(checker, [...path, 'minHealthPercent'], outlier.minHealthPercent);
}

/**
 * Client TLS. Trellis originates ISTIO_MUTUAL with the mesh's SPIFFE certificates and SIMPLE
 * TLS verified against the system's CAs and the SNI name; it has no way to use certificate files
 * or Kubernetes secrets, so settings that need them are errors (silently dropping them would
 * send traffic without the client certificate, or trust servers the rule meant to pin).
 */
function checkClientTls(checker: ResourceChecker, path: FieldPath, tls: ClientTlsSettings): void {
  const mode = tls.mode ?? 'DISABLE';
  const fileFields = (['clientCertificate', 'privateKey', 'caCertificates', 'credentialName', 'caCrl'] as const).filter((f) => tls[f] !== undefined);
  switch (mode) {
    case 'ISTIO_MUTUAL':
      for (const field of fileFields) {
        checker.error([...path, field], `ISTIO_MUTUAL uses the mesh's own certificates: remove ${field}`, 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
      }
      if (tls.subjectAltNames !== undefined) {
        checker.warn([...path, 'subjectAltNames'], 'with ISTIO_MUTUAL Trellis verifies the SPIFFE identity of the destination workload: subjectAltNames is ignored', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
      }
      if (tls.insecureSkipVerify !== undefined) {
        checker.warn([...path, 'insecureSkipVerify'], 'mesh peers are always verified: insecureSkipVerify is ignored with ISTIO_MUTUAL', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
      }
      return;
    case 'MUTUAL':
      checker.error(
        [...path, 'mode'],
        'MUTUAL TLS origination with your own client certificate is not supported: use ISTIO_MUTUAL inside the mesh, or SIMPLE toward external services',
        'TRELLIS_CONFIG_UNSUPPORTED',
      );
      return;
    case 'SIMPLE':
      for (const field of fileFields.filter((f) => f === 'caCertificates' || f === 'credentialName' || f === 'caCrl')) {
        checker.error([...path, field], `Trellis verifies external servers against the system's CAs and the SNI name: ${field} is not supported`, 'TRELLIS_CONFIG_UNSUPPORTED', { atKey: true });
      }
      if (tls.subjectAltNames !== undefined) {
        checker.error([...path, 'subjectAltNames'], 'Trellis verifies the server certificate against the SNI name (sni, else the host): subjectAltNames is not supported', 'TRELLIS_CONFIG_UNSUPPORTED', { atKey: true });
      }
      for (const field of fileFields.filter((f) => f === 'clientCertificate' || f === 'privateKey')) {
        checker.warn([...path, field], `SIMPLE TLS sends no client certificate: ${field} is ignored`, 'TRELLIS_CONFIG_IGNORED', { atKey: true });
      }
      if (tls.insecureSkipVerify === true) {
        checker.warn([...path, 'insecureSkipVerify'], 'Trellis always verifies external servers: insecureSkipVerify is ignored', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
      }
      if (tls.sni === '') checker.error([...path, 'sni'], 'sni cannot be empty');
      return;
    case 'DISABLE': {
      const others = (Object.keys(tls) as (keyof ClientTlsSettings)[]).filter((k) => k !== 'mode' && tls[k] !== undefined);
      if (others.length > 0) {
        const implicit = tls.mode === undefined ? ' (without mode, TLS is DISABLE)' : '';
        checker.warn(path, `TLS is disabled${implicit}: ${others.join(', ')} ${others.length === 1 ? 'is' : 'are'} ignored`, 'TRELLIS_CONFIG_IGNORED');
      }
      return;
    }
  }
}
