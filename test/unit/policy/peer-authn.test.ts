import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mtlsModeForPort, peerAuthenticationForWorkload } from '../../../src/policy/peer-authn.js';
import type { Workload } from '../../../src/policy/workload.js';
import { API, config } from '../../helpers/policy.js';

/** PeerAuthentication composition: workload > namespace > mesh, oldest wins, UNSET inherits, ports. */

function pa(name: string, namespace: string, spec: string, created?: string): string {
  const timestamp = created === undefined ? '' : `, creationTimestamp: "${created}"`;
  return `---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ${name}, namespace: ${namespace}${timestamp}}\nspec: ${spec}\n`;
}

const mtls = (yaml: string, workload: Workload = API) => peerAuthenticationForWorkload(config(yaml), workload);

void describe('PeerAuthentication', () => {
  void it('defaults to PERMISSIVE with no policy', () => {
    assert.deepEqual(mtls(''), { mode: 'PERMISSIVE', ports: {}, policies: {} });
  });

  void it('mesh level (root namespace, no selector) applies everywhere', () => {
    const result = mtls(pa('mesh', 'istio-system', '{mtls: {mode: STRICT}}'));
    assert.deepEqual([result.mode, result.policies.mesh], ['STRICT', 'istio-system/mesh']);
  });

  void it('namespace level beats mesh level', () => {
    const result = mtls(pa('mesh', 'istio-system', '{mtls: {mode: STRICT}}') + pa('ns', 'shop', '{mtls: {mode: PERMISSIVE}}'));
    assert.equal(result.mode, 'PERMISSIVE');
  });

  void it('workload level beats namespace level', () => {
    const result = mtls(pa('ns', 'shop', '{mtls: {mode: PERMISSIVE}}') + pa('api', 'shop', '{selector: {matchLabels: {app: api}}, mtls: {mode: DISABLE}}'));
    assert.deepEqual([result.mode, result.policies.workload], ['DISABLE', 'shop/api']);
  });

  void it('a selector that does not match is ignored', () => {
    assert.equal(mtls(pa('web', 'shop', '{selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}}')).mode, 'PERMISSIVE');
  });

  void it('UNSET inherits from the level above', () => {
    const result = mtls(pa('mesh', 'istio-system', '{mtls: {mode: STRICT}}') + pa('ns', 'shop', '{mtls: {mode: UNSET}}') + pa('api', 'shop', '{selector: {matchLabels: {app: api}}}'));
    assert.equal(result.mode, 'STRICT');
  });

  void it('among several at one level the oldest wins, then the name', () => {
    const yaml =
      pa('b-newer', 'shop', '{mtls: {mode: DISABLE}}', '2024-02-01T00:00:00Z') +
      pa('c-older', 'shop', '{mtls: {mode: STRICT}}', '2024-01-01T00:00:00Z');
    assert.deepEqual([mtls(yaml).mode, mtls(yaml).policies.namespace], ['STRICT', 'shop/c-older']);
    const untimed = pa('b', 'shop', '{mtls: {mode: DISABLE}}') + pa('a', 'shop', '{mtls: {mode: STRICT}}');
    assert.equal(mtls(untimed).policies.namespace, 'shop/a');
  });

  void it('port-level modes override, and UNSET ports inherit the workload mode', () => {
    const result = mtls(
      pa('ns', 'shop', '{mtls: {mode: STRICT}}') +
        pa('api', 'shop', '{selector: {matchLabels: {app: api}}, mtls: {mode: PERMISSIVE}, portLevelMtls: {9090: {mode: DISABLE}, 9091: {mode: UNSET}}}'),
    );
    assert.deepEqual(result.ports, { '9090': 'DISABLE', '9091': 'PERMISSIVE' });
    assert.equal(mtlsModeForPort(result, 9090), 'DISABLE');
    assert.equal(mtlsModeForPort(result, 8080), 'PERMISSIVE');
  });

  void it('a selector policy in the root namespace is ignored (as in Istio)', () => {
    const result = mtls(pa('root-sel', 'istio-system', '{selector: {matchLabels: {app: api}}, mtls: {mode: DISABLE}}'));
    assert.equal(result.mode, 'PERMISSIVE');
  });

  void it('the result is plain JSON', () => {
    const result = mtls(pa('ns', 'shop', '{mtls: {mode: STRICT}}'));
    assert.deepEqual(JSON.parse(JSON.stringify(result)), result);
  });
});
