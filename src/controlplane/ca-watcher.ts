/**
 * Keeps the control plane's view of the CA current. The CA directory is shared with the CLI
 * (`trellis ca revoke|rotate --dir <state>/ca`), so changes can come from another process:
 * fs.watch reacts at once, a short poll of the files' mtimes is the safety net, and a periodic
 * `tick()` applies due rotation steps. Any change of the bundle or the revocations is handed
 * to `onChange` (the discovery server pushes it to every proxy).
 */
import { type FSWatcher, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../api/errors.js';
import { CA_FILES } from '../identity/ca-state.js';
import type { MeshCA } from '../identity/ca.js';
import type { TrustState } from './peer-auth.js';

export interface CaWatcherOptions {
  ca: MeshCA;
  logger: Logger;
  onChange: (trust: TrustState) => void;
  pollIntervalMs?: number;
  tickIntervalMs?: number;
}

export class CaWatcher {
  private readonly options: Required<CaWatcherOptions>;
  private trust: TrustState | undefined;
  private fingerprint = '';
  private filesStamp = '';
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(options: CaWatcherOptions) {
    this.options = { pollIntervalMs: 500, tickIntervalMs: 30_000, ...options };
  }

  get current(): TrustState {
    if (!this.trust) throw new Error('CaWatcher: start() first');
    return this.trust;
  }

  async start(): Promise<TrustState> {
    await this.load();
    const dir = this.options.ca.dir;
    try {
      // Only the files trust comes from: reading the CA takes its lock (.lock), which would
      // otherwise wake the watcher again and again.
      this.watcher = watch(dir, (_event, file) => {
        if (file === null || file.startsWith(CA_FILES.revocations) || file.startsWith(CA_FILES.state)) this.schedule();
      });
      this.watcher.on('error', (err) => this.options.logger.warn({ event: 'ca.watch-error', err: errorMessage(err) }, 'CA directory watcher failed; relying on polling'));
    } catch (err) {
      this.options.logger.warn({ event: 'ca.watch-error', err: errorMessage(err) }, 'cannot watch the CA directory; relying on polling');
    }
    this.filesStamp = this.stampFiles();
    this.poll = setInterval(() => {
      const stamp = this.stampFiles();
      if (stamp !== this.filesStamp) {
        this.filesStamp = stamp;
        void this.refresh();
      }
    }, this.options.pollIntervalMs);
    this.poll.unref();
    this.tick = setInterval(() => {
      this.options.ca
        .tick()
        .then(() => this.refresh())
        .catch((err: unknown) => this.options.logger.error({ event: 'ca.tick-failed', err: errorMessage(err) }, 'CA maintenance failed'));
    }, this.options.tickIntervalMs);
    this.tick.unref();
    return this.current;
  }

  stop(): Promise<void> {
    this.watcher?.close();
    for (const timer of [this.poll, this.tick]) if (timer) clearInterval(timer);
    if (this.debounce) clearTimeout(this.debounce);
    return this.running ?? Promise.resolve();
  }

  /** Re-reads bundle and revocations; calls onChange if either changed. */
  refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          if (await this.load()) this.options.onChange(this.current);
        } catch (err) {
          this.options.logger.error({ event: 'ca.read-failed', err: errorMessage(err) }, 'reading the CA failed; the previous bundle and revocations stay in use');
        }
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.refresh();
    }, 20);
    this.debounce.unref();
  }

  /** Loads the current trust; true when it differs from what was loaded before. */
  private async load(): Promise<boolean> {
    const [bundle, revocations] = await Promise.all([this.options.ca.bundle(), this.options.ca.revocations()]);
    const fingerprint = JSON.stringify([bundle.toSpiffeJson(), revocations.toJson()]);
    if (fingerprint === this.fingerprint) return false;
    const first = this.trust === undefined;
    this.fingerprint = fingerprint;
    this.trust = { bundle, revocations };
    if (!first) {
      this.options.logger.info({ event: 'ca.trust-changed', bundleSequence: bundle.sequence, roots: bundle.roots.length, revocationSequence: revocations.sequence, revocations: revocations.size }, 'trust bundle or revocations changed');
    }
    return true;
  }

  private stampFiles(): string {
    return [CA_FILES.revocations, CA_FILES.state]
      .map((name) => {
        try {
          const info = statSync(join(this.options.ca.dir, name));
          return `${info.mtimeMs}:${info.size}`;
        } catch {
          return '-';
        }
      })
      .join('|');
  }
}
