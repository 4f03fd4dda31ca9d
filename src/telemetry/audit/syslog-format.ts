/**
 * RFC 5424 syslog messages for audit records, and RFC 6587 octet-counting framing for stream
 * transports. The structured-data element carries the fields a SIEM filters on; MSG is the full
 * JSON record.
 */
import { hostname } from 'node:os';
import { serializeRecord, type AuditRecord } from './record.js';

/** RFC 5424 facilities Trellis may log under. */
export const FACILITIES = { auth: 4, authpriv: 10, audit: 13, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23 } as const;
export type Facility = keyof typeof FACILITIES;

export const SEVERITY = { warning: 4, notice: 5, informational: 6 } as const;

/**
 * SD-ID of Trellis's element. `@32473` is the enterprise number RFC 5612 reserves for
 * documentation; Trellis has no registered number yet, so this is configurable.
 */
export const DEFAULT_SD_ID = 'trellis@32473';

export interface SyslogFormatOptions {
  readonly facility?: Facility;
  readonly hostname?: string;
  readonly appName?: string;
  readonly procId?: string;
  readonly sdId?: string;
}

/** Denials and refusals are warnings; everything else is a notice (allows: informational). */
export function severityOf(record: AuditRecord): number {
  switch (record.kind) {
    case 'authz':
      return record.decision === 'DENY' ? SEVERITY.warning : SEVERITY.informational;
    case 'certificate':
      return record.event === 'refused' || record.event === 'revoked' ? SEVERITY.warning : SEVERITY.notice;
    case 'config':
      return record.event === 'rejected' ? SEVERITY.warning : SEVERITY.notice;
  }
}

/** HOSTNAME, APP-NAME, PROCID, MSGID: printable US-ASCII without spaces, length-limited, `-` when empty. */
function header(value: string | undefined, max: number): string {
  const cleaned = (value ?? '').replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return cleaned === '' ? '-' : cleaned;
}

/** PARAM-VALUE escaping: `"`, `\` and `]` are backslash-escaped. */
function paramValue(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** PARAM-NAME: printable ASCII except `=`, space, `]`, `"`; at most 32 characters. */
function paramName(name: string): string {
  return name.replace(/[^\x21-\x7e]|[= \]"]/g, '').slice(0, 32);
}

function sdParams(record: AuditRecord): Record<string, string | number | undefined> {
  switch (record.kind) {
    case 'authz':
      return {
        decision: record.decision,
        policy: record.policy ?? undefined,
        rule: record.rule ?? undefined,
        srcPrincipal: record.source.principal,
        srcAddress: record.source.address,
        dstWorkload: `${record.destination.namespace}/${record.destination.workload}`,
        method: record.request?.method,
        path: record.request?.path,
        mtls: record.mtls,
      };
    case 'certificate':
      return { event: record.event, identity: record.identity, serial: record.serial, actor: record.actor };
    case 'config':
      return { event: record.event, version: record.version, actor: record.actor, proxy: record.proxy };
  }
}

export function formatSyslog(record: AuditRecord, options: SyslogFormatOptions = {}): string {
  const pri = FACILITIES[options.facility ?? 'authpriv'] * 8 + severityOf(record);
  const params = Object.entries(sdParams(record))
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([name, value]) => `${paramName(name)}="${paramValue(String(value))}"`)
    .join(' ');
  const sd = `[${paramName(options.sdId ?? DEFAULT_SD_ID)}${params === '' ? '' : ` ${params}`}]`;
  const fields = [
    `<${pri}>1`,
    record.time,
    header(options.hostname ?? hostname(), 255),
    header(options.appName ?? 'trellis', 48),
    header(options.procId ?? String(process.pid), 128),
    header(record.kind, 32),
    sd,
    serializeRecord(record),
  ];
  return fields.join(' ');
}

/** RFC 6587 §3.4.1 octet counting: `MSG-LEN SP SYSLOG-MSG`, the length in bytes. */
export function octetCountingFrame(message: string): string {
  return `${Buffer.byteLength(message)} ${message}`;
}
