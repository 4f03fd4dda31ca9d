/**
 * In-process mesh pieces for data-plane integration tests: a real CA, real SVIDs and real
 * sidecars on loopback, with snapshots built the way the control plane builds them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { MeshCA } from '../../src/identity/ca.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';
import { type Svid, svidFromPem } from '../../src/identity/svid.js';
import { createKeyAndCsr } from '../../src/identity/workload-key.js';
import type { TrustBundle } from '../../src/identity/bundle.js';

export const silentLog = pino({ level: process.env['TRELLIS_TEST_LOG'] ?? 'silent' });

export class TestMesh {
  readonly dir: string;
  ca!: MeshCA;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<TestMesh> {
    const mesh = new TestMesh(mkdtempSync(join(tmpdir(), 'trellis-mesh-')));
    mesh.ca = await MeshCA.init(join(mesh.dir, 'ca'));
    return mesh;
  }

  async svid(namespace: string, serviceAccount: string, ttlMs?: number): Promise<{ svid: Svid; bundle: TrustBundle }> {
    const id = SpiffeId.forServiceAccount('cluster.local', namespace, serviceAccount);
    const { keyPem, csrPem } = await createKeyAndCsr(id);
    const issued = await this.ca.signCsr(csrPem, { kind: 'authenticated', id }, ttlMs === undefined ? {} : { ttlMs });
    return { svid: svidFromPem(keyPem, issued.chainPem), bundle: issued.bundle };
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
