import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizerFor, policy, request } from '../../helpers/policy.js';

/** Explanations end up in proxy logs and denial headers: credentials must never appear in them. */
describe('explanations redact credential headers', () => {
  const rule = (header: string): string => `- when:\n  - key: "request.headers[${header}]"\n    values: ["expected-secret-k-123"]`;

  for (const header of ['authorization', 'cookie', 'x-api-key', 'x-session-id', 'x-auth-token']) {
    it(`never shows the value of ${header}`, () => {
      const authorizer = authorizerFor(policy('p', `rules:\n${rule(header)}`));
      const decision = authorizer.evaluate(request({ http: { headers: { [header]: 'super-secret-value' } } }));
      assert.equal(decision.decision, 'DENY');
      assert.ok(!decision.reason.includes('super-secret-value'), decision.reason);
      assert.ok(!JSON.stringify(decision).includes('super-secret-value'), JSON.stringify(decision));
      assert.ok(!JSON.stringify(decision).includes('expected-secret-k-123'), 'the policy’s own value is a secret too');
      assert.match(decision.reason, /<redacted>/);
    });
  }

  it('still shows ordinary header values', () => {
    const authorizer = authorizerFor(policy('p', `rules:\n${rule('x-user')}`));
    const decision = authorizer.evaluate(request({ http: { headers: { 'x-user': 'alice' } } }));
    assert.match(decision.reason, /"alice"/);
    assert.match(decision.reason, /expected-secret-k-123/);
  });
});
