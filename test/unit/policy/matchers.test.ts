import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrContains, parseIp, parseIpBlock, parseRequestIp } from '../../../src/api/ip.js';
import { splitHost } from '../../../src/policy/authz-context.js';
import { compilePathMatcher } from '../../../src/policy/path-match.js';
import { compileStringMatcher } from '../../../src/policy/string-match.js';

void describe('IP addresses and CIDR ranges', () => {
  const valid = ['0.0.0.0', '10.1.2.3', '255.255.255.255', '::', '::1', '2001:db8::7', 'fe80::1:2', '::ffff:10.0.0.1', '1:2:3:4:5:6:7:8'];
  const invalid = ['', '10.1.2', '10.1.2.3.4', '256.1.1.1', '01.2.3.4', '1.2.3.-1', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', 'g::1', '10.0.0.1 '];
  for (const text of valid) void it(`parses ${text}`, () => assert.ok(parseIp(text)));
  for (const text of invalid) void it(`rejects ${JSON.stringify(text)}`, () => assert.equal(parseIp(text), undefined));

  const contains: readonly [string, string, boolean][] = [
    ['10.0.0.0/8', '10.255.1.1', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['10.1.2.3', '10.1.2.3', true],
    ['10.1.2.3/32', '10.1.2.4', false],
    ['0.0.0.0/0', '192.0.2.1', true],
    ['10.1.2.99/24', '10.1.2.1', true],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['::/0', '::1', true],
    ['10.0.0.0/8', '::ffff:10.0.0.1', true],
    ['10.0.0.0/8', '2001:db8::1', false],
    ['2001:db8::/64', '2001:db8::ffff:ffff', true],
    ['2001:db8::1/127', '2001:db8::', true],
  ];
  for (const [range, ip, expected] of contains) {
    void it(`${range} ${expected ? 'contains' : 'does not contain'} ${ip}`, () => {
      const parsed = parseIpBlock(range);
      assert.ok(parsed.ok);
      const address = parseRequestIp(ip);
      assert.ok(address);
      assert.equal(cidrContains(parsed.value, address), expected);
    });
  }

  void it('rejects bad prefix lengths', () => {
    for (const text of ['10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/08', '::/129']) assert.equal(parseIpBlock(text).ok, false, text);
  });
});

void describe('string and path patterns', () => {
  void it('exact, prefix, suffix and presence', () => {
    const m = compileStringMatcher(['exact', 'pre*', '*suf']);
    assert.deepEqual(['exact', 'prefix', 'pre', 'asuf', 'suf', 'other', 'EXACT', ''].map((v) => m.test(v)), [true, true, true, true, true, false, false, false]);
    const any = compileStringMatcher(['*']);
    assert.deepEqual([any.test('x'), any.test('')], [true, false]);
    assert.equal(compileStringMatcher(['Example.com'], { ignoreCase: true }).test('EXAMPLE.COM'), true);
  });

  void it('path templates', () => {
    const m = compilePathMatcher(['/foo/{*}', '/bar/{**}', '/a/{*}/b/{**}']);
    const cases: [string, boolean][] = [
      ['/foo/x', true],
      ['/foo/x/y', false],
      ['/foo/', false],
      ['/bar/', true],
      ['/bar/x/y/z', true],
      ['/bar', false],
      ['/a/1/b/', true],
      ['/a/1/b/c/d', true],
      ['/a/1/2/b/c', false],
    ];
    for (const [path, expected] of cases) assert.equal(m.test(path), expected, path);
  });

  void it('splits hosts into a lower-case name and a port', () => {
    assert.deepEqual(splitHost('Example.COM:8080'), { name: 'example.com', port: '8080' });
    assert.deepEqual(splitHost('example.com.'), { name: 'example.com', port: undefined });
    assert.deepEqual(splitHost('[::1]:443'), { name: '[::1]', port: '443' });
    assert.equal(splitHost('a:b:c'), undefined);
    assert.equal(splitHost('evil.com/x'), undefined);
  });
});
