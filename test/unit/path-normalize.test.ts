import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  PATH_NORMALIZATIONS,
  normalizePath,
  type PathRejectReason,
} from '../../src/policy/path-normalize.js';

type Expect = string | { reject: PathRejectReason };

/** Input → expected path under NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES. */
const TABLE: readonly [string, string, Expect, Expect, Expect, Expect][] = [
  ['plain', '/admin', '/admin', '/admin', '/admin', '/admin'],
  ['root', '/', '/', '/', '/', '/'],
  ['double slash', '//admin', '//admin', '//admin', '/admin', '/admin'],
  ['many slashes inside', '/a///b//c', '/a///b//c', '/a///b//c', '/a/b/c', '/a/b/c'],
  ['parent segment', '/a/../admin', '/a/../admin', '/admin', '/admin', '/admin'],
  ['parent above root', '/../admin', '/../admin', '/admin', '/admin', '/admin'],
  ['current segment', '/./admin', '/./admin', '/admin', '/admin', '/admin'],
  ['trailing parent', '/admin/..', '/admin/..', '/', '/', '/'],
  ['trailing current', '/admin/.', '/admin/.', '/admin/', '/admin/', '/admin/'],
  ['RFC 3986 example', '/a/b/c/./../../g', '/a/b/c/./../../g', '/a/g', '/a/g', '/a/g'],
  ['dots then merge (Istio order)', '/a//../admin', '/a//../admin', '/a/admin', '/a/admin', '/a/admin'],
  ['encoded letter', '/%61dmin', '/%61dmin', '/admin', '/admin', '/admin'],
  ['encoded unreserved set', '/%41%7a%30%2D%5f%7E%2e', '/%41%7a%30%2D%5f%7E%2e', '/Az0-_~.', '/Az0-_~.', '/Az0-_~.'],
  ['encoded dot-dot', '/public/%2e%2e/admin', '/public/%2e%2e/admin', '/admin', '/admin', '/admin'],
  ['mixed encoded dot-dot', '/public/.%2E/admin', '/public/.%2E/admin', '/admin', '/admin', '/admin'],
  ['encoded slash after dot-dot', '/admin/..%2f', '/admin/..%2f', '/admin/..%2F', '/admin/..%2F', '/'],
  ['encoded slash', '/a%2fb', '/a%2fb', '/a%2Fb', '/a%2Fb', '/a/b'],
  ['encoded double slash', '/a%2F%2Fb', '/a%2F%2Fb', '/a%2F%2Fb', '/a%2F%2Fb', '/a/b'],
  ['encoded slash traversal', '/public%2f..%2fadmin', '/public%2f..%2fadmin', '/public%2F..%2Fadmin', '/public%2F..%2Fadmin', '/admin'],
  ['backslash', '/a\\b', '/a\\b', '/a/b', '/a/b', '/a/b'],
  ['backslash traversal', '/public\\..\\admin', '/public\\..\\admin', '/admin', '/admin', '/admin'],
  ['leading backslash (Istio example)', '\\da', { reject: 'not_origin_form' }, '/da', '/da', '/da'],
  ['double backslash', '/\\\\admin', '/\\\\admin', '///admin', '/admin', '/admin'],
  ['encoded backslash', '/a%5cb', '/a%5cb', '/a%5Cb', '/a%5Cb', '/a/b'],
  ['encoded backslash traversal', '/a%5C..%5Cadmin', '/a%5C..%5Cadmin', '/a%5C..%5Cadmin', '/a%5C..%5Cadmin', '/admin'],
  ['no double decoding', '/%252e%252e/admin', '/%252e%252e/admin', '/%252e%252e/admin', '/%252e%252e/admin', '/%252e%252e/admin'],
  ['double-encoded slash stays', '/a%252Fb', '/a%252Fb', '/a%252Fb', '/a%252Fb', '/a%252Fb'],
  ['reserved escape upper-cased', '/a%3fb%3Ac', '/a%3fb%3Ac', '/a%3Fb%3Ac', '/a%3Fb%3Ac', '/a%3Fb%3Ac'],
  ['valid UTF-8 escape', '/caf%c3%a9', '/caf%c3%a9', '/caf%C3%A9', '/caf%C3%A9', '/caf%C3%A9'],
  ['raw characters not allowed in a path', '/a{b}|c"', '/a{b}|c"', '/a%7Bb%7D%7Cc%22', '/a%7Bb%7D%7Cc%22', '/a%7Bb%7D%7Cc%22'],
  ['sub-delims stay raw', "/a;b=c,d!$&'()*+:@", "/a;b=c,d!$&'()*+:@", "/a;b=c,d!$&'()*+:@", "/a;b=c,d!$&'()*+:@", "/a;b=c,d!$&'()*+:@"],
  // Rejections, in every mode.
  ['fragment', '/admin#x', { reject: 'fragment' }, { reject: 'fragment' }, { reject: 'fragment' }, { reject: 'fragment' }],
  ['fragment after query', '/a?b=c#d', { reject: 'fragment' }, { reject: 'fragment' }, { reject: 'fragment' }, { reject: 'fragment' }],
  ['encoded NUL', '/admin%00.json', { reject: 'nul' }, { reject: 'nul' }, { reject: 'nul' }, { reject: 'nul' }],
  ['raw NUL', '/admin\u0000', { reject: 'nul' }, { reject: 'nul' }, { reject: 'nul' }, { reject: 'nul' }],
  ['truncated escape', '/admin%2', { reject: 'invalid_percent_encoding' }, { reject: 'invalid_percent_encoding' }, { reject: 'invalid_percent_encoding' }, { reject: 'invalid_percent_encoding' }],
  ['non-hex escape', '/%zzadmin', { reject: 'invalid_percent_encoding' }, { reject: 'invalid_percent_encoding' }, { reject: 'invalid_percent_encoding' }, { reject: 'invalid_percent_encoding' }],
  ['lone percent', '/100%', { reject: 'invalid_percent_encoding' }, { reject: 'invalid_percent_encoding' }, { reject: 'invalid_percent_encoding' }, { reject: 'invalid_percent_encoding' }],
  ['overlong slash (2 bytes)', '/a%C0%AFadmin', { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }],
  ['overlong dot (2 bytes)', '/%c0%ae%c0%ae/admin', { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }],
  ['overlong slash (3 bytes)', '/a%E0%80%AFb', { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }],
  ['lone continuation byte', '/a%80', { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }],
  ['UTF-16 surrogate in UTF-8', '/%ED%A0%80', { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }],
  ['truncated multi-byte', '/caf%C3', { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }, { reject: 'invalid_utf8' }],
  ['space', '/a b', { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }],
  ['tab', '/a\tb', { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }],
  ['CRLF', '/a\r\nX-Injected: 1', { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }],
  ['DEL', '/a\u007f', { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }],
  ['raw non-ASCII', '/café', { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }],
  ['control char in query', '/a?x=\u0001', { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }, { reject: 'invalid_character' }],
  ['empty', '', { reject: 'empty' }, { reject: 'empty' }, { reject: 'empty' }, { reject: 'empty' }],
  ['absolute-form', 'http://evil.example/admin', { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }],
  ['asterisk-form', '*', { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }],
  ['relative', 'admin', { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }],
  ['query only', '?a=/admin', { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }],
  ['encoded leading slash', '%2Fadmin', { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }, { reject: 'not_origin_form' }],
];

describe('normalizePath: attack table under every mode', () => {
  for (const [name, input, ...expected] of TABLE) {
    for (const [index, mode] of PATH_NORMALIZATIONS.entries()) {
      const want = expected[index];
      it(`${name}: ${JSON.stringify(input)} under ${mode}`, () => {
        const got = normalizePath(input, mode);
        if (typeof want === 'string') {
          assert.equal(got.ok, true, got.ok ? '' : `rejected: ${got.reason} (${got.message})`);
          if (got.ok) {
            assert.equal(got.path, want);
            assert.equal(got.query, null);
            assert.equal(got.target, want);
          }
        } else {
          assert.equal(got.ok, false, got.ok ? `accepted as ${got.path}` : '');
          if (!got.ok) {
            assert.equal(got.reason, want?.reject);
            assert.ok(got.message.length > 0);
          }
        }
      });
    }
  }
});

describe('normalizePath: the query', () => {
  it('is split off, never normalized, and forwarded byte for byte', () => {
    const got = normalizePath('/a/../b?x=/../y&z=%2f&w=%zz', 'DECODE_AND_MERGE_SLASHES');
    assert.deepEqual(got, { ok: true, path: '/b', query: 'x=/../y&z=%2f&w=%zz', target: '/b?x=/../y&z=%2f&w=%zz' });
  });
  it('keeps an empty query (`/a?`) as sent', () => {
    assert.deepEqual(normalizePath('/a?', 'BASE'), { ok: true, path: '/a', query: '', target: '/a?' });
  });
  it('splits at the first question mark; later ones belong to the query', () => {
    assert.deepEqual(normalizePath('/%61?b?c', 'BASE'), { ok: true, path: '/a', query: 'b?c', target: '/a?b?c' });
  });
  it('does not let an encoded question mark end the path', () => {
    const got = normalizePath('/admin%3F/x', 'DECODE_AND_MERGE_SLASHES');
    assert.equal(got.ok && got.path, '/admin%3F/x');
  });
});

/** A small deterministic generator (xorshift32) for the property checks below. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

const PIECES = ['/', '//', '.', '..', '/./', '/../', '%2e', '%2E', '%2f', '%2F', '%5c', '%5C', '\\', '%25', '%61', 'a', 'b', 'admin', '%00', '%', '%zz', '%C0%AF', '%C3%A9', '?', '#', ' ', '{', '~', ';', '%7e', '%3f'];

describe('normalizePath: properties over generated paths', () => {
  const next = random(0x7e11);
  const inputs: string[] = [];
  for (let n = 0; n < 3000; n++) {
    let text = next() < 0.9 ? '/' : '';
    const length = 1 + Math.floor(next() * 8);
    for (let k = 0; k < length; k++) text += PIECES[Math.floor(next() * PIECES.length)] ?? '';
    inputs.push(text);
  }

  for (const mode of PATH_NORMALIZATIONS) {
    it(`${mode}: never throws; accepted paths are canonical and normalizing again changes nothing`, () => {
      for (const input of inputs) {
        const got = normalizePath(input, mode);
        if (!got.ok) continue;
        const where = `${JSON.stringify(input)} → ${JSON.stringify(got.target)}`;
        assert.ok(got.path.startsWith('/'), where);
        assert.ok(!got.path.includes('?') && !got.path.includes('#'), where);
        assert.equal(got.target, got.query === null ? got.path : `${got.path}?${got.query}`, where);
        if (mode !== 'NONE') {
          assert.ok(!/(^|\/)\.\.?(\/|$)/.test(got.path), `dot segment left: ${where}`);
          assert.ok(!got.path.includes('\\'), `backslash left: ${where}`);
          assert.ok(!/%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[DdEe]|5[Ff]|7[Ee])/.test(got.path), `encoded unreserved left: ${where}`);
          assert.ok(!/%[0-9A-F]?[a-f]/.test(got.path), `lower-case hex left: ${where}`);
        }
        if (mode === 'MERGE_SLASHES' || mode === 'DECODE_AND_MERGE_SLASHES') assert.ok(!got.path.includes('//'), where);
        if (mode === 'DECODE_AND_MERGE_SLASHES') assert.ok(!/%2F|%5C/i.test(got.path), where);
        // The application sees exactly what authorization saw: a second pass is the identity.
        const again = normalizePath(got.target, mode);
        assert.ok(again.ok, where);
        assert.equal(again.ok && again.target, got.target, where);
      }
    });
  }
});
