/**
 * VirtualService `tls` routes through a real sidecar (issue 5): the application encrypts its
 * own traffic to an external name, and the sidecar routes the byte tunnel by the SNI of the
 * ClientHello — one backend per server name, the service's own endpoint for any other name.
 * The backends are TLS servers of the test, on loopback, that answer with their name.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { MeshProcesses, type StartedWorkload } from '../helpers/mesh-process.js';
import { makeLeaf, makeRoot } from '../helpers/pki.js';
import { workloadEntry } from '../helpers/traffic-app.js';

interface Backend {
  name: string;
  port: number;
  server: tls.Server;
}

async function startBackends(names: string[]): Promise<Backend[]> {
  const root = await makeRoot('SNI test root');
  const leaf = await makeLeaf(root, { uris: [] });
  return Promise.all(
    names.map(async (name) => {
      const server = tls.createServer({ key: leaf.keyPem, cert: leaf.cert.toString('pem') }, (socket) => socket.end(`${name} (sni ${socket.servername || 'none'})`));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { name, port: (server.address() as net.AddressInfo).port, server };
    }),
  );
}

function externalTls(host: string, port: number, endpointPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host.split('.')[0]}, namespace: default}
spec:
  hosts: [${host}]
  location: MESH_EXTERNAL
  ports: [{number: ${port}, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {tls: ${endpointPort}}}]
`;
}

/** A TLS connection with `servername`, tunnelled through the sidecar's proxy port (CONNECT). */
function tlsVia(proxyPort: number, authority: string, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const connect = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: authority });
    connect.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`CONNECT ${authority}: ${res.statusCode}`));
        return;
      }
      const secure = tls.connect({ socket, servername, rejectUnauthorized: false });
      let text = '';
      secure.setEncoding('utf8');
      secure.on('data', (chunk: string) => (text += chunk));
      secure.once('end', () => resolve(text));
      secure.once('error', reject);
    });
    connect.once('error', reject);
    connect.setTimeout(20_000, () => connect.destroy(new Error('timed out')));
    connect.end();
  });
}

describe('tls routes by SNI through a sidecar', () => {
  let mesh: MeshProcesses;
  let client: StartedWorkload;
  let backends: Backend[] = [];

  before(async () => {
    backends = await startBackends(['alpha', 'beta', 'front']);
    const [alpha, beta, front] = backends as [Backend, Backend, Backend];
    mesh = await MeshProcesses.start({
      'workloads.yaml': workloadEntry('client', { app: 'client' }, undefined),
      'services.yaml': [externalTls('front.secure.test', 443, front.port), externalTls('alpha.backend.test', 8443, alpha.port), externalTls('beta.backend.test', 8443, beta.port)].join('---\n'),
      'routes.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: by-sni, namespace: default}
spec:
  hosts: ["*.secure.test"]
  tls:
  - match: [{sniHosts: [alpha.secure.test]}]
    route: [{destination: {host: alpha.backend.test, port: {number: 8443}}}]
  - match: [{sniHosts: ["*.beta.secure.test"]}]
    route: [{destination: {host: beta.backend.test, port: {number: 8443}}}]
`,
    });
    client = await mesh.startWorkload('default/client', { outboundPort: true });
    await mesh.waitSynced(1);
  });

  after(async () => {
    await mesh?.stop();
    for (const backend of backends) backend.server.close();
  });

  it('sends each server name to its backend, untouched, and other names to the service itself', async () => {
    const proxyPort = client.ready.listening.outbound as number;
    assert.equal(await tlsVia(proxyPort, 'front.secure.test:443', 'alpha.secure.test'), 'alpha (sni alpha.secure.test)');
    assert.equal(await tlsVia(proxyPort, 'front.secure.test:443', 'x.beta.secure.test'), 'beta (sni x.beta.secure.test)');
    assert.equal(await tlsVia(proxyPort, 'front.secure.test:443', 'other.secure.test'), 'front (sni other.secure.test)');
  });
});
