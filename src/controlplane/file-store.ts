/**
 * The embedded config store: one or more directories of YAML files (recursive, `.yaml`/`.yml`,
 * dot-files skipped), read in the order given and merged into one config set — a resource
 * defined in two of them is the same "defined twice" error as within one directory. Any change
 * reloads and validates the whole set: either every
 * document is valid and the new set goes live, or the change is refused, its errors are kept
 * for `trellis status` and logged, and the last good set stays live.
 *
 * Change detection: fs.watch (recursive) debounced, so an editor's burst of writes is one
 * reload; plus a periodic rescan, because watchers miss events on some file systems and when
 * the directory is replaced.
 */
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Logger } from 'pino';
import { type ConfigText, configResourceCount, parseConfigTexts } from '../api/config-set.js';
import { type ConfigDiagnostic, formatDiagnostic } from '../api/diagnostics.js';
import { errorMessage, TrellisError } from '../api/errors.js';
import type { ConfigRefusal, ConfigState, ConfigStore, ConfigStoreStatus, ConfigValidator } from './config-store.js';
import { CreationStamps } from './creation-stamps.js';

export interface FileConfigStoreOptions {
  /** One directory, or several merged into one config set (each watched). */
  dir: string | readonly string[];
  /** Where first-seen creation timestamps are kept. */
  stateDir: string;
  logger: Logger;
  validate?: ConfigValidator;
  debounceMs?: number;
  rescanIntervalMs?: number;
  now?: () => Date;
  /** Every changed set of sources, accepted or refused, with the resources that parsed (for metrics). */
  onValidated?: (outcome: ConfigValidation) => void;
}

export interface ConfigValidation {
  readonly accepted: boolean;
  readonly version: string;
  readonly resources: readonly { readonly apiVersion: string; readonly kind: string; readonly metadata: { readonly name: string; readonly namespace?: string } }[];
  readonly errors: readonly ConfigDiagnostic[];
}

const YAML_EXTENSIONS = new Set(['.yaml', '.yml']);

export class FileConfigStore implements ConfigStore {
  private readonly options: Required<Omit<FileConfigStoreOptions, 'validate' | 'onValidated' | 'dir'>> & Pick<FileConfigStoreOptions, 'validate' | 'onValidated'>;
  /** The config directories, in order, without repeats. */
  private readonly dirs: readonly string[];
  private readonly stamps: CreationStamps;
  private readonly listeners = new Set<(state: ConfigState) => void>();
  private readonly refusedListeners = new Set<(refusal: ConfigRefusal) => void>();
  private state: ConfigState | undefined;
  private lastErrors: readonly ConfigDiagnostic[] = [];
  private lastWarnings: readonly ConfigDiagnostic[] = [];
  private lastSourcesKey: string | undefined;
  private lastChangeAt: Date | undefined;
  private refusedVersion: string | undefined;
  /**
   * One non-recursive watcher per directory. (Node's recursive watcher on Linux stops reporting
   * a file once an editor or `sed -i` replaced it by rename; a directory watcher sees renames.)
   */
  private readonly watchers = new Map<string, FSWatcher>();
  private debounce: NodeJS.Timeout | undefined;
  private rescan: NodeJS.Timeout | undefined;
  /** Reloads run one at a time; a request during a reload runs once more afterwards. */
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(options: FileConfigStoreOptions) {
    const { dir, ...rest } = options;
    this.options = { debounceMs: 100, rescanIntervalMs: 2_000, now: () => new Date(), ...rest };
    this.dirs = [...new Set(typeof dir === 'string' ? [dir] : dir)];
    if (this.dirs.length === 0) throw new TrellisError('TRELLIS_CONFIG_DIR', 'no config directory given: pass at least one --config DIR', { exitCode: 2 });
    this.stamps = new CreationStamps(options.stateDir);
  }

  async start(): Promise<void> {
    for (const dir of this.dirs) {
      const info = await stat(dir).catch(() => undefined);
      if (!info?.isDirectory()) {
        throw new TrellisError('TRELLIS_CONFIG_DIR', `config directory ${dir} does not exist or is not a directory: create it, or point --config at your YAML files`, { exitCode: 2 });
      }
    }
    await this.reload();
    await this.syncWatchers();
    if (this.stopped) return;
    this.rescan = setInterval(() => void this.reload(), this.options.rescanIntervalMs);
    this.rescan.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.rescan) clearInterval(this.rescan);
    // A reload in flight may still be opening watchers: close them once it is done.
    await this.running;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  current(): ConfigState | undefined {
    return this.state;
  }

  onChange(listener: (state: ConfigState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onRefused(listener: (refusal: ConfigRefusal) => void): () => void {
    this.refusedListeners.add(listener);
    return () => this.refusedListeners.delete(listener);
  }

  errors(): readonly ConfigDiagnostic[] {
    return this.lastErrors;
  }

  status(): ConfigStoreStatus {
    const config = this.state?.config;
    const resources = config ? configResourceCount(config) : 0;
    return {
      source: `files:${this.dirs.join(',')}`,
      ...(this.state ? { version: this.state.version, acceptedAt: this.state.acceptedAt.toISOString() } : {}),
      resources,
      ...(this.lastChangeAt ? { lastChangeAt: this.lastChangeAt.toISOString() } : {}),
      ...(this.refusedVersion ? { refusedVersion: this.refusedVersion } : {}),
      errors: this.lastErrors,
      warnings: this.lastWarnings,
    };
  }

  /** Reloads now (also called by the watcher and the rescan). */
  reload(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.load();
          await this.syncWatchers();
        } catch (err) {
          this.options.logger.error({ event: 'config.load-failed', err: errorMessage(err) }, 'reading the config directory failed; the last good config stays live');
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private report(outcome: ConfigValidation): void {
    try {
      this.options.onValidated?.(outcome);
    } catch (err) {
      this.options.logger.error({ event: 'config.listener-failed', err: errorMessage(err) }, 'a config validation listener failed');
    }
  }

  /** Watches every directory under the config directories; follows directories added or removed. */
  private async syncWatchers(): Promise<void> {
    if (this.stopped) return;
    const dirs = new Set<string>();
    for (const root of this.dirs) for (const dir of await listDirectories(root)) dirs.add(dir);
    // stop() may have run while the directories were listed: a watcher made now would never close.
    if (this.stopped) return;
    for (const [dir, watcher] of this.watchers) {
      if (dirs.has(dir)) continue;
      watcher.close();
      this.watchers.delete(dir);
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, () => this.schedule());
        watcher.on('error', (err) => this.options.logger.warn({ event: 'config.watch-error', dir, err: errorMessage(err) }, 'config watcher failed; relying on the periodic rescan'));
        this.watchers.set(dir, watcher);
      } catch (err) {
        this.options.logger.warn({ event: 'config.watch-error', dir, err: errorMessage(err) }, 'cannot watch a config directory; relying on the periodic rescan');
      }
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.reload();
    }, this.options.debounceMs);
    this.debounce.unref();
  }

  private async load(): Promise<void> {
    const problems: ConfigDiagnostic[] = [];
    const texts = await readTexts(this.dirs, problems);
    const key = sourcesKey(texts, problems);
    if (key === this.lastSourcesKey) return;
    this.lastSourcesKey = key;
    const now = this.options.now();
    this.lastChangeAt = now;

    const result = parseConfigTexts(texts);
    const errors = [...problems, ...result.errors];
    if (result.config && errors.length === 0 && this.options.validate) errors.push(...this.options.validate(result.config));
    this.report({ accepted: !!result.config && errors.length === 0, version: key, resources: result.resources, errors });
    if (!result.config || errors.length > 0) {
      this.lastErrors = errors;
      this.lastWarnings = result.warnings;
      this.refusedVersion = key;
      this.options.logger.error(
        { event: 'config.refused', version: key, liveVersion: this.state?.version ?? null, errors: errors.map(formatDiagnostic) },
        `config change refused (${errors.length} error(s)); ${this.state ? `version ${this.state.version} stays live` : 'no config is live yet'}`,
      );
      for (const listener of this.refusedListeners) {
        try {
          listener({ version: key, ...(this.state ? { liveVersion: this.state.version } : {}), errors, at: now });
        } catch (err) {
          this.options.logger.error({ event: 'config.listener-failed', err: errorMessage(err) }, 'a config listener failed');
        }
      }
      return;
    }
    const config = this.stamps.apply(result.config, now);
    this.state = { config, version: key, acceptedAt: now, warnings: result.warnings };
    this.lastErrors = [];
    this.lastWarnings = result.warnings;
    this.refusedVersion = undefined;
    this.options.logger.info(
      { event: 'config.accepted', version: key, files: texts.length, workloads: config.workloadEntries.length, services: config.serviceEntries.length, warnings: result.warnings.map(formatDiagnostic) },
      `config version ${key} accepted`,
    );
    for (const listener of this.listeners) {
      try {
        listener(this.state);
      } catch (err) {
        this.options.logger.error({ event: 'config.listener-failed', err: errorMessage(err) }, 'a config listener failed');
      }
    }
  }
}

/**
 * Every YAML file under each of `dirs`, directory by directory, in path order within each; a file
 * reached twice (one directory inside another) is read once. Unreadable files become diagnostics.
 */
async function readTexts(dirs: readonly string[], problems: ConfigDiagnostic[]): Promise<ConfigText[]> {
  const texts: ConfigText[] = [];
  const seen = new Set<string>();
  const walk = async (path: string): Promise<void> => {
    const entries = await readdir(path, { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (entry.name.startsWith('.')) continue;
      const child = join(path, entry.name);
      if (entry.isDirectory()) {
        await walk(child);
      } else if (YAML_EXTENSIONS.has(extname(entry.name)) && !seen.has(child)) {
        seen.add(child);
        try {
          texts.push({ file: child, text: await readFile(child, 'utf8') });
        } catch (err) {
          // Deleted between readdir and read: the next event reloads again.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          problems.push({ severity: 'error', code: 'TRELLIS_CONFIG_FILE', file: child, line: 1, column: 1, message: `cannot read file: ${errorMessage(err)}` });
        }
      }
    }
  };
  for (const dir of dirs) await walk(dir);
  return texts;
}

function sourcesKey(texts: readonly ConfigText[], problems: readonly ConfigDiagnostic[]): string {
  const hash = createHash('sha256');
  for (const { file, text } of texts) hash.update(`${file}\u0000${text}\u0000`);
  for (const problem of problems) hash.update(`!${problem.file}\u0000${problem.message}\u0000`);
  return hash.digest('hex').slice(0, 16);
}

async function listDirectories(root: string): Promise<string[]> {
  const found = [root];
  for (let i = 0; i < found.length; i++) {
    const entries = await readdir(found[i] as string, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) if (entry.isDirectory() && !entry.name.startsWith('.')) found.push(join(found[i] as string, entry.name));
  }
  return found;
}
