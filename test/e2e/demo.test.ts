import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runTrellis } from '../helpers/cli.js';

describe('trellis demo --once (the README first command, minus the install)', () => {
  it('brings up the bookinfo mesh, makes the allowed and denied calls, and stops everything', async () => {
    const result = await runTrellis(['demo', '--once'], { timeoutMs: 180_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.doesNotMatch(result.stdout, /✗/);
    assert.match(result.stdout, /✓ GET \/productpage/);
    assert.match(result.stdout, /reviews versions seen: reviews-v1, reviews-v2, reviews-v3/);
    assert.match(result.stdout, /✓ GET ratings directly \(denied[^\n]*\n\s+403 RBAC: access denied\n\s+why: [^\n]*principals/);
    assert.match(result.stdout, /✓ plaintext HTTP straight to productpage's sidecar[^\n]*\n\s+connection closed: mTLS is STRICT/);
  });

  it('walks through identities alone', async () => {
    const result = await runTrellis(['demo', 'identity']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /server says: hello spiffe:\/\/cluster\.local\/ns\/shop\/sa\/db/);
    assert.match(result.stdout, /connection refused by the server/);
  });
});
