/**
 * Small file helpers for state that must never be half-written or read while being changed:
 * atomic replace (write a temporary file, fsync, rename) and an advisory lock directory.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TrellisError } from '../api/errors.js';

/** Writes a file atomically. `mode` 0o600 for anything secret: it is set before any byte is written. */
export function writeFileAtomic(path: string, data: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(temp, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
}

export function readFileIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** A lock older than this is considered left behind by a crashed process. */
const STALE_LOCK_MS = 30_000;

/**
 * Runs `fn` while holding `<dir>/.lock` (a directory: mkdir is atomic). Waits up to `timeoutMs`
 * for another holder; breaks a lock that is older than STALE_LOCK_MS.
 */
export async function withDirectoryLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const lock = join(dir, '.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (isStale(lock)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new TrellisError('TRELLIS_LOCKED', `${dir} is locked by another trellis process (remove ${lock} if no such process runs)`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 30));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function isStale(lock: string): boolean {
  try {
    return Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS;
  } catch {
    return false;
  }
}
