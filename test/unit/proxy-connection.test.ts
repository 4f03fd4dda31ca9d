import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyConnection } from '../../src/controlplane/proxy-connection.js';
import type { ResourceVersions } from '../../src/mesh/compile.js';
import type { DiscoveryResponse } from '../../src/mesh/discovery-protocol.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';

const SNAPSHOT = { workload: { w: 1 }, inbound: { i: 1 }, outbound: { o: 1 }, trust: { t: 1 } } as unknown as ProxySnapshot;
const V1: ResourceVersions = { workload: 'w1', inbound: 'i1', outbound: 'o1', trust: 't1' };

function connection(): { conn: ProxyConnection; sent: DiscoveryResponse[] } {
  const sent: DiscoveryResponse[] = [];
  let nonce = 0;
  const conn = new ProxyConnection({
    id: '1',
    identity: 'spiffe://cluster.local/ns/shop/sa/web',
    workload: 'shop/web',
    node: { workload: 'shop/web', proxyVersion: 'test' },
    peer: '127.0.0.1:1',
    certificateExpiresAt: new Date(Date.now() + 3_600_000),
    send: (response) => sent.push(response),
    nextNonce: () => `n${++nonce}`,
  });
  return { conn, sent };
}

describe('proxy connection (xDS state machine)', () => {
  it('pushes a type once subscribed, and records the ACK', () => {
    const { conn, sent } = connection();
    assert.deepEqual(conn.update(SNAPSHOT, V1), [], 'nothing before a subscription');
    assert.deepEqual(conn.handleRequest({ typeUrl: 'inbound', versionInfo: '', responseNonce: '' }), { kind: 'subscribed', type: 'inbound', upToDate: false });
    assert.deepEqual(sent, [{ typeUrl: 'inbound', versionInfo: 'i1', nonce: 'n1', resource: { i: 1 } }]);
    assert.equal(conn.status().types.inbound.status, 'STALE');
    assert.deepEqual(conn.handleRequest({ typeUrl: 'inbound', versionInfo: 'i1', responseNonce: 'n1' }), { kind: 'ack', type: 'inbound', version: 'i1' });
    assert.equal(conn.status().types.inbound.status, 'SYNCED');
    assert.equal(conn.status().types.workload.status, 'NOT_SENT');
  });

  it('keeps the acknowledged version on a NACK and does not resend the refused version', () => {
    const { conn, sent } = connection();
    conn.update(SNAPSHOT, V1);
    conn.handleRequest({ typeUrl: 'outbound', versionInfo: '', responseNonce: '' });
    conn.handleRequest({ typeUrl: 'outbound', versionInfo: 'o1', responseNonce: 'n1' });
    assert.deepEqual(conn.update(SNAPSHOT, { ...V1, outbound: 'o2' }), ['outbound']);
    const nack = conn.handleRequest({ typeUrl: 'outbound', versionInfo: 'o1', responseNonce: 'n2', errorDetail: { message: 'bad port' } });
    assert.deepEqual(nack, { kind: 'nack', type: 'outbound', version: 'o2', message: 'bad port' });
    const status = conn.status().types.outbound;
    assert.deepEqual([status.status, status.acked, status.pushed, status.nack?.message], ['NACKED', 'o1', 'o2', 'bad port']);
    assert.deepEqual(conn.update(SNAPSHOT, { ...V1, outbound: 'o2' }), [], 'the refused version is not sent again');
    assert.deepEqual(conn.update(SNAPSHOT, { ...V1, outbound: 'o3' }), ['outbound']);
    assert.equal(sent.length, 3);
  });

  it('ignores answers to superseded nonces', () => {
    const { conn } = connection();
    conn.update(SNAPSHOT, V1);
    conn.handleRequest({ typeUrl: 'trust', versionInfo: '', responseNonce: '' });
    conn.update(SNAPSHOT, { ...V1, trust: 't2' });
    assert.deepEqual(conn.handleRequest({ typeUrl: 'trust', versionInfo: 't1', responseNonce: 'n1' }), { kind: 'stale', type: 'trust' });
    assert.equal(conn.status().types.trust.acked, undefined);
  });

  it('sends nothing to a proxy that subscribes with the current version (reconnect)', () => {
    const { conn, sent } = connection();
    conn.update(SNAPSHOT, V1);
    assert.deepEqual(conn.handleRequest({ typeUrl: 'workload', versionInfo: 'w1', responseNonce: '' }), { kind: 'subscribed', type: 'workload', upToDate: true });
    assert.deepEqual(sent, []);
    assert.equal(conn.status().types.workload.status, 'SYNCED');
    conn.handleRequest({ typeUrl: 'inbound', versionInfo: 'old', responseNonce: '' });
    assert.equal(sent.length, 1);
  });
});
