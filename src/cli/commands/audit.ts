import http from 'node:http';
import type { Command } from 'commander';
import { errorMessage, TrellisError } from '../../api/errors.js';
import { parseFilter } from '../../controlplane/audit-hub.js';
import { DEFAULT_ADMIN_PORT, readControlPlaneRecord } from '../../controlplane/controlplane.js';
import type { AuditRecord } from '../../telemetry/audit/record.js';
import { formatAuditText } from '../../telemetry/audit/text.js';
import { parseOutputFormat, printLine, usageError } from '../output.js';

interface TailFlags {
  admin?: string;
  state?: string;
  denied?: boolean;
  workload?: string;
  kind: string[];
  since?: string;
  count?: string;
  follow: boolean;
  output: string;
}

/** `trellis audit tail`: follows the mesh's audit stream from the control plane's admin API. */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the audit log of the running mesh: authorization decisions, certificates, config changes');
  audit
    .command('tail')
    .description('follow the audit stream of the running mesh (Ctrl-C ends it): every denial, the allows the mesh audits, certificate and config events')
    .option('--denied', 'only authorization denials')
    .option('--workload <namespace/name>', 'only authorization decisions of this destination workload')
    .option('--kind <kind>', 'only this kind: authz, certificate or config (repeatable)', (value: string, previous: string[]) => [...previous, value], [])
    .option('--since <duration|time>', 'first print the records since then that the control plane still holds in memory (e.g. 10m, or an RFC 3339 time)')
    .option('--count <n>', 'stop after n records')
    .option('--no-follow', 'print the records since --since and stop; do not wait for new ones')
    .option('--admin <url>', `admin API of the control plane (default http://127.0.0.1:${DEFAULT_ADMIN_PORT})`)
    .option('--state <dir>', "the control plane's state directory on this host: finds its admin API")
    .option('-o, --output <format>', 'text (one line per record) or json (one record per line)', 'text')
    .action(async (opts: TailFlags) => {
      const format = parseOutputFormat(opts.output);
      const admin = opts.admin ?? (opts.state ? readControlPlaneRecord(opts.state).admin : `http://127.0.0.1:${DEFAULT_ADMIN_PORT}`);
      const params = new URLSearchParams();
      if (opts.denied) params.set('denied', 'true');
      if (opts.workload !== undefined) params.set('workload', opts.workload);
      if (opts.kind.length > 0) params.set('kind', opts.kind.join(','));
      if (opts.since !== undefined) params.set('since', opts.since);
      if (opts.count !== undefined) {
        if (!/^[1-9]\d*$/.test(opts.count)) throw usageError(`--count "${opts.count}": expected a whole number ≥ 1`);
        params.set('count', opts.count);
      }
      if (!opts.follow && opts.since === undefined) throw usageError('--no-follow prints only past records: give --since too (e.g. --since 10m)');
      params.set('follow', String(opts.follow));
      try {
        parseFilter(params);
      } catch (err) {
        throw usageError(errorMessage(err).replace(/^(\w+) "/, '--$1 "'));
      }
      const printed = await tail(admin, params, (record) => printLine(format === 'json' ? JSON.stringify(record) : formatAuditText(record)));
      if (printed === 0 && !opts.follow) process.stderr.write('no matching audit records\n');
    });
}

/** Streams GET /audit, calling `onRecord` per record; resolves with the count at the end of the stream or on Ctrl-C. */
function tail(admin: string, params: URLSearchParams, onRecord: (record: AuditRecord) => void): Promise<number> {
  const url = new URL(`audit?${params.toString()}`, admin.endsWith('/') ? admin : `${admin}/`);
  return new Promise((resolve, reject) => {
    let count = 0;
    let buffered = '';
    const stop = (): void => {
      request.destroy();
      resolve(count);
    };
    const cleanup = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const request = http.get(url, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          cleanup();
          reject(new TrellisError('TRELLIS_ADMIN_UNREACHABLE', `${url.origin}${url.pathname} answered HTTP ${res.statusCode ?? '?'}: ${body.trim()}`));
        });
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
          if (line.trim() === '') continue;
          try {
            onRecord(JSON.parse(line) as AuditRecord);
            count++;
          } catch {
            // Not a record (a future heartbeat, say): skip it.
          }
        }
      });
      res.on('end', () => {
        cleanup();
        resolve(count);
      });
      res.on('error', () => {
        cleanup();
        resolve(count);
      });
    });
    request.on('error', (err) => {
      cleanup();
      if (request.destroyed && count > 0) return resolve(count);
      reject(new TrellisError('TRELLIS_ADMIN_UNREACHABLE', `cannot reach the control plane admin API at ${admin} (${errorMessage(err)}): is "trellis controlplane" running, and is --admin (or --state) right?`));
    });
  });
}
