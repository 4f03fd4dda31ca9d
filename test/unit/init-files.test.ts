import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigTexts } from '../../src/api/config-set.js';
import { initFiles } from '../../src/cli/commands/init.js';

/** The files of `trellis init`: valid as written, and their commented examples valid once uncommented. */

/** The YAML of the commented examples: each block from `# apiVersion:` to `# ---`, uncommented. */
function uncomment(text: string): string {
  const out: string[] = [];
  let inside = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('# apiVersion:')) inside = true;
    if (!inside) continue;
    if (line === '# ---') {
      out.push('---');
      inside = false;
    } else if (!line.startsWith('# ')) inside = false;
    else out.push(line.slice(2));
  }
  return `${out.join('\n')}\n`;
}

void describe('trellis init files', () => {
  void it('a closed mesh: DENY by default, REGISTRY_ONLY egress, STRICT mTLS in the root namespace, the trust domain given', () => {
    const files = initFiles('example.org');
    assert.deepEqual(files.map((f) => f.name), ['README.md', 'mesh.yaml', 'peer-authentication.yaml', 'examples.yaml']);
    const result = parseConfigTexts(files.filter((f) => f.name.endsWith('.yaml')).map((f) => ({ text: f.content, file: f.name })));
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, []);
    const config = result.config;
    assert.ok(config);
    assert.deepEqual(config.mesh, { trustDomain: 'example.org', rootNamespace: 'istio-system', defaultAuthorization: 'DENY', pathNormalization: 'BASE', outboundTrafficPolicy: 'REGISTRY_ONLY' });
    assert.equal(config.peerAuthentications.length, 1);
    assert.equal(config.peerAuthentications[0]?.metadata.namespace, 'istio-system');
    assert.equal(config.peerAuthentications[0]?.spec.mtls?.mode, 'STRICT');
    assert.equal(config.workloadEntries.length, 0, 'the examples are commented out');
  });

  void it('the commented examples are a valid config once uncommented', () => {
    const files = initFiles('example.org');
    const examples = uncomment(files.find((f) => f.name === 'examples.yaml')?.content ?? '');
    const result = parseConfigTexts([
      { text: files.find((f) => f.name === 'mesh.yaml')?.content ?? '', file: 'mesh.yaml' },
      { text: examples, file: 'examples.yaml' },
    ]);
    assert.deepEqual(result.errors, []);
    const kinds = result.resources.map((r) => r.kind).sort();
    assert.deepEqual(kinds, ['AuthorizationPolicy', 'DestinationRule', 'MeshConfig', 'ServiceEntry', 'ServiceEntry', 'VirtualService', 'WorkloadEntry']);
    assert.match(examples, /principals: \["example\.org\/ns\/shop\/sa\/frontend"\]/);
  });
});
