import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { MeshCA } from '../../identity/ca.js';
import { inspectCertificate } from '../../identity/inspect.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { svidFromPem } from '../../identity/svid.js';
import { SpiffeTls } from '../../identity/tls.js';
import { createKeyAndCsr } from '../../identity/workload-key.js';
import { printLine } from '../output.js';

/**
 * `trellis demo identity`: the identity layer on its own, in a temporary directory: a mesh CA,
 * two workloads that prove who they are with join tokens, mutual TLS between them on loopback,
 * and a revocation that locks one out.
 */
export async function identityDemo(opts: { keep?: boolean }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-demo-'));
  try {
    await runIdentityDemo(dir);
  } finally {
    if (opts.keep) printLine(`\nFiles kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function runIdentityDemo(dir: string): Promise<void> {
  const caDir = join(dir, 'ca');
  step(1, `Create a mesh CA                      trellis ca init --dir ${caDir}`);
  const ca = await MeshCA.init(caDir, { actor: 'demo' });
  const status = await ca.status();
  printLine(`   trust domain ${status.trustDomain}, root ${status.signing.subject}`);

  const web = SpiffeId.forServiceAccount(status.trustDomain, 'shop', 'web');
  const db = SpiffeId.forServiceAccount(status.trustDomain, 'shop', 'db');
  step(2, `Issue identities with join tokens     trellis token create … && trellis cert issue …`);
  const workloads = [];
  for (const id of [web, db]) {
    const { token } = await ca.createJoinToken(id, 600_000, 'demo');
    const { keyPem, csrPem } = await createKeyAndCsr(id);
    const issued = await ca.signCsr(csrPem, { kind: 'join-token', token });
    const svid = svidFromPem(keyPem, issued.chainPem);
    const report = inspectCertificate(svid.leaf);
    printLine(`   ${id.toString()}`);
    printLine(`     serial ${report.serial}, valid until ${report.notAfter}, ${report.keyAlgorithm}`);
    printLine(`     X509-SVID rules: ${report.spiffeProblems.length === 0 ? 'all met' : report.spiffeProblems.join('; ')}`);
    workloads.push({ id, svid, tls: new SpiffeTls({ svid, bundle: issued.bundle }), token });
  }
  const [server, client] = workloads as [(typeof workloads)[0], (typeof workloads)[0]];

  step(3, 'Reuse a join token');
  try {
    await ca.signCsr((await createKeyAndCsr(web)).csrPem, { kind: 'join-token', token: server.token });
    printLine('   unexpectedly accepted');
  } catch (err) {
    printLine(`   refused: ${(err as Error).message}`);
  }

  step(4, `mTLS on loopback: ${db.toString()} → ${web.toString()}`);
  const listener = tls.createServer(server.tls.serverOptions(), (socket) => {
    const peer = server.tls.verifyPeer(socket);
    if (!peer.ok) {
      socket.destroy();
      return;
    }
    socket.end(`hello ${peer.id.toString()}, I am ${web.toString()}\n`);
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const port = (listener.address() as AddressInfo).port;
  try {
    printLine(`   server says: ${await exchange(client.tls, port, web)}`);

    step(5, `Revoke ${db.toString()}            trellis ca revoke --identity …`);
    server.tls.update({ revocations: await ca.revokeIdentity(db, 'demo') });
    try {
      printLine(`   server says: ${await exchange(client.tls, port, web)}`);
    } catch (err) {
      printLine(`   connection refused by the server: ${(err as Error).message}`);
    }
  } finally {
    listener.close();
  }

  printLine('\nNext: "trellis --help", and docs/guide/identity.md for the whole story.');
}

function step(n: number, text: string): void {
  printLine(`\n${n}. ${text}`);
}

async function exchange(clientTls: SpiffeTls, port: number, expected: SpiffeId): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, ...clientTls.clientOptions((id) => (id.equals(expected) ? true : `expected ${expected.toString()}`)) });
  let text = '';
  socket.on('data', (data: Buffer) => (text += data.toString()));
  await once(socket, 'end');
  socket.destroy();
  if (text === '') throw new Error('closed without a reply (the server rejected our certificate)');
  return text.trim();
}
