/**
 * A minimal OTLP/HTTP traces receiver for tests: a node http server on 127.0.0.1:0 that takes
 * `POST /v1/traces`. JSON requests (OTLP/JSON: hex ids, attributes as AnyValue) are decoded into
 * flat span records; protobuf requests are kept raw (tests look for the id bytes in them). It can
 * also be told to fail, to test what a proxy does when its collector is down.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type AttributeValue = string | number | boolean;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 2 SERVER, 3 CLIENT. */
  kind: number;
  /** The resource's service.name. */
  service: string;
  attributes: Record<string, AttributeValue>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  traceState: string;
}

interface OtlpAnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}
interface OtlpJsonRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: Array<{
      spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpKeyValue[]; status?: { code?: number }; traceState?: string }>;
    }>;
  }>;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Raw bodies of protobuf requests, with their content type. */
  readonly protobufBodies: Buffer[] = [];
  requests = 0;
  /** When set, every request is answered with this status (e.g. 503). */
  failWith: number | undefined;
  private readonly server: http.Server;

  private constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.requests++;
        if (this.failWith !== undefined) {
          res.writeHead(this.failWith, { 'content-type': 'text/plain' });
          res.end('failing on purpose');
          return;
        }
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404);
          res.end();
          return;
        }
        const body = Buffer.concat(chunks);
        const type = req.headers['content-type'] ?? '';
        if (type.startsWith('application/json')) {
          this.decodeJson(body);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{}');
          return;
        }
        this.protobufBodies.push(body);
        // An empty ExportTraceServiceResponse.
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end();
      });
    });
  }

  static async start(): Promise<OtlpReceiver> {
    const receiver = new OtlpReceiver();
    receiver.server.listen(0, '127.0.0.1');
    await once(receiver.server, 'listening');
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/traces`;
  }

  spansOf(traceId: string): ReceivedSpan[] {
    return this.spans.filter((span) => span.traceId === traceId);
  }

  /** Polls until `check` holds for the spans received so far, or throws at the deadline. */
  async waitFor(check: (spans: ReceivedSpan[]) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.spans)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${this.spans.length} span(s): ${this.spans.map((span) => `${span.service} ${span.name}`).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private decodeJson(body: Buffer): void {
    const request = JSON.parse(body.toString('utf8')) as OtlpJsonRequest;
    for (const resourceSpans of request.resourceSpans ?? []) {
      const resource = attributesOf(resourceSpans.resource?.attributes);
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? '',
            name: span.name,
            kind: span.kind,
            service: String(resource['service.name'] ?? ''),
            attributes: attributesOf(span.attributes),
            statusCode: span.status?.code ?? 0,
            traceState: span.traceState ?? '',
          });
        }
      }
    }
  }
}

function attributesOf(list: OtlpKeyValue[] | undefined): Record<string, AttributeValue> {
  const attributes: Record<string, AttributeValue> = {};
  for (const { key, value } of list ?? []) {
    if (value.stringValue !== undefined) attributes[key] = value.stringValue;
    else if (value.intValue !== undefined) attributes[key] = Number(value.intValue);
    else if (value.doubleValue !== undefined) attributes[key] = value.doubleValue;
    else if (value.boolValue !== undefined) attributes[key] = value.boolValue;
  }
  return attributes;
}
