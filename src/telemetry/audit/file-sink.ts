/**
 * Audit records as JSON lines in a file readable only by its owner (0600, directory 0700),
 * rotated by size: `audit.log` → `audit.log.1` → … → `audit.log.<keep>`, the oldest deleted.
 */
import { chmod, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { serializeRecord, type AuditRecord } from './record.js';
import { QueuedSink, type QueuedSinkOptions } from './sink.js';

export interface FileSinkOptions extends QueuedSinkOptions {
  readonly path: string;
  /** Rotate before a write would take the file past this size (default 100 MiB). */
  readonly maxBytes?: number;
  /** Rotated files kept besides the live one (default 5; 0 keeps none). */
  readonly keep?: number;
}

export class FileSink extends QueuedSink {
  private handle: FileHandle | undefined;
  private size = 0;
  private readonly path: string;
  private readonly maxBytes: number;
  private readonly keep: number;

  constructor(options: FileSinkOptions) {
    super(options);
    this.path = options.path;
    this.maxBytes = options.maxBytes ?? 100 * 1024 * 1024;
    this.keep = options.keep ?? 5;
    if (!(this.maxBytes > 0) || !Number.isInteger(this.keep) || this.keep < 0) throw new RangeError('maxBytes must be positive and keep a whole number ≥ 0');
  }

  protected async deliver(batch: readonly AuditRecord[]): Promise<void> {
    let chunk = '';
    let chunkBytes = 0;
    for (const record of batch) {
      const line = `${serializeRecord(record)}\n`;
      const bytes = Buffer.byteLength(line);
      const handle = await this.open();
      // A record larger than maxBytes still gets a file of its own rather than being lost.
      if (this.size + chunkBytes > 0 && this.size + chunkBytes + bytes > this.maxBytes) {
        await this.append(handle, chunk);
        chunk = '';
        chunkBytes = 0;
        await this.rotate();
      }
      chunk += line;
      chunkBytes += bytes;
    }
    if (chunk !== '') await this.append(await this.open(), chunk);
  }

  protected async release(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  private async append(handle: FileHandle, text: string): Promise<void> {
    if (text === '') return;
    await handle.appendFile(text);
    this.size += Buffer.byteLength(text);
  }

  private async open(): Promise<FileHandle> {
    if (this.handle !== undefined) return this.handle;
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const handle = await open(this.path, 'a', 0o600);
    // The mode given to open() applies only to new files; an existing one is tightened too.
    await chmod(this.path, 0o600);
    this.size = (await handle.stat()).size;
    this.handle = handle;
    return handle;
  }

  private async rotate(): Promise<void> {
    await this.release();
    await unlinkIfPresent(this.keep === 0 ? this.path : `${this.path}.${this.keep}`);
    for (let i = this.keep - 1; i >= 1; i--) await renameIfPresent(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    if (this.keep > 0) await renameIfPresent(this.path, `${this.path}.1`);
    this.size = 0;
  }
}

function isMissing(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOENT';
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}
