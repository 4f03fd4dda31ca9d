import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConfigState } from '../../src/controlplane/config-store.js';
import { CREATION_STAMPS_FILE } from '../../src/controlplane/creation-stamps.js';
import { FileConfigStore } from '../../src/controlplane/file-store.js';
import { captureLogger, until } from '../helpers/mesh.js';

const entry = (name: string, address = '10.0.0.1', extraMeta = ''): string =>
  `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: ${name}\n  namespace: shop\n${extraMeta}spec:\n  address: ${address}\n`;

describe('file config store', () => {
  let dir: string;
  let configDir: string;
  let stateDir: string;
  const logs: Array<Record<string, unknown>> = [];
  let store: FileConfigStore;
  const changes: ConfigState[] = [];

  const open = async (): Promise<FileConfigStore> => {
    const s = new FileConfigStore({ dir: configDir, stateDir, logger: captureLogger(logs), debounceMs: 50, rescanIntervalMs: 60_000 });
    s.onChange((state) => changes.push(state));
    await s.start();
    return s;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-store-'));
    configDir = join(dir, 'config');
    stateDir = join(dir, 'state');
    mkdirSync(join(configDir, 'team'), { recursive: true });
    mkdirSync(stateDir);
    writeFileSync(join(configDir, 'a.yaml'), entry('a') + '---\n' + entry('old', '10.0.0.9', '  creationTimestamp: "2020-01-01T00:00:00Z"\n'));
    store = await open();
  });
  after(async () => {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the directory and stamps first-seen creation timestamps, persisted across restarts', async () => {
    const first = store.current();
    assert.ok(first);
    const stamp = first.config.workloadEntries.find((w) => w.metadata.name === 'a')?.metadata.creationTimestamp;
    assert.ok(stamp && !Number.isNaN(Date.parse(stamp)));
    assert.equal(first.config.workloadEntries.find((w) => w.metadata.name === 'old')?.metadata.creationTimestamp, '2020-01-01T00:00:00Z');
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(stateDir, CREATION_STAMPS_FILE), 'utf8')) as object), ['WorkloadEntry shop/a']);

    await store.stop();
    await new Promise((resolve) => setTimeout(resolve, 20));
    store = await open();
    assert.equal(store.current()?.config.workloadEntries.find((w) => w.metadata.name === 'a')?.metadata.creationTimestamp, stamp);
    assert.equal(store.current()?.version, first.version);
  });

  it('coalesces a burst of writes, including in subdirectories, into one reload', async () => {
    changes.length = 0;
    for (let i = 2; i <= 5; i++) writeFileSync(join(configDir, 'team', 'b.yaml'), entry('b', `10.0.0.${i}`));
    await until(() => changes.length > 0, 5_000, 'the reload');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(changes.length, 1);
    assert.equal(changes[0]?.config.workloadEntries.find((w) => w.metadata.name === 'b')?.spec.address, '10.0.0.5');
  });

  it('sees a file replaced by rename (editors, sed -i) through the watcher, not only the rescan', async () => {
    // The rescan runs every 60 s in this test: only the watchers can report the change in time.
    let round = 0;
    // Twice per file: a watcher on the file itself loses it after the first replacement.
    for (const target of [join(configDir, 'a.yaml'), join(configDir, 'a.yaml'), join(configDir, 'team', 'b.yaml'), join(configDir, 'team', 'b.yaml')]) {
      changes.length = 0;
      round += 1;
      const text = readFileSync(target, 'utf8').replace(/address: [\d.]+/, `address: 10.1.${round}.1`);
      writeFileSync(`${target}.swp`, text);
      renameSync(`${target}.swp`, target);
      await until(() => changes.length > 0, 10_000, `a reload after replacing ${target}`);
    }
  });

  it('refuses an invalid change atomically, keeps the last good set and reports file and line', async () => {
    const live = store.current()?.version;
    changes.length = 0;
    // One valid and one invalid document in the same change: neither goes live.
    writeFileSync(join(configDir, 'c.yaml'), entry('c') + '---\n' + entry('d').replace('  address: 10.0.0.1\n', '  address: 10.0.0.1\n  port: 80\n'));
    await until(() => store.errors().length > 0, 5_000, 'the refusal');
    const [error] = store.errors();
    assert.equal(error?.file, join(configDir, 'c.yaml'));
    assert.equal(error?.line, 16);
    assert.equal(error?.resource, 'WorkloadEntry shop/d');
    assert.equal(store.current()?.version, live);
    assert.equal(store.current()?.config.workloadEntries.some((w) => w.metadata.name === 'c'), false);
    assert.deepEqual(changes, []);
    const status = store.status();
    assert.ok(status.refusedVersion && status.refusedVersion !== live);
    assert.ok(logs.some((l) => l['event'] === 'config.refused' && l['liveVersion'] === live));

    rmSync(join(configDir, 'c.yaml'));
    await until(() => store.errors().length === 0, 5_000, 'recovery');
    assert.equal(store.status().refusedVersion, undefined);
  });

  it('leaves no directory watcher behind when stopped in the middle of a reload', async () => {
    // A reload lists the directories to watch after it loaded the files; a stop() that lands in
    // between must not be followed by new watchers (they would keep the process alive).
    const watchers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'FSEventWrap').length;
    const before = watchers();
    const other = mkdtempSync(join(tmpdir(), 'trellis-store-stop-'));
    try {
      mkdirSync(join(other, 'config', 'sub'), { recursive: true });
      mkdirSync(join(other, 'state'));
      for (let round = 0; round < 5; round++) {
        writeFileSync(join(other, 'config', 'a.yaml'), entry('a', `10.0.9.${round}`));
        const s = new FileConfigStore({ dir: join(other, 'config'), stateDir: join(other, 'state'), logger: captureLogger([]), debounceMs: 10, rescanIntervalMs: 60_000 });
        await s.start();
        let stopping: Promise<void> | undefined;
        // Stop right after the new config is announced, while the reload goes on to its watchers.
        s.onChange(() => setImmediate(() => (stopping = s.stop())));
        writeFileSync(join(other, 'config', 'a.yaml'), entry('a', `10.0.8.${round}`));
        await until(() => stopping !== undefined, 5_000, 'the change and the stop');
        await stopping;
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(watchers(), before, `round ${round}: watchers left after stop()`);
      }
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('forgets the stamp of a deleted resource', async () => {
    rmSync(join(configDir, 'team', 'b.yaml'));
    await until(() => store.current()?.config.workloadEntries.every((w) => w.metadata.name !== 'b') === true, 5_000, 'b removed');
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(stateDir, CREATION_STAMPS_FILE), 'utf8')) as object), ['WorkloadEntry shop/a']);
  });
});

describe('file config store on several directories', () => {
  let dir: string;
  let store: FileConfigStore;
  const logs: Array<Record<string, unknown>> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-store-dirs-'));
    for (const sub of ['base', 'overlay', 'state']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'base', 'a.yaml'), entry('a'));
    // The same directory twice, and the overlay: read once each, in order.
    store = new FileConfigStore({ dir: [join(dir, 'base'), join(dir, 'overlay'), join(dir, 'base')], stateDir: join(dir, 'state'), logger: captureLogger(logs), debounceMs: 50, rescanIntervalMs: 60_000 });
    await store.start();
  });
  after(async () => {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('merges the directories into one config set, names them all in its status, and watches each', async () => {
    assert.deepEqual(store.current()?.config.workloadEntries.map((w) => w.metadata.name), ['a']);
    assert.equal(store.status().source, `files:${join(dir, 'base')},${join(dir, 'overlay')}`);
    writeFileSync(join(dir, 'overlay', 'b.yaml'), entry('b', '10.0.0.2'));
    await until(() => store.current()?.config.workloadEntries.length === 2, 5_000, 'b from the overlay');
    assert.deepEqual(store.current()?.config.workloadEntries.map((w) => w.metadata.name).sort(), ['a', 'b']);
  });

  it('refuses a resource defined in two directories and keeps the last good set', async () => {
    const live = store.current()?.version;
    writeFileSync(join(dir, 'overlay', 'again.yaml'), entry('a', '10.0.0.3'));
    await until(() => store.status().refusedVersion !== undefined, 5_000, 'the duplicate refused');
    assert.equal(store.current()?.version, live);
    assert.match(store.errors().map((error) => `${error.file}: ${error.message}`).join('\n'), /again\.yaml: .*WorkloadEntry shop\/a/);
    rmSync(join(dir, 'overlay', 'again.yaml'));
    await until(() => store.status().refusedVersion === undefined, 5_000, 'the refusal cleared');
    assert.equal(store.current()?.version, live);
  });

  it('refuses to start when one of the directories is missing', async () => {
    const missing = new FileConfigStore({ dir: [join(dir, 'base'), join(dir, 'nope')], stateDir: join(dir, 'state'), logger: captureLogger(logs) });
    await assert.rejects(missing.start(), /config directory .*nope does not exist/);
    await missing.stop();
  });
});
