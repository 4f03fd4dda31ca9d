/**
 * Responses the proxy makes itself (denials, routing failures). gRPC callers get a proper
 * trailers-only gRPC status instead of a bare HTTP status, as Envoy does.
 */
import type { HeaderList } from '../headers.js';
import { isGrpc, type L7Request, type L7Response } from './types.js';

/** HTTP status → gRPC status code for local replies (gRPC's documented mapping). */
const GRPC_STATUS: Record<number, number> = {
  400: 13,
  401: 16,
  403: 7,
  404: 12,
  429: 14,
  502: 14,
  503: 14,
  504: 14,
};

export function localReply(request: Pick<L7Request, 'headers'>, status: number, message: string, extraHeaders: HeaderList = []): L7Response {
  if (isGrpc(request)) {
    return {
      status: 200,
      headers: [
        ['content-type', 'application/grpc'],
        ['grpc-status', String(GRPC_STATUS[status] ?? 2)],
        ['grpc-message', encodeURIComponent(message)],
        ...extraHeaders,
      ],
      body: Buffer.alloc(0),
    };
  }
  const body = Buffer.from(message, 'utf8');
  return {
    status,
    headers: [
      ['content-type', 'text/plain'],
      ['content-length', String(body.length)],
      ...extraHeaders,
    ],
    body,
  };
}
