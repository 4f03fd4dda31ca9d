/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and `tracestate`
 * headers, parsed and validated as the spec says, and fresh ids from `crypto`. Pure apart from the
 * random source; the proxy's tracer (tracing.ts) builds on it.
 *
 *   traceparent: 00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>
 *
 * Lowercase hex only; an all-zero trace id or parent id is invalid; version ff is invalid; a
 * version 00 header has exactly four fields, while a later version may carry more (they are
 * ignored, the first four are read as version 00). Flag bit 0 is `sampled`.
 */
import { randomFillSync } from 'node:crypto';

export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';

/** The sampled flag (bit 0 of trace-flags). */
export const SAMPLED_FLAG = 0x01;

export interface TraceParent {
  /** 32 lowercase hex characters, not all zero. */
  traceId: string;
  /** The caller's span: 16 lowercase hex characters, not all zero. */
  parentId: string;
  /** The trace-flags byte as received. */
  flags: number;
  /** Bit 0 of the flags: the caller recorded this trace. */
  sampled: boolean;
}

const HEX2 = /^[0-9a-f]{2}$/;
const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/** Parses a `traceparent` value; undefined when it is not valid (the trace then restarts). */
export function parseTraceParent(value: string | undefined): TraceParent | undefined {
  if (value === undefined) return undefined;
  // Optional whitespace around the value is allowed by the header's ABNF (OWS).
  const header = value.trim();
  if (header.length < 55) return undefined;
  const version = header.slice(0, 2);
  if (!HEX2.test(version) || version === 'ff') return undefined;
  // Version 00 is exactly 55 characters; a later version may append "-..." fields.
  if (version === '00' ? header.length !== 55 : header.length > 55 && header[55] !== '-') return undefined;
  if (header[2] !== '-' || header[35] !== '-' || header[52] !== '-') return undefined;
  const traceId = header.slice(3, 35);
  const parentId = header.slice(36, 52);
  const flagsHex = header.slice(53, 55);
  if (!TRACE_ID.test(traceId) || traceId === ZERO_TRACE_ID) return undefined;
  if (!SPAN_ID.test(parentId) || parentId === ZERO_SPAN_ID) return undefined;
  if (!HEX2.test(flagsHex)) return undefined;
  const flags = Number.parseInt(flagsHex, 16);
  return { traceId, parentId, flags, sampled: (flags & SAMPLED_FLAG) !== 0 };
}

/** Formats a version 00 `traceparent` (only the sampled flag is set or not). */
export function formatTraceParent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

const MAX_TRACESTATE_MEMBERS = 32;
const MAX_TRACESTATE_LENGTH = 512;
// key = simple-key / multi-tenant-key (tenant@system); value = printable ASCII without "," and "=", no trailing space.
const TRACESTATE_KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * Validates `tracestate` header values (repeated headers are one list). Returns the list as it
 * should be forwarded, or undefined when it is invalid or empty: a proxy that does not add its
 * own entry passes a valid list unchanged and drops an invalid one (the traceparent stays).
 */
export function parseTraceState(values: readonly string[]): string | undefined {
  const members: string[] = [];
  const keys = new Set<string>();
  for (const value of values) {
    for (const raw of value.split(',')) {
      const member = raw.trim();
      if (member === '') continue; // empty list-members are allowed and ignored
      const eq = member.indexOf('=');
      if (eq <= 0) return undefined;
      const key = member.slice(0, eq);
      const val = member.slice(eq + 1);
      if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(val) || keys.has(key)) return undefined;
      keys.add(key);
      members.push(member);
    }
  }
  if (members.length === 0 || members.length > MAX_TRACESTATE_MEMBERS) return undefined;
  const list = members.join(',');
  return list.length > MAX_TRACESTATE_LENGTH ? undefined : list;
}

/** Random trace and span ids from the OS's CSPRNG, drawn from a refilled pool (cheap per id). */
export class RandomIds {
  private readonly pool = Buffer.alloc(4096);
  private offset = this.pool.length;

  /** 32 lowercase hex characters, never all zero. */
  traceId(): string {
    return this.hex(16, ZERO_TRACE_ID);
  }

  /** 16 lowercase hex characters, never all zero. */
  spanId(): string {
    return this.hex(8, ZERO_SPAN_ID);
  }

  private hex(bytes: number, zero: string): string {
    for (;;) {
      if (this.offset + bytes > this.pool.length) {
        randomFillSync(this.pool);
        this.offset = 0;
      }
      const id = this.pool.toString('hex', this.offset, this.offset + bytes);
      this.offset += bytes;
      if (id !== zero) return id;
    }
  }
}

/**
 * Istio's `sampling` (a percentage, 0–100, 0.01 precision) as a deterministic decision on the
 * trace id, so every proxy that starts a span of the same unsampled-by-parent trace agrees. The
 * low 56 bits of the trace id are compared with the rate, as W3C Trace Context level 2 and
 * OpenTelemetry's TraceIdRatioBased sampler do.
 */
export function sampledByRate(traceId: string, percent: number): boolean {
  if (!(percent > 0)) return false;
  if (percent >= 100) return true;
  const random = Number.parseInt(traceId.slice(18, 32), 16); // 56 bits: exact in a double
  return random < (percent / 100) * 2 ** 56;
}

/** Checks a sampling percentage from a flag or config: a number in [0, 100]. */
export function parseSamplingPercent(value: string): number | undefined {
  if (!/^\d+(\.\d+)?$/.test(value.trim())) return undefined;
  const percent = Number(value);
  return percent >= 0 && percent <= 100 ? percent : undefined;
}
