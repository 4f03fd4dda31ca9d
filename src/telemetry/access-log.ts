/**
 * Per-request / per-connection access log in the shape of Istio's JSON access log (Envoy
 * command operators as snake_case keys: `start_time`, `response_flags`, `upstream_host`, …),
 * plus the peers' SPIFFE IDs and the trace id. The writer is off the hot path: lines go to a
 * bounded queue and are written on later ticks; when the destination cannot keep up, lines are
 * dropped and counted instead of slowing requests down.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { BatchingQueue, type QueueStats } from './batching-queue.js';
import { responseFlagsString } from './istio-labels.js';
import { writeWithBackpressure } from './stream-write.js';

/** What the proxy knows when a request or connection ends. */
export interface AccessLogEntry {
  readonly startTime: Date;
  readonly durationMs: number;
  /** `HTTP/1.1`, `HTTP/2`, or undefined for TCP. */
  readonly protocol?: string;
  readonly method?: string;
  /** Path as received, with query (Envoy's `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%`). */
  readonly path?: string;
  readonly authority?: string;
  readonly responseCode?: number;
  readonly responseFlags?: readonly string[];
  /** Why the proxy answered as it did, e.g. `rbac_access_denied_matched_policy[ns/name]`. */
  readonly responseCodeDetails?: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  /** Time the upstream took, from request sent to first response byte. */
  readonly upstreamServiceTimeMs?: number;
  readonly upstreamHost?: string;
  readonly upstreamCluster?: string;
  readonly downstreamRemoteAddress?: string;
  readonly downstreamLocalAddress?: string;
  readonly requestedServerName?: string;
  readonly routeName?: string;
  readonly sourcePrincipal?: string;
  readonly destinationPrincipal?: string;
  readonly requestId?: string;
  readonly traceId?: string;
  readonly userAgent?: string;
  readonly xForwardedFor?: string;
}

/** One JSON access-log line; absent values are null, as in Envoy's JSON format. */
export interface AccessLogRecord {
  readonly start_time: string;
  readonly method: string | null;
  readonly path: string | null;
  readonly protocol: string | null;
  readonly response_code: number;
  readonly response_flags: string;
  readonly response_code_details: string | null;
  readonly bytes_received: number;
  readonly bytes_sent: number;
  readonly duration: number;
  readonly upstream_service_time: number | null;
  readonly upstream_host: string | null;
  readonly upstream_cluster: string | null;
  readonly downstream_remote_address: string | null;
  readonly downstream_local_address: string | null;
  readonly requested_server_name: string | null;
  readonly route_name: string | null;
  readonly source_principal: string | null;
  readonly destination_principal: string | null;
  readonly authority: string | null;
  readonly user_agent: string | null;
  readonly x_forwarded_for: string | null;
  readonly request_id: string | null;
  readonly trace_id: string | null;
}

export function accessLogRecord(entry: AccessLogEntry): AccessLogRecord {
  return {
    start_time: entry.startTime.toISOString(),
    method: entry.method ?? null,
    path: entry.path ?? null,
    protocol: entry.protocol ?? null,
    // Envoy logs 0 when no response was sent (and always for TCP).
    response_code: entry.responseCode ?? 0,
    response_flags: responseFlagsString(entry.responseFlags),
    response_code_details: entry.responseCodeDetails ?? null,
    bytes_received: entry.bytesReceived,
    bytes_sent: entry.bytesSent,
    duration: Math.round(entry.durationMs),
    upstream_service_time: entry.upstreamServiceTimeMs === undefined ? null : Math.round(entry.upstreamServiceTimeMs),
    upstream_host: entry.upstreamHost ?? null,
    upstream_cluster: entry.upstreamCluster ?? null,
    downstream_remote_address: entry.downstreamRemoteAddress ?? null,
    downstream_local_address: entry.downstreamLocalAddress ?? null,
    requested_server_name: entry.requestedServerName ?? null,
    route_name: entry.routeName ?? null,
    source_principal: entry.sourcePrincipal ?? null,
    destination_principal: entry.destinationPrincipal ?? null,
    authority: entry.authority ?? null,
    user_agent: entry.userAgent ?? null,
    x_forwarded_for: entry.xForwardedFor ?? null,
    request_id: entry.requestId ?? null,
    trace_id: entry.traceId ?? null,
  };
}

export interface AccessLogWriterOptions {
  /** Lines held in memory at most (default 10 000). */
  readonly bufferSize?: number;
  /** Lines per write (default 256). */
  readonly maxBatch?: number;
  /** Closed by {@link AccessLogWriter.close} when true (files opened by {@link AccessLogWriter.toFile}). */
  readonly ownsStream?: boolean;
}

export class AccessLogWriter {
  private readonly queue: BatchingQueue<string>;

  constructor(
    private readonly stream: Writable,
    private readonly options: AccessLogWriterOptions = {},
  ) {
    // Write errors fail deliveries (counted); an unhandled 'error' event would crash the proxy.
    stream.on('error', () => {});
    this.queue = new BatchingQueue<string>({
      capacity: options.bufferSize ?? 10_000,
      maxBatch: options.maxBatch ?? 256,
      deliver: (lines) => writeWithBackpressure(this.stream, lines.join('')),
    });
  }

  /** Appends to `path` (created 0600, directory 0700). */
  static async toFile(path: string, options: Omit<AccessLogWriterOptions, 'ownsStream'> = {}): Promise<AccessLogWriter> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    return new AccessLogWriter(stream, { ...options, ownsStream: true });
  }

  /** Never blocks. Returns false when the line was dropped because the buffer is full. */
  log(entry: AccessLogEntry): boolean {
    return this.queue.push(`${JSON.stringify(accessLogRecord(entry))}\n`);
  }

  stats(): QueueStats {
    return this.queue.stats();
  }

  flush(): Promise<void> {
    return this.queue.flush();
  }

  async close(): Promise<void> {
    await this.queue.close();
    if (this.options.ownsStream === true && !this.stream.destroyed) {
      await new Promise<void>((resolve) => this.stream.end(() => resolve()));
    }
  }
}
