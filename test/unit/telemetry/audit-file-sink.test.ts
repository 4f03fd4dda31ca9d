import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileSink, type ConfigAuditRecord } from '../../../src/telemetry/audit/index.js';

function configRecord(n: number): ConfigAuditRecord {
  return { kind: 'config', time: '2025-01-01T00:00:00.000Z', event: 'changed', version: String(n).padStart(4, '0'), actor: 'cli:ops' };
}

async function versionsIn(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as ConfigAuditRecord).version);
}

void describe('audit file sink', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-audit-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  void it('writes JSON lines to a 0600 file in a 0700 directory', async () => {
    const path = join(dir, 'new', 'audit.log');
    const sink = new FileSink({ path });
    sink.write(configRecord(1));
    sink.write(configRecord(2));
    await sink.close();
    assert.deepEqual(await versionsIn(path), ['0001', '0002']);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'new'))).mode & 0o777, 0o700);
    assert.deepEqual(sink.stats(), { buffered: 0, delivered: 2, dropped: 0, failed: 0 });
  });

  void it('tightens an existing file to 0600 and appends to it', async () => {
    const path = join(dir, 'existing.log');
    await writeFile(path, `${JSON.stringify(configRecord(0))}\n`);
    await chmod(path, 0o644);
    const sink = new FileSink({ path });
    sink.write(configRecord(1));
    await sink.close();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await versionsIn(path), ['0000', '0001']);
  });

  void it('rotates by size and keeps the newest N rotated files', async () => {
    const path = join(dir, 'rot', 'audit.log');
    const lineBytes = Buffer.byteLength(`${JSON.stringify(configRecord(1))}\n`);
    // Three records per file; 20 records make 7 files, of which the live one and 2 rotated stay.
    const sink = new FileSink({ path, maxBytes: lineBytes * 3, keep: 2, maxBatch: 4 });
    for (let n = 1; n <= 20; n++) sink.write(configRecord(n));
    await sink.close();
    assert.deepEqual((await readdir(join(dir, 'rot'))).sort(), ['audit.log', 'audit.log.1', 'audit.log.2']);
    assert.deepEqual(await versionsIn(path), ['0019', '0020']);
    assert.deepEqual(await versionsIn(`${path}.1`), ['0016', '0017', '0018']);
    assert.deepEqual(await versionsIn(`${path}.2`), ['0013', '0014', '0015']);
    for (const f of ['audit.log', 'audit.log.1', 'audit.log.2']) {
      const s = await stat(join(dir, 'rot', f));
      assert.ok(s.size <= lineBytes * 3, `${f} is within maxBytes`);
      assert.equal(s.mode & 0o777, 0o600, `${f} mode`);
    }
  });

  void it('keep 0 starts the file over instead of keeping rotated copies', async () => {
    const path = join(dir, 'zero', 'audit.log');
    const lineBytes = Buffer.byteLength(`${JSON.stringify(configRecord(1))}\n`);
    const sink = new FileSink({ path, maxBytes: lineBytes * 2, keep: 0 });
    for (let n = 1; n <= 5; n++) sink.write(configRecord(n));
    await sink.close();
    assert.deepEqual(await readdir(join(dir, 'zero')), ['audit.log']);
    assert.deepEqual(await versionsIn(path), ['0005']);
  });

  void it('continues rotation from the size of a file it did not create', async () => {
    const path = join(dir, 'resume.log');
    const lineBytes = Buffer.byteLength(`${JSON.stringify(configRecord(1))}\n`);
    await writeFile(path, `${JSON.stringify(configRecord(0))}\n`, { mode: 0o600 });
    const sink = new FileSink({ path, maxBytes: lineBytes * 2, keep: 1 });
    for (let n = 1; n <= 2; n++) sink.write(configRecord(n));
    await sink.close();
    assert.deepEqual(await versionsIn(`${path}.1`), ['0000', '0001']);
    assert.deepEqual(await versionsIn(path), ['0002']);
  });
});
