/**
 * Audit records to an HTTP(S) endpoint, for SIEMs: each delivery POSTs a JSON array of records.
 * Network errors, 408, 429 and 5xx are retried with exponential backoff (Retry-After honored,
 * capped); other statuses fail the batch at once. The bounded queue in front counts what it had
 * to drop while the receiver was slow or away.
 */
import http from 'node:http';
import https from 'node:https';
import type { QueueStats } from '../batching-queue.js';
import { redactRecord, type AuditRecord } from './record.js';
import { QueuedSink, type QueuedSinkOptions } from './sink.js';

export interface WebhookSinkOptions extends QueuedSinkOptions {
  readonly url: string;
  /** Extra request headers, e.g. the SIEM's token. Never logged. */
  readonly headers?: Readonly<Record<string, string>>;
  /** For https: CA bundle, client certificate and key. */
  readonly tls?: Pick<https.RequestOptions, 'ca' | 'cert' | 'key' | 'servername' | 'rejectUnauthorized'>;
  /** Attempts per batch, the first included (default 5). */
  readonly maxAttempts?: number;
  /** First backoff (default 200 ms), doubled per retry up to `maxBackoffMs` (default 10 s), ±20 % jitter. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Per attempt (default 10 s). */
  readonly requestTimeoutMs?: number;
}

export interface WebhookStats extends QueueStats {
  readonly requests: number;
  readonly retries: number;
}

export class WebhookError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export class WebhookSink extends QueuedSink {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly options: WebhookSinkOptions;
  private requests = 0;
  private retries = 0;
  private readonly sleeping = new Set<NodeJS.Timeout>();

  constructor(options: WebhookSinkOptions) {
    super(options);
    this.options = options;
    this.url = new URL(options.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new Error(`the audit webhook URL must be http(s), got ${this.url.protocol}`);
    this.agent = this.url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...options.tls }) : new http.Agent({ keepAlive: true });
  }

  override stats(): WebhookStats {
    return { ...super.stats(), requests: this.requests, retries: this.retries };
  }

  protected async deliver(batch: readonly AuditRecord[]): Promise<void> {
    const body = JSON.stringify(batch.map((r) => redactRecord(r)));
    const maxAttempts = this.options.maxAttempts ?? 5;
    let backoff = this.options.initialBackoffMs ?? 200;
    const maxBackoff = this.options.maxBackoffMs ?? 10_000;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.post(body);
        return;
      } catch (err) {
        const retryable = !(err instanceof WebhookError) || err.retryable;
        if (!retryable || attempt >= maxAttempts) throw err;
        const hinted = err instanceof WebhookError ? err.retryAfterMs : undefined;
        const jittered = backoff * (0.8 + Math.random() * 0.4);
        await this.sleep(Math.min(maxBackoff, hinted ?? jittered));
        backoff = Math.min(maxBackoff, backoff * 2);
        this.retries++;
      }
    }
  }

  protected async release(): Promise<void> {
    for (const timer of this.sleeping) clearTimeout(timer);
    this.agent.destroy();
  }

  private post(body: string): Promise<void> {
    this.requests++;
    const client = this.url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { ...this.options.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          // The body is not needed; reading it frees the connection for keep-alive.
          res.resume();
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              resolve();
              return;
            }
            const retryable = status === 408 || status === 429 || status >= 500;
            reject(new WebhookError(`the audit webhook answered ${status}`, retryable, retryAfterMs(res.headers['retry-after'])));
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(this.options.requestTimeoutMs ?? 10_000, () => req.destroy(new Error('the audit webhook did not answer in time')));
      req.on('error', reject);
      req.end(body);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping.delete(timer);
        resolve();
      }, ms);
      this.sleeping.add(timer);
    });
  }
}

/** Retry-After in seconds (dates are rare from SIEMs and ignored). */
function retryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header.trim()) * 1000;
}
