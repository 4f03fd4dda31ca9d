/**
 * The audit settings as configuration writes them (MeshConfig `audit`, proxy flags): which
 * authorization allows are written, and where records go. Pure parsing, shared by validation,
 * the control plane and the proxies; the sinks themselves live in src/telemetry/audit.
 */

/** `all`, `none`, or the fraction of allows to keep (0…1). Denials are always written. */
export type AllowSampling = 'all' | 'none' | number;

/** Parses `all`, `none`, `0.1` or `10%` as given in configuration. */
export function parseAllowSampling(text: string): AllowSampling {
  const trimmed = text.trim();
  if (trimmed === 'all' || trimmed === 'none') return trimmed;
  const percent = trimmed.endsWith('%');
  const value = Number(percent ? trimmed.slice(0, -1) : trimmed);
  const fraction = percent ? value / 100 : value;
  if (trimmed === '' || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
    throw new RangeError(`audit allow sampling must be "all", "none", a fraction 0…1 or a percentage, got "${text}"`);
  }
  return fraction;
}

export const SYSLOG_FACILITY_NAMES = ['auth', 'authpriv', 'audit', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;
export type SyslogFacilityName = (typeof SYSLOG_FACILITY_NAMES)[number];

/** One audit destination. */
export type AuditSinkSpec =
  | { readonly type: 'stdout' }
  | { readonly type: 'file'; readonly path: string }
  | { readonly type: 'syslog'; readonly transport: 'udp' | 'tcp' | 'tls'; readonly host: string; readonly port: number; readonly facility?: SyslogFacilityName }
  | { readonly type: 'webhook'; readonly url: string };

export const AUDIT_SINK_FORMS = 'stdout, file:PATH, syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT (optionally ?facility=local0), or an http(s):// webhook URL';

/**
 * Parses one sink as written in MeshConfig `audit.sinks` or `--audit`:
 * `stdout`, `file:/var/log/trellis/audit.log`, `syslog+udp://10.0.0.5:514?facility=local0`,
 * `syslog+tcp://…`, `syslog+tls://…`, `https://siem.example.com/trellis`.
 */
export function parseAuditSinkSpec(text: string): AuditSinkSpec {
  const value = text.trim();
  if (value === 'stdout') return { type: 'stdout' };
  if (value.startsWith('file:')) {
    const path = value.slice('file:'.length);
    if (path === '') throw new RangeError(`audit sink "${text}": file: needs a path, e.g. file:/var/log/trellis/audit.log`);
    return { type: 'file', path };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RangeError(`audit sink "${text}": expected ${AUDIT_SINK_FORMS}`);
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    if (url.username !== '' || url.password !== '') throw new RangeError(`audit sink "${text}": credentials in the webhook URL would end up in logs and status output; the webhook takes no credentials in its URL`);
    return { type: 'webhook', url: url.toString() };
  }
  const syslog = /^syslog\+(udp|tcp|tls):$/.exec(url.protocol);
  if (syslog) {
    const transport = syslog[1] as 'udp' | 'tcp' | 'tls';
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = url.port === '' ? (transport === 'tls' ? 6514 : 514) : Number(url.port);
    if (host === '') throw new RangeError(`audit sink "${text}": syslog needs a host, e.g. syslog+udp://127.0.0.1:514`);
    const facility = url.searchParams.get('facility') ?? undefined;
    if (facility !== undefined && !(SYSLOG_FACILITY_NAMES as readonly string[]).includes(facility)) {
      throw new RangeError(`audit sink "${text}": unknown syslog facility "${facility}"; use one of ${SYSLOG_FACILITY_NAMES.join(', ')}`);
    }
    return { type: 'syslog', transport, host, port, ...(facility === undefined ? {} : { facility: facility as SyslogFacilityName }) };
  }
  throw new RangeError(`audit sink "${text}": unknown kind "${url.protocol}"; expected ${AUDIT_SINK_FORMS}`);
}

/** A sink as it may be shown (status, logs): webhook query strings are cut, they may hold keys. */
export function describeAuditSink(spec: AuditSinkSpec): string {
  switch (spec.type) {
    case 'stdout':
      return 'stdout';
    case 'file':
      return `file:${spec.path}`;
    case 'syslog':
      return `syslog+${spec.transport}://${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${spec.port}`;
    case 'webhook': {
      const url = new URL(spec.url);
      return `${url.origin}${url.pathname}`;
    }
  }
}
