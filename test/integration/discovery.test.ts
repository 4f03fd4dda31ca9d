/**
 * The control plane and the proxy's discovery client, in process, over real gRPC and real mTLS
 * on loopback: bootstrap, impersonation, pushes, ACK/NACK, invalid edits, revocation, renewal,
 * and a control plane restart under a connected proxy.
 */
import { ChannelCredentials, Client, Metadata, type ServiceError, status as GrpcStatus } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isTrellisError } from '../../src/api/errors.js';
import type { ProxySyncStatus } from '../../src/controlplane/proxy-connection.js';
import type { DiscoveryClient } from '../../src/dataplane/discovery-client.js';
import { MeshCA } from '../../src/identity/ca.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';
import { CERTIFICATE_METHODS, DISCOVERY_METHODS, type DiscoveryResponse } from '../../src/mesh/discovery-protocol.js';
import type { ResourceType } from '../../src/mesh/snapshot.js';
import { makeRoot } from '../helpers/pki.js';
import { meshYaml, startTestMesh, type TestMesh, TRUST_DOMAIN, until } from '../helpers/mesh.js';
import { exportPrivateKeyPem } from '../../src/identity/x509.js';

const WEB = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/web`;
const DB = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/db`;

interface Recorder {
  client: DiscoveryClient;
  pushes: Array<{ type: ResourceType; version: string; at: number }>;
  /** Set to make `apply` refuse outbound resources (→ NACK). */
  refuseOutbound?: string | undefined;
}

async function syncz(mesh: TestMesh): Promise<ProxySyncStatus[]> {
  const response = await fetch(`${mesh.cp.adminUrl}/debug/syncz`);
  assert.equal(response.status, 200);
  return ((await response.json()) as { proxies: ProxySyncStatus[] }).proxies;
}

function synced(proxy: ProxySyncStatus | undefined): boolean {
  return proxy !== undefined && Object.values(proxy.types).every((t) => t.status === 'SYNCED');
}

describe('discovery over mTLS', () => {
  let mesh: TestMesh;
  let web: Recorder;
  let db: Recorder;

  function recorder(workload: string, token: string): Recorder {
    const rec: Recorder = {
      pushes: [],
      client: mesh.client(workload, {
        joinToken: token,
        apply: (type, _resource, version) => {
          if (type === 'outbound' && rec.refuseOutbound !== undefined) return { ok: false, error: rec.refuseOutbound };
          rec.pushes.push({ type, version, at: Date.now() });
          return { ok: true };
        },
      }),
    };
    return rec;
  }

  before(async () => {
    mesh = await startTestMesh();
  });
  after(async () => {
    await mesh.close();
  });

  it('bootstraps a proxy with a join token and pushes all four resource types', async () => {
    web = recorder('shop/web', await mesh.token('web'));
    const svid = await web.client.start();
    assert.equal(svid.id.toString(), WEB);
    const snapshot = await web.client.waitForSnapshot();
    assert.deepEqual(web.pushes.map((p) => p.type).sort(), ['inbound', 'outbound', 'trust', 'workload']);
    assert.equal(snapshot.workload.identity, WEB);
    assert.deepEqual(snapshot.inbound.ports, [{ name: 'http', port: 18080, protocol: 'HTTP', mtls: 'STRICT' }]);
    assert.equal(snapshot.inbound.policy.mtls.policies.mesh, 'istio-system/default');
    assert.deepEqual(snapshot.outbound.services.map((s) => s.host), ['db.shop.svc.cluster.local', 'web.shop.svc.cluster.local']);
    assert.equal(snapshot.trust.trustDomain, TRUST_DOMAIN);
    await until(async () => synced((await syncz(mesh)).find((p) => p.workload === 'shop/web')), 5_000, 'web SYNCED');
    const [proxy] = await syncz(mesh);
    assert.equal(proxy?.identity, WEB);
    assert.deepEqual(proxy && Object.fromEntries(Object.entries(proxy.types).map(([t, s]) => [t, s.acked])), web.client.versions);
  });

  it('refuses a used join token and a token from another mesh', async () => {
    const token = await mesh.token('web');
    const first = mesh.client('shop/web', { joinToken: token });
    await first.start();
    first.stop();
    const reused = mesh.client('shop/web', { joinToken: token });
    await assert.rejects(reused.start(), (err: unknown) => isTrellisError(err, 'TRELLIS_CA_REFUSED') && /already used/.test(err.message));

    const otherDir = mkdtempSync(join(tmpdir(), 'trellis-other-ca-'));
    try {
      const other = await MeshCA.init(otherDir, { trustDomain: TRUST_DOMAIN, audit: () => undefined });
      const { token: foreign } = await other.createJoinToken(SpiffeId.parse(WEB), 60_000);
      const stranger = mesh.client('shop/web', { joinToken: foreign });
      await assert.rejects(stranger.start(), (err: unknown) => isTrellisError(err, 'TRELLIS_CA_REFUSED') && /not known to this CA/.test(err.message));
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it("refuses a stream for another workload's identity", async () => {
    const impostor = mesh.client('shop/db', { joinToken: await mesh.token('web') });
    const disconnected = once(impostor, 'disconnected');
    await impostor.start();
    const [{ error }] = (await disconnected) as [{ error?: Error }];
    impostor.stop();
    assert.ok(isTrellisError(error, 'TRELLIS_DISCOVERY_IDENTITY'), String(error));
    assert.match(error.message, /may not serve WorkloadEntry shop\/db/);
    assert.equal(impostor.snapshot, undefined);
    assert.ok((await syncz(mesh)).every((p) => p.workload !== 'shop/db'));
  });

  it('does not talk to a server that lacks the control plane identity, not even to bootstrap', async () => {
    const token = await mesh.token('web');
    const wary = mesh.client('shop/web', { joinToken: token, controlPlaneIdentity: `spiffe://${TRUST_DOMAIN}/ns/istio-system/sa/someone-else` });
    await assert.rejects(wary.start(), (err: unknown) => isTrellisError(err, 'TRELLIS_CONTROL_PLANE_IDENTITY') && /is spiffe:\/\/example\.org\/ns\/istio-system\/sa\/trellis-controlplane, not spiffe:\/\/example\.org\/ns\/istio-system\/sa\/someone-else/.test(err.message));
    // The token never reached the server: it still works.
    const proper = mesh.client('shop/web', { joinToken: token });
    await proper.start();
    proper.stop();
  });

  it('gives callers without an SVID nothing but the bootstrap calls', async () => {
    const bundlePem = readFileSync(mesh.cp.bundleFile);
    const client = new Client(mesh.cp.discoveryAddress, ChannelCredentials.createSsl(bundlePem, null, null, { checkServerIdentity: () => undefined }), { 'grpc.ssl_target_name_override': 'trellis-controlplane' });
    try {
      const stream = client.makeBidiStreamRequest(DISCOVERY_METHODS.Stream.path, DISCOVERY_METHODS.Stream.requestSerialize, DISCOVERY_METHODS.Stream.responseDeserialize, new Metadata());
      stream.on('data', (_: DiscoveryResponse) => assert.fail('no data expected'));
      stream.write({ node: { workload: 'shop/web', proxyVersion: 'test' }, typeUrl: 'workload', versionInfo: '', responseNonce: '' });
      const [streamError] = (await once(stream, 'error')) as [ServiceError];
      assert.equal(streamError.code, GrpcStatus.UNAUTHENTICATED);

      const create = CERTIFICATE_METHODS.Create;
      const unaryError = await new Promise<ServiceError | null>((resolve) => {
        client.makeUnaryRequest(create.path, create.requestSerialize, create.responseDeserialize, { csrPem: 'x' }, (err) => resolve(err));
      });
      assert.equal(unaryError?.code, GrpcStatus.UNAUTHENTICATED);
      assert.match(unaryError?.details ?? '', /no join token/);
    } finally {
      client.close();
    }
  });

  it('pushes only the changed types to each proxy, within a second of a config edit', async () => {
    db = recorder('shop/db', await mesh.token('db'));
    await db.client.start();
    await db.client.waitForSnapshot();
    await until(async () => (await syncz(mesh)).filter(synced).length === 2, 5_000, 'two proxies SYNCED');
    web.pushes.length = 0;
    db.pushes.length = 0;

    const editedAt = Date.now();
    mesh.writeConfig(meshYaml({ dbPort: 15433 }));
    await until(() => web.pushes.length > 0 && db.pushes.length >= 2, 5_000, 'pushes after the edit');
    // Let any straggler arrive before asserting nothing else was pushed.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(web.pushes.map((p) => p.type), ['outbound']);
    assert.deepEqual(db.pushes.map((p) => p.type).sort(), ['inbound', 'outbound']);
    const latest = Math.max(...[...web.pushes, ...db.pushes].map((p) => p.at));
    assert.ok(latest - editedAt < 1_000, `pushed ${latest - editedAt} ms after the edit`);
    assert.equal(db.client.snapshot?.inbound.ports[0]?.port, 15433);
    const dbEndpoint = web.client.snapshot?.outbound.services.find((s) => s.host.startsWith('db.'))?.endpoints[0];
    assert.deepEqual(dbEndpoint?.ports, { 'tcp-db': 15433 });
  });

  it('records a NACK, keeps the previous version live, and shows it in /debug/syncz', async () => {
    const before = web.client.versions.outbound;
    web.refuseOutbound = 'outbound: no listener can bind port 15434';
    const nack = once(web.client, 'nack');
    mesh.writeConfig(meshYaml({ dbPort: 15434 }));
    const [event] = (await nack) as [{ type: ResourceType; version: string; message: string }];
    assert.equal(event.type, 'outbound');
    assert.notEqual(event.version, before);
    assert.equal(web.client.versions.outbound, before);

    let proxy: ProxySyncStatus | undefined;
    await until(async () => {
      proxy = (await syncz(mesh)).find((p) => p.workload === 'shop/web');
      return proxy?.types.outbound.status === 'NACKED';
    }, 5_000, 'NACKED in syncz');
    assert.equal(proxy?.types.outbound.acked, before);
    assert.equal(proxy?.types.outbound.pushed, event.version);
    assert.deepEqual({ version: proxy?.types.outbound.nack?.version, message: proxy?.types.outbound.nack?.message }, { version: event.version, message: 'outbound: no listener can bind port 15434' });
    assert.ok(mesh.logs.some((l) => l['event'] === 'discovery.nack' && l['workload'] === 'shop/web'));

    // The next version is accepted again.
    web.refuseOutbound = undefined;
    web.pushes.length = 0;
    mesh.writeConfig(meshYaml({ dbPort: 15435 }));
    await until(() => web.pushes.some((p) => p.type === 'outbound'), 5_000, 'the next outbound version');
    await until(async () => synced((await syncz(mesh)).find((p) => p.workload === 'shop/web')), 5_000, 'web SYNCED again');
  });

  it('refuses an invalid edit, shows file and line in /status, and keeps proxies on the last good version', async () => {
    const versions = web.client.versions;
    web.pushes.length = 0;
    const good = meshYaml({ dbPort: 15435 });
    // A typo inside the web WorkloadEntry: an unknown field is an error, never ignored.
    const bad = good.replace('  serviceAccount: web\n', '  serviceAccount: web\n  serviceAcount: web\n');
    const line = bad.split('\n').indexOf('  serviceAcount: web') + 1;
    mesh.writeConfig(bad);

    let status: { config: { healthy: boolean; version: string; errors: Array<{ file: string; line: number; code: string; message: string }> } } | undefined;
    await until(async () => {
      status = (await (await fetch(`${mesh.cp.adminUrl}/status`)).json()) as typeof status;
      return status?.config.healthy === false;
    }, 5_000, 'the refusal in /status');
    const [error] = status?.config.errors ?? [];
    assert.equal(error?.file, join(mesh.configDir, 'mesh.yaml'));
    assert.equal(error?.line, line);
    assert.equal(error?.code, 'TRELLIS_CONFIG_UNKNOWN_FIELD');
    assert.match(error?.message ?? '', /did you mean "serviceAccount"/);
    assert.ok(mesh.logs.some((l) => l['event'] === 'config.refused'));

    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(web.pushes, []);
    assert.deepEqual(web.client.versions, versions);

    mesh.writeConfig(good);
    await until(async () => ((await (await fetch(`${mesh.cp.adminUrl}/status`)).json()) as { config: { healthy: boolean } }).config.healthy, 5_000, 'healthy again');
    assert.deepEqual(web.pushes, [], 'the restored config has the same content: nothing to push');
  });

  it('pushes a revocation made through the CA directory to every proxy, and disconnects a revoked proxy', async () => {
    // A second handle on the CA directory, as `trellis ca revoke --dir <state>/ca` would open it.
    const cli = MeshCA.open(mesh.cp.caDir);
    web.pushes.length = 0;
    const revokedAt = Date.now();
    await cli.revokeSerial('abcdef0123', 'test');
    await until(() => web.pushes.some((p) => p.type === 'trust'), 2_000, 'the trust push');
    const trustPush = web.pushes.find((p) => p.type === 'trust');
    assert.ok(trustPush && trustPush.at - revokedAt < 1_000, `trust pushed ${trustPush ? trustPush.at - revokedAt : '?'} ms after the revocation`);
    assert.deepEqual(web.client.snapshot?.trust.revocations.serials, ['abcdef0123']);
    assert.deepEqual(web.pushes.map((p) => p.type), ['trust']);

    const dropped = once(db.client, 'disconnected');
    await cli.revokeIdentity(SpiffeId.parse(DB), 'test');
    const [{ error }] = (await dropped) as [{ error?: Error }];
    assert.ok(isTrellisError(error, 'TRELLIS_DISCOVERY_UNAUTHENTICATED'), String(error));
    await until(() => web.client.snapshot?.trust.revocations.identities.includes(DB) === true, 2_000, 'the identity revocation at web');
    db.client.stop();
    await until(async () => (await syncz(mesh)).every((p) => p.workload !== 'shop/db'), 2_000, 'db gone from syncz');
  });

  it('bootstraps without streaming until connect() is called', async () => {
    const applied: string[] = [];
    const late = mesh.client('shop/web', { joinToken: await mesh.token('web'), apply: (type) => void applied.push(type) });
    const svid = await late.bootstrap();
    assert.equal(svid.id.toString(), WEB);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(applied, []);
    assert.equal(late.connected, false);
    late.connect();
    await late.waitForSnapshot();
    assert.deepEqual(applied.sort(), ['inbound', 'outbound', 'trust', 'workload']);
    late.stop();
  });

  it('renews the SVID over the mTLS channel and reconnects with it', async () => {
    const old = web.client.svid;
    const renewed = once(web.client, 'svid');
    const reconnected = once(web.client, 'connected');
    await web.client.renewNow();
    await renewed;
    await reconnected;
    const current = web.client.svid;
    assert.ok(old && current);
    assert.notEqual(current.leaf.serialNumber, old.leaf.serialNumber);
    assert.equal(current.id.toString(), WEB);
    const audit = readFileSync(join(mesh.cp.caDir, 'audit.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const issued = audit.filter((e) => e['type'] === 'svid.issued' && e['identity'] === WEB).at(-1);
    assert.equal(issued?.['actor'], WEB, 'renewal is authenticated by the SVID, not by a token');
    assert.ok(mesh.logs.some((l) => l['event'] === 'svid.issued' && l['via'] === 'renewal'));
    await until(async () => {
      const proxies = (await syncz(mesh)).filter((p) => p.workload === 'shop/web');
      return proxies.length === 1 && synced(proxies[0]) && proxies[0]?.certificateExpiresAt === current.notAfter.toISOString().replace(/\.\d+Z$/, '.000Z');
    }, 5_000, 'one web stream on the new certificate');
  });

  it('keeps the last snapshot while the control plane is down and reconnects without re-pushing', async () => {
    const snapshot = web.client.snapshot;
    const versions = web.client.versions;
    web.pushes.length = 0;
    await mesh.restart(async () => {
      await until(() => !web.client.connected, 5_000, 'the disconnect');
      assert.deepEqual(web.client.snapshot, snapshot, 'fail static: the snapshot stays');
      assert.ok(web.client.svid, 'the SVID stays');
    });
    await until(() => web.client.connected, 10_000, 'the reconnect');
    await until(async () => synced((await syncz(mesh)).find((p) => p.workload === 'shop/web')), 5_000, 'web SYNCED on the new control plane');
    assert.deepEqual(web.pushes, [], 'the proxy was up to date: nothing re-applied');
    assert.deepEqual(web.client.versions, versions);
  });
});

describe('discovery under an operator root (the mesh CA is an intermediate)', () => {
  it('bootstraps, streams and renews: both sides build the path through the intermediate', async () => {
    const mesh = await startTestMesh(meshYaml(), {
      beforeStart: async (stateDir) => {
        const root = await makeRoot('Operator Root', { trustDomain: TRUST_DOMAIN, pathLength: 1 });
        await MeshCA.init(join(stateDir, 'ca'), { trustDomain: TRUST_DOMAIN, rootCertPem: root.cert.toString('pem'), rootKeyPem: await exportPrivateKeyPem(root.keys.privateKey), audit: () => undefined });
      },
    });
    try {
      const client = mesh.client('shop/web', { joinToken: await mesh.token('web') });
      const svid = await client.start();
      assert.equal(svid.chainPem.match(/BEGIN CERTIFICATE/g)?.length, 2, 'leaf + intermediate');
      await client.waitForSnapshot();
      const renewed = once(client, 'svid');
      await client.renewNow();
      await renewed;
      await until(async () => synced((await syncz(mesh)).find((p) => p.workload === 'shop/web')), 5_000, 'web SYNCED');
    } finally {
      await mesh.close();
    }
  });
});

describe('a mesh whose MeshConfig names no trust domain', () => {
  it("uses the CA's trust domain (--trust-domain) for identities, and accepts later edits", async () => {
    const withoutTrustDomain = meshYaml().replace(`spec:\n  trustDomain: ${TRUST_DOMAIN}\n`, 'spec:\n  defaultAuthorization: ALLOW\n');
    assert.ok(!withoutTrustDomain.includes(`trustDomain: ${TRUST_DOMAIN}`));
    const mesh = await startTestMesh(withoutTrustDomain, { controlPlane: { trustDomain: TRUST_DOMAIN } });
    try {
      assert.equal(mesh.cp.trustDomain, TRUST_DOMAIN);
      const client = mesh.client('shop/web', { joinToken: await mesh.token('web') });
      await client.start();
      const snapshot = await client.waitForSnapshot();
      assert.equal(snapshot.workload.identity, WEB);
      mesh.writeConfig(withoutTrustDomain.replace('tcp-db: 15432', 'tcp-db: 15499'));
      await until(() => client.snapshot?.outbound.services.some((s) => s.endpoints[0]?.ports['tcp-db'] === 15499) === true, 5_000, 'the edit');
      assert.deepEqual(mesh.cp.status().config.errors, []);
    } finally {
      await mesh.close();
    }
  });
});

describe("the control plane's own SVID", () => {
  it('is renewed and swapped into the running server; proxies keep connecting', async () => {
    const mesh = await startTestMesh(meshYaml(), {
      beforeStart: async (stateDir) => {
        await MeshCA.init(join(stateDir, 'ca'), { trustDomain: TRUST_DOMAIN, defaultSvidTtlMs: 3_000, audit: () => undefined });
      },
    });
    const serverSerial = async (): Promise<string> => {
      const socket = tlsConnect({ host: '127.0.0.1', port: mesh.cp.discoveryPort, servername: 'trellis-controlplane', rejectUnauthorized: false, ALPNProtocols: ['h2'] });
      await once(socket, 'secureConnect');
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      return serial;
    };
    try {
      const first = await serverSerial();
      await until(() => mesh.logs.some((l) => l['event'] === 'controlplane.svid-rotated'), 5_000, 'the control plane SVID renewal');
      await until(async () => (await serverSerial()) !== first, 2_000, 'a new server certificate');
      const client = mesh.client('shop/web', { joinToken: await mesh.token('web') });
      await client.start();
      await client.waitForSnapshot();
      client.stop();
    } finally {
      await mesh.close();
    }
  });
});
