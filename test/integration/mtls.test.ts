import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { MeshCA } from '../../src/identity/ca.js';
import { SvidRotator } from '../../src/identity/rotation.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';
import { SpiffeTls } from '../../src/identity/tls.js';
import { bundleOf, makeLeaf, makeRoot } from '../helpers/pki.js';

const WEB = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/web');
const DB = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/db');

/** A workload: its rotating SVID and the TLS material built from it. */
async function workload(ca: MeshCA, id: SpiffeId, ttlMs = 60_000): Promise<{ rotator: SvidRotator; tls: SpiffeTls }> {
  const rotator = new SvidRotator({
    id,
    sign: async (csrPem) => {
      const issued = await ca.signCsr(csrPem, { kind: 'authenticated', id }, { ttlMs });
      return { chainPem: issued.chainPem, bundle: issued.bundle };
    },
  });
  const svid = await rotator.start();
  const spiffeTls = new SpiffeTls({ svid, bundle: rotator.bundle });
  rotator.on('rotated', (next, bundle) => spiffeTls.update({ svid: next, bundle }));
  return { rotator, tls: spiffeTls };
}

/** An mTLS server that greets each verified client with the client's SPIFFE ID and answers pings. */
async function startServer(spiffeTls: SpiffeTls): Promise<{ server: tls.Server; port: number; refused: string[] }> {
  const refused: string[] = [];
  const server = tls.createServer(spiffeTls.serverOptions(), (socket) => {
    const peer = spiffeTls.verifyPeer(socket);
    if (!peer.ok) {
      refused.push(peer.reason);
      socket.destroy();
      return;
    }
    socket.write(`hello ${peer.id.toString()}\n`);
    socket.on('data', (data: Buffer) => socket.write(data.toString().replace(/ping/g, 'pong')));
  });
  server.on('tlsClientError', (err) => refused.push(err.message));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, refused };
}

/** Connects, records the server identity and serial, and reads the greeting line. */
async function connect(spiffeTls: SpiffeTls, port: number, expected: SpiffeId): Promise<{ socket: tls.TLSSocket; greeting: string; serverSerial: string }> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ...spiffeTls.clientOptions((id) => (id.equals(expected) ? true : `expected ${expected.toString()}`)),
  });
  await once(socket, 'secureConnect');
  const serverSerial = socket.getPeerCertificate().serialNumber.toLowerCase();
  const greeting = await readLine(socket);
  return { socket, greeting, serverSerial };
}

function readLine(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (data: Buffer): void => {
      buffer += data.toString();
      const newline = buffer.indexOf('\n');
      if (newline >= 0) {
        socket.off('data', onData);
        socket.off('error', reject);
        socket.off('close', onClose);
        resolve(buffer.slice(0, newline));
      }
    };
    const onClose = (): void => reject(new Error(`connection closed before a full line (got ${JSON.stringify(buffer)})`));
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', onClose);
  });
}

async function ping(socket: tls.TLSSocket, n: number): Promise<void> {
  socket.write(`ping ${n}\n`);
  assert.equal(await readLine(socket), `pong ${n}`);
}

describe('mTLS between two SVID holders on loopback', () => {
  let dir: string;
  let ca: MeshCA;
  const cleanups: Array<() => void> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-mtls-'));
    ca = await MeshCA.init(join(dir, 'ca'));
  });

  after(() => {
    for (const cleanup of cleanups.reverse()) cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  async function setup(): Promise<{ web: Awaited<ReturnType<typeof workload>>; db: Awaited<ReturnType<typeof workload>>; server: Awaited<ReturnType<typeof startServer>> }> {
    const web = await workload(ca, WEB);
    const db = await workload(ca, DB);
    const server = await startServer(web.tls);
    cleanups.push(() => {
      web.rotator.stop();
      db.rotator.stop();
      server.server.close();
    });
    web.rotator.on('rotated', () => server.server.setSecureContext(web.tls.secureContextOptions()));
    return { web, db, server };
  }

  it('lets each side see the other’s SPIFFE ID', async () => {
    const { db, server } = await setup();
    const { socket, greeting } = await connect(db.tls, server.port, WEB);
    assert.equal(greeting, `hello ${DB.toString()}`);
    socket.destroy();
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    const { server } = await setup();
    const foreignRoot = await makeRoot('Foreign Root');
    const foreignLeaf = await makeLeaf(foreignRoot, { uris: [DB.toString()] });
    const foreign = new SpiffeTls({ svid: { keyPem: foreignLeaf.keyPem, chainPem: foreignLeaf.cert.toString('pem') }, bundle: await ca.bundle() });
    await assert.rejects(connect(foreign, server.port, WEB));
    assert.ok(server.refused.length > 0, 'the server saw and refused the handshake');
  });

  it('refuses a server whose certificate comes from another CA', async () => {
    const { db } = await setup();
    const foreignRoot = await makeRoot('Foreign Root');
    const foreignLeaf = await makeLeaf(foreignRoot, { uris: [WEB.toString()] });
    const impostor = new SpiffeTls({ svid: { keyPem: foreignLeaf.keyPem, chainPem: foreignLeaf.cert.toString('pem') }, bundle: bundleOf('cluster.local', foreignRoot) });
    const fake = await startServer(impostor);
    cleanups.push(() => fake.server.close());
    await assert.rejects(connect(db.tls, fake.port, WEB), /certificate|verify/i);
  });

  it('refuses a server whose identity is not the expected one', async () => {
    const { db, server } = await setup();
    await assert.rejects(connect(db.tls, server.port, DB), /server spiffe:\/\/cluster.local\/ns\/default\/sa\/web refused/);
  });

  it('refuses a revoked client', async () => {
    const { web, db, server } = await setup();
    const revocations = await ca.revokeSerial(db.rotator.current.leaf.serialNumber);
    web.tls.update({ revocations });
    const attempt = connect(db.tls, server.port, WEB);
    await assert.rejects(attempt, /closed before a full line|ECONNRESET|socket hang up/);
    assert.ok(server.refused.includes('revoked'));
  });

  it('keeps connections alive across a certificate renewal', async () => {
    const { web, db, server } = await setup();
    const first = await connect(db.tls, server.port, WEB);
    await ping(first.socket, 1);
    const oldSerial = web.rotator.current.leaf.serialNumber.toLowerCase();
    await Promise.all([web.rotator.renewNow(), db.rotator.renewNow()]);
    const newSerial = web.rotator.current.leaf.serialNumber.toLowerCase();
    assert.notEqual(newSerial, oldSerial);
    await ping(first.socket, 2);
    const second = await connect(db.tls, server.port, WEB);
    assert.equal(second.serverSerial.replace(/^0+/, ''), newSerial.replace(/^0+/, ''), 'new connections get the new certificate');
    await ping(second.socket, 3);
    await ping(first.socket, 4);
    first.socket.destroy();
    second.socket.destroy();
  });

  it('keeps workloads talking throughout a root rotation', async () => {
    const { web, db, server } = await setup();
    const live = await connect(db.tls, server.port, WEB);
    await ping(live.socket, 1);
    const oldRoot = (await ca.status()).roots.find((root) => root.state === 'active')!.fingerprint;

    // 1. The new root is announced; renewals bring it to every workload's bundle.
    await ca.rotate({ graceMs: 1_500 });
    await Promise.all([web.rotator.renewNow(), db.rotator.renewNow()]);
    assert.equal(web.rotator.bundle.roots.length, 2);
    await ping(live.socket, 2);
    (await connect(db.tls, server.port, WEB)).socket.destroy();

    // 2. After the grace period the server renews onto the new root; the client still holds an old-root SVID.
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    await web.rotator.renewNow();
    const status = await ca.status();
    assert.notEqual(status.roots.find((root) => root.state === 'active')!.fingerprint, oldRoot);
    assert.ok(status.roots.some((root) => root.fingerprint === oldRoot && root.state === 'retiring'));
    const mixed = await connect(db.tls, server.port, WEB);
    assert.equal(mixed.greeting, `hello ${DB.toString()}`);
    await ping(live.socket, 3);

    // 3. The client moves to the new root too.
    await db.rotator.renewNow();
    const fresh = await connect(db.tls, server.port, WEB);
    await ping(fresh.socket, 4);
    await ping(live.socket, 5);
    for (const socket of [live.socket, mixed.socket, fresh.socket]) socket.destroy();
  });
});
