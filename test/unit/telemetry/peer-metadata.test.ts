import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodePeerMetadata, encodePeerMetadata } from '../../../src/telemetry/peer-metadata.js';

void describe('peer metadata header', () => {
  void it('round-trips name, namespace, cluster and the labels the metrics use, and nothing else', () => {
    const value = encodePeerMetadata({ name: 'reviews-v2', namespace: 'bookinfo', cluster: 'home', labels: { app: 'reviews', version: 'v2', secret: 'x', 'service.istio.io/canonical-name': 'reviews' } });
    assert.match(value, /^[A-Za-z0-9_-]+$/, 'base64url: safe in a header');
    assert.deepEqual(decodePeerMetadata(value, 'bookinfo'), {
      name: 'reviews-v2',
      namespace: 'bookinfo',
      cluster: 'home',
      labels: { app: 'reviews', version: 'v2', 'service.istio.io/canonical-name': 'reviews' },
    });
  });

  void it('is refused when it claims another namespace than the verified peer identity, or is malformed', () => {
    const value = encodePeerMetadata({ name: 'admin', namespace: 'kube-system' });
    assert.equal(decodePeerMetadata(value, 'bookinfo'), undefined);
    assert.equal(decodePeerMetadata(value, undefined), undefined);
    assert.equal(decodePeerMetadata('not base64 json', 'bookinfo'), undefined);
    assert.equal(decodePeerMetadata(Buffer.from('[1,2]').toString('base64url'), 'bookinfo'), undefined);
    assert.equal(decodePeerMetadata('A'.repeat(5000), 'bookinfo'), undefined);
  });

  void it('drops label values that are not short strings', () => {
    const value = Buffer.from(JSON.stringify({ n: 'w', ns: 'ns', l: { app: 42, version: 'x'.repeat(300) } })).toString('base64url');
    assert.deepEqual(decodePeerMetadata(value, 'ns'), { name: 'w', namespace: 'ns', labels: {} });
  });
});
