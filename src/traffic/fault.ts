/**
 * Fault injection (VirtualService `fault`), as Envoy's fault filter applies it: the delay and
 * the abort are decided independently, each with its own draw against its percentage (delay
 * first); a request can be delayed and then aborted. An HTTP abort answers with the status; a
 * gRPC abort answers 200 with `grpc-status` (Trailers-Only). Response flags: DI (delay
 * injected), FI (fault/abort injected).
 */
import type { HttpFaultSnapshot } from '../mesh/snapshot.js';
import { chance, type Random } from './random.js';

export interface FaultDecision {
  /** Hold the request this long before anything else. */
  readonly delayMs?: number;
  /** Answer locally instead of forwarding (after the delay). */
  readonly abort?: { readonly httpStatus: number } | { readonly grpcStatus: number };
  /** `DI`, `FI` or both, for the access log. */
  readonly responseFlags: readonly string[];
}

const NONE: FaultDecision = Object.freeze({ responseFlags: Object.freeze([]) as readonly string[] });

/** Two draws when both a delay and an abort are configured, one when only one of them is. */
export function decideFault(fault: HttpFaultSnapshot | undefined, random: Random): FaultDecision {
  if (fault === undefined) return NONE;
  const delay = fault.delay !== undefined && chance(random, fault.delay.percentage) ? fault.delay.fixedDelayMs : undefined;
  let abort: FaultDecision['abort'];
  if (fault.abort !== undefined && chance(random, fault.abort.percentage)) {
    if (fault.abort.grpcStatus !== undefined) abort = { grpcStatus: fault.abort.grpcStatus };
    else if (fault.abort.httpStatus !== undefined) abort = { httpStatus: fault.abort.httpStatus };
  }
  if (delay === undefined && abort === undefined) return NONE;
  const flags: string[] = [];
  if (delay !== undefined) flags.push('DI');
  if (abort !== undefined) flags.push('FI');
  return { ...(delay === undefined ? {} : { delayMs: delay }), ...(abort === undefined ? {} : { abort }), responseFlags: flags };
}

/** The local reply for an injected abort: status and headers (gRPC: 200 + grpc-status). */
export function abortResponse(abort: NonNullable<FaultDecision['abort']>): { status: number; headers: Array<[string, string]>; body: string } {
  if ('grpcStatus' in abort) {
    return {
      status: 200,
      headers: [
        ['content-type', 'application/grpc'],
        ['grpc-status', String(abort.grpcStatus)],
        ['grpc-message', 'fault filter abort'],
      ],
      body: '',
    };
  }
  return { status: abort.httpStatus, headers: [['content-type', 'text/plain']], body: 'fault filter abort' };
}
