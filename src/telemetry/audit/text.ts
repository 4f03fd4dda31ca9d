/**
 * Audit records for people: one line per record (`trellis audit tail`), and the filters the
 * tail and the control plane's audit stream share.
 */
import type { AuditRecord } from './record.js';

export interface AuditFilter {
  /** Only authorization denials. */
  readonly denied?: boolean;
  /** Only authorization decisions of this destination workload (`namespace/name`). */
  readonly workload?: string;
  /** Only these kinds. */
  readonly kinds?: readonly AuditRecord['kind'][];
  /** Only records at or after this time (ms since the epoch). */
  readonly since?: number;
}

export function matchesAuditFilter(record: AuditRecord, filter: AuditFilter): boolean {
  if (filter.kinds !== undefined && filter.kinds.length > 0 && !filter.kinds.includes(record.kind)) return false;
  if (filter.denied && !(record.kind === 'authz' && record.decision === 'DENY')) return false;
  if (filter.workload !== undefined) {
    if (record.kind !== 'authz') return false;
    if (`${record.destination.namespace}/${record.destination.workload}` !== filter.workload) return false;
  }
  if (filter.since !== undefined && Date.parse(record.time) < filter.since) return false;
  return true;
}

/** Keeps a line on one terminal line: control characters become `?`. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\x00-\x1f\x7f]/g, '?');
}

/**
 * `2026-01-02T03:04:05.678Z DENY  cluster.local/ns/default/sa/client → default/web  GET web:80 /admin  policy default/deny-admin rule 0  mTLS  "denied: …"`
 */
export function formatAuditText(record: AuditRecord): string {
  switch (record.kind) {
    case 'authz': {
      const source = record.source.principal ?? `${record.source.address ?? '?'} (no identity)`;
      const destination = `${record.destination.namespace}/${record.destination.workload}`;
      const what = record.request
        ? `${record.request.method ?? '?'} ${record.request.host ?? '-'} ${record.request.path ?? '-'}`
        : `TCP port ${record.destination.port ?? '?'}`;
      const decider = record.policy === null ? 'default' : `policy ${record.policy} rule ${record.rule ?? '?'}`;
      const extras = [
        record.mtls === 'mutual_tls' ? 'mTLS' : 'plaintext',
        ...(record.requestPrincipal ? [`jwt ${record.requestPrincipal}`] : []),
        ...record.dryRun.map((d) => `dry-run ${d.policy} ${d.effect}`),
        ...(record.auditPolicies ?? []).map((p) => `audit ${p}`),
      ];
      return clean(`${record.time} ${record.decision.padEnd(5)} ${source} → ${destination}  ${what}  ${decider}  ${extras.join(', ')}  "${record.reason}"`);
    }
    case 'certificate': {
      const parts = [
        record.identity,
        record.serial === undefined ? undefined : `serial ${record.serial}`,
        record.serials === undefined ? undefined : `serials ${record.serials.join(',')}`,
        record.notAfter === undefined ? undefined : `until ${record.notAfter}`,
        record.root === undefined ? undefined : `root ${record.root.slice(0, 16)}`,
        record.actor === undefined ? undefined : `by ${record.actor}`,
        record.reason === undefined ? undefined : `"${record.reason}"`,
      ].filter((p): p is string => p !== undefined);
      return clean(`${record.time} CERT  ${record.event} ${parts.join('  ')}`);
    }
    case 'config': {
      const parts: string[] = [`version ${record.version}`];
      if (record.previousVersion !== undefined) parts.push(`(was ${record.previousVersion})`);
      if (record.actor !== undefined) parts.push(`by ${record.actor}`);
      if (record.proxy !== undefined) parts.push(`proxy ${record.workload ?? record.proxy}`);
      if (record.type !== undefined) parts.push(`type ${record.type}`);
      if (record.changes !== undefined) {
        const { added, removed, modified } = record.changes;
        const list = (sign: string, ids: readonly string[]): string[] => ids.map((id) => `${sign}${id}`);
        parts.push(`[${[...list('+', added), ...list('-', removed), ...list('~', modified)].join(', ')}]`);
      }
      if (record.errors !== undefined && record.errors.length > 0) parts.push(`${record.errors.length} error(s): ${record.errors[0] ?? ''}`);
      if (record.reason !== undefined) parts.push(`"${record.reason}"`);
      return clean(`${record.time} CONFIG ${record.event} ${parts.join('  ')}`);
    }
  }
}
