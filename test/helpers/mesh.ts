/** A control plane on loopback (port 0) with a temporary config and state directory, for tests. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { type ControlPlane, type ControlPlaneOptions, startControlPlane } from '../../src/controlplane/controlplane.js';
import { type ApplyResource, DiscoveryClient, type DiscoveryClientOptions } from '../../src/dataplane/discovery-client.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';

export const TRUST_DOMAIN = 'example.org';

/** Two workloads (web, db) in namespace shop, a service for each, STRICT mTLS mesh-wide. */
export function meshYaml(options: { dbPort?: number; extra?: string } = {}): string {
  return `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata:
  name: mesh
spec:
  trustDomain: ${TRUST_DOMAIN}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: web
  namespace: shop
spec:
  address: 127.0.0.1
  serviceAccount: web
  labels:
    app: web
  ports:
    http: 18080
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: db
  namespace: shop
spec:
  address: 127.0.0.2
  serviceAccount: db
  labels:
    app: db
  ports:
    tcp-db: ${options.dbPort ?? 15432}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: web
  namespace: shop
spec:
  hosts: [web.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: 80
    name: http
    protocol: HTTP
    targetPort: 18080
  workloadSelector:
    labels:
      app: web
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: db
  namespace: shop
spec:
  hosts: [db.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: 5432
    name: tcp-db
  workloadSelector:
    labels:
      app: db
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
${options.extra ?? ''}`;
}

export interface TestMesh {
  dir: string;
  configDir: string;
  stateDir: string;
  cp: ControlPlane;
  logs: Array<Record<string, unknown>>;
  writeConfig(text: string, file?: string): void;
  token(workload: 'web' | 'db', namespace?: string): Promise<string>;
  client(workload: string, options?: Partial<DiscoveryClientOptions>): DiscoveryClient;
  /** Stops the control plane, runs `whileDown`, starts it again on the same ports. */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** Collects pino's JSON lines so tests can assert on what was logged. */
export function captureLogger(lines: Array<Record<string, unknown>>): Logger {
  return pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
}

export async function startTestMesh(
  yaml = meshYaml(),
  options: { beforeStart?: (stateDir: string) => Promise<void>; controlPlane?: Partial<ControlPlaneOptions> } = {},
): Promise<TestMesh> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-cp-'));
  const configDir = join(dir, 'config');
  const stateDir = join(dir, 'state');
  mkdirSync(configDir);
  await options.beforeStart?.(stateDir);
  writeFileSync(join(configDir, 'mesh.yaml'), yaml);
  const logs: Array<Record<string, unknown>> = [];
  const clients: DiscoveryClient[] = [];
  let port = 0;
  const start = (): Promise<ControlPlane> =>
    startControlPlane({
      configDir,
      stateDir,
      discoveryPort: port,
      adminPort: 0,
      logger: captureLogger(logs),
      configDebounceMs: 50,
      configRescanIntervalMs: 60_000,
      pushDebounceMs: 50,
      caPollIntervalMs: 200,
      ...options.controlPlane,
    });
  const mesh: TestMesh = {
    dir,
    configDir,
    stateDir,
    cp: await start(),
    logs,
    writeConfig(text, file = 'mesh.yaml') {
      writeFileSync(join(configDir, file), text);
    },
    async token(workload, namespace = 'shop') {
      const { token } = await mesh.cp.ca.createJoinToken(SpiffeId.forServiceAccount(TRUST_DOMAIN, namespace, workload), 600_000, 'test');
      return token;
    },
    client(workload, options = {}) {
      const apply: ApplyResource = () => ({ ok: true });
      const client = new DiscoveryClient({
        address: `127.0.0.1:${mesh.cp.discoveryPort}`,
        workload,
        bundle: mesh.cp.bundleFile,
        trustDomain: TRUST_DOMAIN,
        apply,
        backoff: { initialMs: 100, maxMs: 400 },
        ...options,
      });
      clients.push(client);
      return client;
    },
    async restart(whileDown) {
      // Same port, so clients reconnect to the new process as they would in production.
      port = mesh.cp.discoveryPort;
      await mesh.cp.stop();
      await whileDown?.();
      mesh.cp = await start();
    },
    async close() {
      for (const client of clients) client.stop();
      await mesh.cp.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return mesh;
}

/** Resolves when `predicate` holds, polling every 20 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
