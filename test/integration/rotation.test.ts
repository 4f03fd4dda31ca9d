import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TrustBundle } from '../../src/identity/bundle.js';
import { MeshCA } from '../../src/identity/ca.js';
import { type CsrSigner, SvidRotator } from '../../src/identity/rotation.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';

const WEB = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/web');

describe('SVID rotation client', () => {
  let dir: string;
  let ca: MeshCA;
  const rotators: SvidRotator[] = [];
  // The rotator's timers are unref'd (a library must not keep a process alive); here nothing
  // else would keep the event loop running while a test waits for them.
  let keepAlive: NodeJS.Timeout;

  before(async () => {
    keepAlive = setInterval(() => undefined, 1_000);
    dir = mkdtempSync(join(tmpdir(), 'trellis-rot-'));
    ca = await MeshCA.init(join(dir, 'ca'));
  });
  after(() => {
    clearInterval(keepAlive);
    for (const rotator of rotators) rotator.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A signer backed by the CA that can be switched off, like an unreachable control plane. */
  function signer(ttlMs: number): { sign: CsrSigner; state: { up: boolean; calls: number } } {
    const state = { up: true, calls: 0 };
    const sign: CsrSigner = async (csrPem, id) => {
      state.calls += 1;
      if (!state.up) throw new Error('connect ECONNREFUSED 127.0.0.1:15012');
      const issued = await ca.signCsr(csrPem, { kind: 'authenticated', id }, { ttlMs });
      return { chainPem: issued.chainPem, bundle: issued.bundle };
    };
    return { sign, state };
  }

  function rotator(options: ConstructorParameters<typeof SvidRotator>[0]): SvidRotator {
    const created = new SvidRotator(options);
    rotators.push(created);
    return created;
  }

  it('schedules renewal at half life, counted from when the SVID arrived', async () => {
    const now = Date.now();
    const { sign } = signer(3_600_000);
    const r = rotator({ id: WEB, sign, now: () => now, random: () => 0.5 });
    const svid = await r.start();
    assert.ok(svid.id.equals(WEB));
    const expected = now + (svid.notAfter.getTime() - now) / 2;
    assert.ok(Math.abs((r.nextRenewalAt ?? 0) - expected) < 2, `renewal at ${r.nextRenewalAt}, expected ${expected}`);
  });

  it('spreads renewals with jitter', async () => {
    const { sign } = signer(3_600_000);
    const early = rotator({ id: WEB, sign, random: () => 0 });
    const late = rotator({ id: WEB, sign, random: () => 1 });
    await early.start();
    await late.start();
    const lifetime = early.current.notAfter.getTime() - Date.now();
    const gap = (late.nextRenewalAt ?? 0) - (early.nextRenewalAt ?? 0);
    assert.ok(Math.abs(gap - 0.2 * lifetime) < 5_000, `gap ${gap}ms, expected about ${0.2 * lifetime}ms`);
  });

  it('renews by itself and notifies listeners', async () => {
    const { sign } = signer(2_000);
    const r = rotator({ id: WEB, sign, jitter: 0 });
    const first = await r.start();
    const [next, bundle] = (await once(r, 'rotated')) as [typeof first, TrustBundle];
    assert.notEqual(next.leaf.serialNumber, first.leaf.serialNumber);
    assert.equal(r.current, next);
    assert.equal(bundle.trustDomain, 'cluster.local');
  });

  it('keeps the current SVID while the CA is unreachable and recovers when it returns', async () => {
    const { sign, state } = signer(60_000);
    const r = rotator({ id: WEB, sign, minBackoffMs: 40, maxBackoffMs: 200 });
    const first = await r.start();
    state.up = false;
    const failures: number[] = [];
    r.on('renewalFailed', (_error, attempt) => failures.push(attempt));
    await r.renewNow();
    assert.equal(r.current, first, 'the current SVID stays in use');
    while (failures.length < 3) await once(r, 'renewalFailed');
    assert.deepEqual(failures.slice(0, 3), [1, 2, 3]);
    assert.equal(r.current, first);
    state.up = true;
    const [next] = (await once(r, 'rotated')) as [typeof first];
    assert.notEqual(next.leaf.serialNumber, first.leaf.serialNumber);
  });

  it('backs off exponentially up to the maximum', async () => {
    const { sign, state } = signer(60_000);
    const r = rotator({ id: WEB, sign, minBackoffMs: 100, maxBackoffMs: 400, random: () => 1 });
    await r.start();
    state.up = false;
    const delays: number[] = [];
    r.on('renewalFailed', (_error, _attempt, retryInMs) => delays.push(retryInMs));
    await r.renewNow();
    while (delays.length < 4) await once(r, 'renewalFailed');
    r.stop();
    assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 400]);
  });

  it('fails start() when no SVID can be had', async () => {
    const { sign, state } = signer(60_000);
    state.up = false;
    const r = rotator({ id: WEB, sign });
    await assert.rejects(r.start(), /ECONNREFUSED/);
    r.stop();
  });

  it('refuses a certificate for another identity', async () => {
    const other = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/other');
    const r = rotator({
      id: WEB,
      sign: async (csrPem) => {
        void csrPem;
        const { createKeyAndCsr } = await import('../../src/identity/workload-key.js');
        const issued = await ca.signCsr((await createKeyAndCsr(other)).csrPem, { kind: 'authenticated', id: other });
        return { chainPem: issued.chainPem, bundle: issued.bundle };
      },
    });
    await assert.rejects(r.start());
    r.stop();
  });
});
