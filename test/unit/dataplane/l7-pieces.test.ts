import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromRawHeaders, getHeader, headerMap, setHeader, stripHopByHop, toRawHeaders } from '../../../src/dataplane/headers.js';
import { parseRequestTarget } from '../../../src/dataplane/l7/downstream.js';
import { localReply } from '../../../src/dataplane/l7/local-reply.js';
import { ServiceResolver, splitAuthority } from '../../../src/dataplane/service-resolver.js';
import { sniff } from '../../../src/dataplane/sniff.js';
import type { OutboundSnapshot } from '../../../src/mesh/snapshot.js';

describe('protocol sniffing', () => {
  const cases: Array<[string, Buffer, ReturnType<typeof sniff>]> = [
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), 'tls'],
    ['a lone 0x16 (undecided)', Buffer.from([0x16]), undefined],
    ['0x16 then not TLS', Buffer.from([0x16, 0x41]), 'tcp'],
    ['the HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 'h2'],
    ['part of the preface', Buffer.from('PRI * HTTP'), undefined],
    ['GET', Buffer.from('GET / HTTP/1.1\r\n'), 'http1'],
    ['POST', Buffer.from('POST /x HTTP/1.1\r\n'), 'http1'],
    ['a partial method', Buffer.from('PO'), undefined],
    ['a lower-case method', Buffer.from('get / HTTP/1.1\r\n'), 'tcp'],
    ['binary', Buffer.from([0x00, 0x01, 0x02]), 'tcp'],
    ['a server-first protocol greeting', Buffer.from('SSH-2.0-OpenSSH'), 'tcp'],
  ];
  for (const [name, data, expected] of cases) {
    it(`classifies ${name}`, () => assert.equal(sniff(data), expected));
  }
});

describe('header lists', () => {
  it('keeps case and order through raw round trips', () => {
    const raw = ['Host', 'a', 'X-CaSe', '1', 'x-case', '2'];
    assert.deepEqual(toRawHeaders(fromRawHeaders(raw)), raw);
    assert.equal(getHeader(fromRawHeaders(raw), 'x-case'), '1');
    assert.deepEqual(headerMap(fromRawHeaders(raw))['x-case'], ['1', '2']);
  });

  it('drops hop-by-hop headers, those named by Connection, and pseudo-headers, but keeps te: trailers', () => {
    const list = fromRawHeaders([
      'Connection', 'keep-alive, X-Secret-Hop', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Upgrade', 'websocket',
      'Proxy-Authorization', 'Basic x', 'X-Secret-Hop', 'v', ':path', '/x', 'TE', 'trailers', 'Content-Type', 'text/plain',
    ]);
    assert.deepEqual(stripHopByHop(list), [['TE', 'trailers'], ['Content-Type', 'text/plain']]);
    assert.deepEqual(stripHopByHop(fromRawHeaders(['TE', 'gzip'])), []);
  });

  it('replaces a header whatever its case', () => {
    assert.deepEqual(setHeader(fromRawHeaders(['X-Forwarded-Proto', 'http', 'a', 'b']), 'x-forwarded-proto', 'https'), [['a', 'b'], ['x-forwarded-proto', 'https']]);
  });
});

describe('request targets', () => {
  it('splits absolute form into authority and path', () => {
    assert.deepEqual(parseRequestTarget('http://reviews:9080/r/1?x=1', 'ignored'), { authority: 'reviews:9080', path: '/r/1?x=1' });
    assert.deepEqual(parseRequestTarget('http://reviews', ''), { authority: 'reviews', path: '/' });
    assert.deepEqual(parseRequestTarget('http://reviews?q', ''), { authority: 'reviews', path: '/?q' });
    assert.deepEqual(parseRequestTarget('/origin?x', 'host:1'), { authority: 'host:1', path: '/origin?x' });
  });

  it('splits authorities, IPv6 included', () => {
    assert.deepEqual(splitAuthority('a.b:81', 80), { host: 'a.b', port: 81 });
    assert.deepEqual(splitAuthority('a.b', 80), { host: 'a.b', port: 80 });
    assert.deepEqual(splitAuthority('[::1]:8443', 80), { host: '::1', port: 8443 });
  });
});

describe('local replies', () => {
  it('answers gRPC callers with a gRPC status', () => {
    const reply = localReply({ headers: [['content-type', 'application/grpc+proto']] }, 403, 'RBAC: access denied');
    assert.equal(reply.status, 200);
    assert.equal(getHeader(reply.headers, 'grpc-status'), '7');
    assert.equal(getHeader(reply.headers, 'grpc-message'), 'RBAC%3A%20access%20denied');
  });

  it('answers others with the HTTP status and a plain body', () => {
    const reply = localReply({ headers: [] }, 401, 'Jwt verification fails');
    assert.equal(reply.status, 401);
    assert.equal(reply.body.toString(), 'Jwt verification fails');
  });
});

describe('service resolution', () => {
  const endpoint = (name: string, port: number) => ({ address: '127.0.0.1', ports: { http: port }, labels: {}, identity: `spiffe://cluster.local/ns/default/sa/${name}`, workload: `default/${name}` });
  const outbound: OutboundSnapshot = {
    services: [
      {
        host: 'reviews.default.svc.cluster.local',
        aliases: ['reviews', 'reviews.default', 'reviews.default.svc'],
        namespace: 'default',
        location: 'MESH_INTERNAL',
        ports: [{ number: 9080, name: 'http', protocol: 'HTTP', targetPortName: 'http' }],
        endpoints: [endpoint('r1', 19082), endpoint('r2', 19083)],
        identities: [],
      },
      {
        host: 'reviews',
        aliases: [],
        namespace: 'other',
        location: 'MESH_INTERNAL',
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPortName: 'http' }],
        endpoints: [],
        identities: [],
      },
    ],
  };
  const resolver = new ServiceResolver(outbound);

  it('resolves hosts and aliases, case-insensitively, with and without the port', () => {
    assert.equal(resolver.resolve('reviews.default.svc.cluster.local:9080', 80)?.service.namespace, 'default');
    assert.equal(resolver.resolve('Reviews.Default:9080', 80)?.port.number, 9080);
    assert.equal(resolver.resolve('reviews.default', 80)?.port.number, 9080, 'a single-port service answers a bare name');
    assert.equal(resolver.resolve('reviews.default:1234', 80), undefined, 'an undeclared port does not resolve');
  });

  it('prefers a declared host over another service’s alias', () => {
    assert.equal(resolver.resolve('reviews:80', 80)?.service.namespace, 'other');
  });

  it('knows nothing outside the snapshot', () => {
    assert.equal(resolver.resolve('example.com', 80), undefined);
  });
});
