import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HTTP_LABEL_NAMES,
  TCP_LABEL_NAMES,
  canonicalService,
  namespaceFromPrincipal,
  peerLabels,
  responseFlagsString,
  workloadNameOf,
  type WorkloadMetadata,
} from '../../../src/telemetry/istio-labels.js';

const REVIEWS: WorkloadMetadata = { name: 'reviews-v2', namespace: 'bookinfo', labels: { app: 'reviews', version: 'v2' }, cluster: 'home' };
const PRODUCTPAGE: WorkloadMetadata = { name: 'productpage-v1', namespace: 'bookinfo', labels: { app: 'productpage', version: 'v1' }, cluster: 'home' };
const REVIEWS_ID = 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews';
const PRODUCTPAGE_ID = 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage';

void describe('Istio label derivation', () => {
  void it('canonical service: canonical-name label, then app.kubernetes.io/name, then app, then the workload name', () => {
    assert.deepEqual(canonicalService({ 'service.istio.io/canonical-name': 'c', 'app.kubernetes.io/name': 'k', app: 'a' }, 'w'), { name: 'c', revision: 'latest' });
    assert.deepEqual(canonicalService({ 'app.kubernetes.io/name': 'k', app: 'a', version: 'v3' }, 'w'), { name: 'k', revision: 'v3' });
    assert.deepEqual(canonicalService({ app: 'a', 'app.kubernetes.io/version': '1.2', version: 'v3' }, 'w'), { name: 'a', revision: '1.2' });
    assert.deepEqual(canonicalService({ 'service.istio.io/canonical-revision': 'r9', version: 'v3' }, 'w'), { name: 'w', revision: 'r9' });
    assert.deepEqual(canonicalService(undefined, undefined), { name: undefined, revision: 'latest' });
  });

  void it('workload name of a WorkloadEntry: auto-registration group, then the workload-name label, then the entry name', () => {
    assert.equal(workloadNameOf('vm-1', { 'service.istio.io/workload-name': 'ratings' }, { 'istio.io/autoRegistrationGroup': 'ratings-vms' }), 'ratings-vms');
    assert.equal(workloadNameOf('vm-1', { 'service.istio.io/workload-name': 'ratings' }), 'ratings');
    assert.equal(workloadNameOf('vm-1'), 'vm-1');
  });

  void it('reads the namespace out of a SPIFFE ID', () => {
    assert.equal(namespaceFromPrincipal(REVIEWS_ID), 'bookinfo');
    assert.equal(namespaceFromPrincipal('spiffe://td/ns/x'), 'x');
    assert.equal(namespaceFromPrincipal('spiffe://td/sa/x'), undefined);
    assert.equal(namespaceFromPrincipal(undefined), undefined);
  });

  void it('destination reporter: the peer is the source, this proxy the destination, mTLS when both sides have an identity', () => {
    const labels = peerLabels(
      REVIEWS,
      {
        reporter: 'destination',
        peer: PRODUCTPAGE,
        peerPrincipal: PRODUCTPAGE_ID,
        localPrincipal: REVIEWS_ID,
        service: { host: 'reviews.bookinfo.svc.cluster.local' },
      },
      'http',
      '-',
    );
    assert.deepEqual(labels, {
      reporter: 'destination',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'bookinfo',
      source_principal: PRODUCTPAGE_ID,
      source_app: 'productpage',
      source_version: 'v1',
      source_cluster: 'home',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'bookinfo',
      destination_principal: REVIEWS_ID,
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_service: 'reviews.bookinfo.svc.cluster.local',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_service_name: 'reviews',
      destination_service_namespace: 'bookinfo',
      destination_cluster: 'home',
      request_protocol: 'http',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
  });

  void it('an unknown plaintext peer is "unknown" everywhere, with security policy none and revision latest', () => {
    const labels = peerLabels(REVIEWS, { reporter: 'destination' }, 'tcp', '');
    assert.equal(labels.source_workload, 'unknown');
    assert.equal(labels.source_workload_namespace, 'unknown');
    assert.equal(labels.source_principal, 'unknown');
    assert.equal(labels.source_app, 'unknown');
    assert.equal(labels.source_canonical_service, 'unknown');
    assert.equal(labels.source_canonical_revision, 'latest');
    assert.equal(labels.connection_security_policy, 'none');
    assert.equal(labels.response_flags, '-');
    // Without a resolved service, the destination service falls back to this workload's canonical name.
    assert.equal(labels.destination_service, 'reviews');
    assert.equal(labels.destination_service_name, 'reviews');
  });

  void it('the peer namespace comes from its SPIFFE ID before its metadata', () => {
    const labels = peerLabels(REVIEWS, { reporter: 'destination', peer: { name: 'x', namespace: 'claimed' }, peerPrincipal: 'spiffe://td/ns/proven/sa/x', localPrincipal: REVIEWS_ID }, 'http', '-');
    assert.equal(labels.source_workload_namespace, 'proven');
  });

  void it('source reporter: this proxy is the source, the upstream the destination, security policy unknown', () => {
    const labels = peerLabels(
      PRODUCTPAGE,
      { reporter: 'source', peer: REVIEWS, peerPrincipal: REVIEWS_ID, localPrincipal: PRODUCTPAGE_ID, service: { host: 'reviews.bookinfo.svc.cluster.local', namespace: 'bookinfo' } },
      'grpc',
      'UO',
    );
    assert.equal(labels.reporter, 'source');
    assert.equal(labels.source_workload, 'productpage-v1');
    assert.equal(labels.source_principal, PRODUCTPAGE_ID);
    assert.equal(labels.destination_workload, 'reviews-v2');
    assert.equal(labels.destination_principal, REVIEWS_ID);
    assert.equal(labels.destination_service_name, 'reviews');
    assert.equal(labels.connection_security_policy, 'unknown');
    assert.equal(labels.request_protocol, 'grpc');
    assert.equal(labels.response_flags, 'UO');
  });

  void it('source reporter without an upstream: destination fields are unknown, canonical revision latest', () => {
    const labels = peerLabels(PRODUCTPAGE, { reporter: 'source' }, 'http', '-');
    assert.equal(labels.destination_service, 'unknown');
    assert.equal(labels.destination_service_name, 'unknown');
    assert.equal(labels.destination_service_namespace, 'unknown');
    assert.equal(labels.destination_canonical_revision, 'latest');
  });

  void it('waypoint reporter: source from the downstream peer, destination from the upstream endpoint', () => {
    const waypoint: WorkloadMetadata = { name: 'waypoint', namespace: 'bookinfo' };
    const labels = peerLabels(
      waypoint,
      { reporter: 'waypoint', peer: PRODUCTPAGE, peerPrincipal: PRODUCTPAGE_ID, localPrincipal: 'spiffe://cluster.local/ns/bookinfo/sa/waypoint', upstream: REVIEWS, upstreamPrincipal: REVIEWS_ID },
      'http',
      '-',
    );
    assert.equal(labels.reporter, 'waypoint');
    assert.equal(labels.source_workload, 'productpage-v1');
    assert.equal(labels.destination_workload, 'reviews-v2');
    assert.equal(labels.destination_principal, REVIEWS_ID);
    assert.equal(labels.connection_security_policy, 'mutual_tls');
  });

  void it('label sets: HTTP carries response_code and grpc_response_status, TCP does not', () => {
    assert.ok(HTTP_LABEL_NAMES.includes('response_code'));
    assert.ok(HTTP_LABEL_NAMES.includes('grpc_response_status'));
    assert.ok(!(TCP_LABEL_NAMES as readonly string[]).includes('response_code'));
    assert.ok(!(TCP_LABEL_NAMES as readonly string[]).includes('grpc_response_status'));
  });

  void it('response flags join like Envoy and default to -', () => {
    assert.equal(responseFlagsString(undefined), '-');
    assert.equal(responseFlagsString([]), '-');
    assert.equal(responseFlagsString(['UF', 'URX']), 'UF,URX');
  });
});
