/**
 * The proxy's tracer: Envoy/Istio-style spans for the requests a proxy handles, exported over
 * OTLP/HTTP (protobuf or JSON) with the OpenTelemetry SDK.
 *
 * - Each request gets one span: SERVER on the inbound side (Istio's reporter "destination"),
 *   CLIENT on the outbound side (reporter "source"). A valid incoming `traceparent` is joined,
 *   otherwise a trace starts here (ids from crypto, see trace-context.ts). The caller forwards the
 *   span's own `traceparent`, so the next hop's span is its child.
 * - Sampling is parent-based: a caller's sampled flag is followed, so a trace is recorded whole
 *   or not at all; a new trace is sampled at the configured percentage (Istio's `sampling`,
 *   default 1 %). An unsampled request still carries the context (flag 00) and costs no export.
 * - Export is off the hot path: ending a span only queues it (bounded: beyond `maxQueueSize` spans
 *   are dropped and counted); a batch processor sends batches every `scheduledDelayMs`. A failing
 *   collector is logged once (and once more when it recovers) and counted, never waited on.
 * - The resource is the workload: `service.name` is Istio's default tracing service name,
 *   `<canonical service>.<namespace>` (tracingServiceName APP_LABEL_AND_NAMESPACE).
 */
import { type Attributes, type Context, createTraceState, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace, TraceFlags, type Tracer } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type IdGenerator,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';
import { canonicalService } from './istio-labels.js';
import { responseAttributes } from './tracing-tags.js';
import { formatTraceParent, parseTraceParent, parseTraceState, RandomIds, sampledByRate, TRACEPARENT, TRACESTATE } from './trace-context.js';

export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface TracingOptions {
  /** OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces. */
  endpoint: string;
  /** Default http/protobuf (OTLP's default); http/json for collectors or tests that want JSON. */
  protocol?: OtlpProtocol;
  /** Percentage of new traces to record, 0–100 (Istio's `sampling`; its default is 1). */
  samplingPercent: number;
  /** Extra headers on export requests (e.g. an API key of a hosted collector). */
  headers?: Record<string, string>;
  /** Spans waiting for export at most; more are dropped and counted. Default 2048. */
  maxQueueSize?: number;
  /** Most spans in one export request. Default 512. */
  maxExportBatchSize?: number;
  /** How long a span waits for its batch at most. Default 1s. */
  scheduledDelayMs?: number;
  /** One export request's deadline, retries included. Default 10s. */
  exportTimeoutMs?: number;
  log: Logger;
  /** Replaces the OTLP exporter (tests). */
  exporter?: SpanExporter;
}

/** Who the proxy is, from its workload snapshot: the span resource and Istio's span tags. */
export interface TracedWorkload {
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  address: string;
  /** The workload's SPIFFE ID. */
  identity: string;
  trustDomain: string;
}

export type SpanRole = 'server' | 'client';

/** What a request's span needs from the request itself (a header list as the proxy carries it). */
export interface TracedRequest {
  headers: ReadonlyArray<readonly [string, string]>;
}

/** A request's span while it runs. */
export interface RequestSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  /** The `traceparent` to forward: this span as the parent. */
  readonly traceparent: string;
  /** The `tracestate` to forward (the incoming list when valid), if any. */
  readonly tracestate: string | undefined;
  /** True when attributes are recorded (sampled); building attributes can be skipped otherwise. */
  readonly recording: boolean;
  /** Ends the span once: the response's status (0 for none) and attributes learnt meanwhile. */
  end(status: number, attributes?: Attributes): void;
}

export interface TracingStats {
  /** Sampled spans ended (handed to the export queue or dropped). */
  readonly ended: number;
  readonly exported: number;
  /** Spans in export requests that failed (collector down, refused, timed out). */
  readonly failed: number;
  /** Spans dropped because the queue was full. */
  readonly dropped: number;
  /** Spans waiting in the queue or in an export request. */
  readonly pending: number;
}

const DEFAULTS = { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 1000, exportTimeoutMs: 10_000 };
const SHUTDOWN_TIMEOUT_MS = 5_000;

export class ProxyTracer {
  readonly samplingPercent: number;
  readonly endpoint: string;
  private readonly log: Logger;
  private readonly ids = new RandomIds();
  private readonly sampler: Sampler;
  private readonly queue: BoundedQueue;
  private readonly exporter: GuardedExporter;
  private readonly processor: BatchSpanProcessor;
  /** One provider per resource (the workload's service name rarely changes), all on one processor. */
  private readonly tracers = new Map<string, Tracer>();
  private current: { tracer: Tracer; attributes: Attributes; identity?: string } | undefined;
  private closed = false;

  constructor(options: TracingOptions) {
    if (!(options.samplingPercent >= 0 && options.samplingPercent <= 100)) throw new RangeError('samplingPercent must be within 0..100');
    this.samplingPercent = options.samplingPercent;
    this.endpoint = options.endpoint;
    this.log = options.log;
    const exportTimeoutMs = options.exportTimeoutMs ?? DEFAULTS.exportTimeoutMs;
    const maxQueueSize = options.maxQueueSize ?? DEFAULTS.maxQueueSize;
    const inner =
      options.exporter ??
      new (options.protocol === 'http/json' ? OtlpJsonExporter : OtlpProtoExporter)({
        url: options.endpoint,
        timeoutMillis: exportTimeoutMs,
        ...(options.headers ? { headers: options.headers } : {}),
      });
    this.queue = new BoundedQueue(maxQueueSize);
    this.exporter = new GuardedExporter(inner, this.queue, options.endpoint, options.log);
    this.processor = new BatchSpanProcessor(this.exporter, {
      maxQueueSize,
      maxExportBatchSize: Math.min(options.maxExportBatchSize ?? DEFAULTS.maxExportBatchSize, maxQueueSize),
      scheduledDelayMillis: options.scheduledDelayMs ?? DEFAULTS.scheduledDelayMs,
      exportTimeoutMillis: exportTimeoutMs,
    });
    this.sampler = new ParentBasedSampler({ root: new PercentSampler(options.samplingPercent) });
  }

  /** This proxy's workload, from its applied snapshot: the resource and tags of later spans. */
  setWorkload(workload: TracedWorkload): void {
    this.current = { tracer: this.tracer(workload), attributes: workloadAttributes(workload), identity: workload.identity };
  }

  /**
   * Starts the span of one request: joins the request's valid `traceparent` (its sampled flag
   * decides) or starts a trace (the sampling percentage decides).
   */
  startSpan(role: SpanRole, request: TracedRequest, name: string, attributes: Attributes = {}): RequestSpan {
    const incoming = parseTraceParent(header(request.headers, TRACEPARENT));
    // A tracestate without a valid traceparent is meaningless and dropped with it.
    const tracestate = incoming ? parseTraceState(headerValues(request.headers, TRACESTATE)) : undefined;
    const parent = incoming
      ? trace.setSpanContext(ROOT_CONTEXT, {
          traceId: incoming.traceId,
          spanId: incoming.parentId,
          traceFlags: incoming.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
          isRemote: true,
          ...(tracestate ? { traceState: createTraceState(tracestate) } : {}),
        })
      : ROOT_CONTEXT;
    const current = (this.current ??= { tracer: this.tracer(undefined), attributes: { component: 'proxy' } });
    // This proxy's own principal: the destination of a server span, the source of a client span.
    const own = current.identity === undefined ? {} : { [role === 'server' ? 'destination.principal' : 'source.principal']: current.identity };
    const span = current.tracer.startSpan(name, { kind: role === 'server' ? SpanKind.SERVER : SpanKind.CLIENT, attributes: { ...current.attributes, ...own, ...attributes } }, parent);
    return new OtelRequestSpan(span, tracestate);
  }

  stats(): TracingStats {
    const { exported, failed, inFlight } = this.exporter.counts();
    return { ended: this.queue.ended, exported, failed, dropped: this.queue.dropped, pending: this.queue.size + inFlight };
  }

  /** Sends what is queued now (tests, shutdown). */
  async flush(): Promise<void> {
    await withTimeout(this.processor.forceFlush(), SHUTDOWN_TIMEOUT_MS).catch(() => undefined);
  }

  /** Flushes what is queued (bounded by a deadline) and stops exporting. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await withTimeout(this.processor.shutdown(), SHUTDOWN_TIMEOUT_MS).catch((err: unknown) => {
      this.log.warn({ event: 'tracing.shutdown_incomplete', err: String(err), ...this.stats() }, 'spans still queued at shutdown were not all exported');
    });
  }

  private tracer(workload: TracedWorkload | undefined): Tracer {
    const serviceName = workload ? tracingServiceName(workload) : 'unknown';
    let tracer = this.tracers.get(serviceName);
    if (!tracer) {
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({
          'service.name': serviceName,
          ...(workload ? { 'service.namespace': workload.namespace, 'service.instance.id': `${workload.name}.${workload.namespace}` } : {}),
        }),
        sampler: this.sampler,
        idGenerator: this.idGenerator,
        spanProcessors: [this.queue.wrap(this.processor)],
      });
      // Not shut down with the provider: the shared processor is shut down once, in shutdown().
      tracer = provider.getTracer('trellis-proxy');
      this.tracers.set(serviceName, tracer);
    }
    return tracer;
  }

  private readonly idGenerator: IdGenerator = {
    generateTraceId: () => this.ids.traceId(),
    generateSpanId: () => this.ids.spanId(),
  };
}

/** Istio's span tags that describe the reporting proxy. */
function workloadAttributes(workload: TracedWorkload): Attributes {
  const canonical = canonicalService(workload.labels, workload.name);
  return {
    component: 'proxy',
    node_id: `sidecar~${workload.address}~${workload.name}.${workload.namespace}~${workload.namespace}.svc.cluster.local`,
    'istio.canonical_service': canonical.name ?? workload.name,
    'istio.canonical_revision': canonical.revision,
    'istio.namespace': workload.namespace,
    'istio.mesh_id': workload.trustDomain,
  };
}

/** Istio's default `tracingServiceName` (APP_LABEL_AND_NAMESPACE): `<canonical service>.<namespace>`. */
export function tracingServiceName(workload: Pick<TracedWorkload, 'name' | 'namespace' | 'labels'>): string {
  return `${canonicalService(workload.labels, workload.name).name ?? workload.name}.${workload.namespace}`;
}

class OtelRequestSpan implements RequestSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  readonly traceparent: string;
  readonly tracestate: string | undefined;
  private ended = false;

  constructor(
    private readonly span: Span,
    tracestate: string | undefined,
  ) {
    const context = span.spanContext();
    this.traceId = context.traceId;
    this.spanId = context.spanId;
    this.sampled = (context.traceFlags & TraceFlags.SAMPLED) !== 0;
    this.traceparent = formatTraceParent(this.traceId, this.spanId, this.sampled);
    this.tracestate = tracestate;
  }

  get recording(): boolean {
    return this.span.isRecording();
  }

  end(status: number, attributes?: Attributes): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.span.isRecording()) return;
    this.span.setAttributes({ ...responseAttributes(status, []), ...attributes });
    // OpenTelemetry's HTTP conventions: 5xx (or no response) is an error on both sides.
    if (status >= 500 || status === 0) this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
  }
}

/** A root sampler that records `percent` % of new traces, decided on the trace id. */
export class PercentSampler implements Sampler {
  constructor(private readonly percent: number) {}

  shouldSample(_context: Context, traceId: string): SamplingResult {
    return { decision: sampledByRate(traceId, this.percent) ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }

  toString(): string {
    return `PercentSampler{${this.percent}}`;
  }
}

/**
 * Bounds the spans between `end()` and their export request: the batch processor would drop
 * silently past its own queue size; here the drop is counted (and logged once per episode).
 */
class BoundedQueue {
  size = 0;
  ended = 0;
  dropped = 0;

  constructor(private readonly capacity: number) {}

  wrap(processor: SpanProcessor): SpanProcessor {
    return {
      onStart: (span, context) => processor.onStart(span, context),
      onEnd: (span: ReadableSpan) => {
        if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
        this.ended++;
        if (this.size >= this.capacity) {
          this.dropped++;
          return;
        }
        this.size++;
        processor.onEnd(span);
      },
      // The shared processor is flushed and shut down by ProxyTracer itself.
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
  }

  handedOff(count: number): void {
    this.size = Math.max(0, this.size - count);
  }
}

/** Counts export outcomes and logs a failing collector once, and once more when it is back. */
class GuardedExporter implements SpanExporter {
  private exported = 0;
  private failed = 0;
  private inFlight = 0;
  private failing = false;
  private lostWhileFailing = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly queue: BoundedQueue,
    private readonly endpoint: string,
    private readonly log: Logger,
  ) {}

  counts(): { exported: number; failed: number; inFlight: number } {
    return { exported: this.exported, failed: this.failed, inFlight: this.inFlight };
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const count = spans.length;
    this.queue.handedOff(count);
    this.inFlight += count;
    let settled = false;
    const finish = (result: ExportResult): void => {
      if (settled) return;
      settled = true;
      this.inFlight -= count;
      if (result.code === ExportResultCode.SUCCESS) {
        this.exported += count;
        if (this.failing) {
          this.failing = false;
          this.log.info({ event: 'tracing.export_recovered', endpoint: this.endpoint, lost: this.lostWhileFailing }, `trace export works again; ${this.lostWhileFailing} span(s) were lost meanwhile`);
          this.lostWhileFailing = 0;
        }
      } else {
        this.failed += count;
        this.lostWhileFailing += count;
        if (!this.failing) {
          this.failing = true;
          this.log.warn(
            { event: 'tracing.export_failed', endpoint: this.endpoint, err: result.error?.message ?? 'unknown error' },
            `cannot export spans to ${this.endpoint}: ${result.error?.message ?? 'unknown error'} (spans are dropped and counted until it works again; logged once)`,
          );
        }
      }
      done(result);
    };
    try {
      this.inner.export(spans, finish);
    } catch (err) {
      finish({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function header(headers: TracedRequest['headers'], name: string): string | undefined {
  for (const [key, value] of headers) if (key.length === name.length && key.toLowerCase() === name) return value;
  return undefined;
}

function headerValues(headers: TracedRequest['headers'], name: string): string[] {
  const values: string[] = [];
  for (const [key, value] of headers) if (key.length === name.length && key.toLowerCase() === name) values.push(value);
  return values;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
