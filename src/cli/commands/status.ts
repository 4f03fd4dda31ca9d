import type { Command } from 'commander';
import { formatDiagnostic } from '../../api/diagnostics.js';
import { errorMessage, TrellisError } from '../../api/errors.js';
import { type ControlPlaneStatus, DEFAULT_ADMIN_PORT } from '../../controlplane/controlplane.js';
import type { ProxySyncStatus } from '../../controlplane/proxy-connection.js';
import { RESOURCE_TYPES } from '../../mesh/snapshot.js';
import { parseOutputFormat, printJson, printLine } from '../output.js';

const DEFAULT_ADMIN = `http://127.0.0.1:${DEFAULT_ADMIN_PORT}`;

/** `trellis status` and `trellis proxy-status`: thin views over the control plane's admin API. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('config health of a running control plane: live version, last change, errors with file:line')
    .option('--admin <url>', 'admin API of the control plane', DEFAULT_ADMIN)
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { admin: string; output: string }) => {
      const format = parseOutputFormat(opts.output);
      const status = await getJson<ControlPlaneStatus>(opts.admin, '/status');
      if (format === 'json') return printJson(status);
      const { controlPlane: cp, config } = status;
      printLine(`Control plane:  ${cp.identity}`);
      printLine(`  discovery     ${cp.discovery}   (pid ${cp.pid} on ${cp.hostname}, up since ${cp.startedAt})`);
      printLine(`Config:         ${config.source}`);
      printLine(`  live version  ${config.version ?? 'none (no valid config loaded yet)'}${config.acceptedAt ? `, accepted ${config.acceptedAt}` : ''}, ${config.resources} resource(s)`);
      if (config.lastChangeAt) printLine(`  last change   ${config.lastChangeAt}${config.refusedVersion ? ` (version ${config.refusedVersion}, REFUSED)` : ''}`);
      printLine(`  health        ${config.healthy ? 'OK' : 'ERRORS: the last change was refused; the live version keeps running'}`);
      for (const error of config.errors) printLine(`    ${formatDiagnostic(error)}`);
      for (const warning of config.warnings) printLine(`    ${formatDiagnostic(warning)}`);
      printLine(`Trust:          bundle version ${status.trust.bundleSequence} (${status.trust.roots} root(s)), revocation list version ${status.trust.revocationSequence} (${status.trust.revocations} entr${status.trust.revocations === 1 ? 'y' : 'ies'})`);
      printLine(`Proxies:        ${status.proxies} connected ("trellis proxy-status" for details)`);
      if (!config.healthy) process.exitCode = 1;
    });

  program
    .command('proxy-status')
    .description('every proxy connected to the control plane: identity, and per resource type the version pushed, acknowledged or refused (NACK)')
    .option('--admin <url>', 'admin API of the control plane', DEFAULT_ADMIN)
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { admin: string; output: string }) => {
      const format = parseOutputFormat(opts.output);
      const { proxies } = await getJson<{ proxies: ProxySyncStatus[] }>(opts.admin, '/debug/syncz');
      if (format === 'json') return printJson({ proxies });
      if (proxies.length === 0) return printLine('No proxies connected.');
      const header = ['NAME', 'IDENTITY', ...RESOURCE_TYPES.map((t) => t.toUpperCase()), 'CONNECTED SINCE'];
      const rows = proxies.map((p) => [p.workload, p.identity, ...RESOURCE_TYPES.map((t) => cell(p.types[t])), p.connectedAt]);
      printTable([header, ...rows]);
      const nacks = proxies.flatMap((p) => RESOURCE_TYPES.flatMap((t) => {
        const nack = p.types[t].nack;
        return nack ? [`  ${p.workload} ${t} ${nack.version}: ${nack.message}`] : [];
      }));
      if (nacks.length > 0) {
        printLine('\nRefused versions (NACK; the proxy keeps its previous version):');
        for (const line of nacks) printLine(line);
      }
    });
}

function cell(state: ProxySyncStatus['types'][keyof ProxySyncStatus['types']]): string {
  if (state.status === 'NOT_SENT') return 'NOT SENT';
  return `${state.status} ${state.status === 'SYNCED' ? state.acked ?? '' : state.pushed ?? ''}`.trim();
}

function printTable(rows: string[][]): void {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const row of rows) printLine(row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
}

async function getJson<T>(admin: string, path: string): Promise<T> {
  const url = new URL(path, admin.endsWith('/') ? admin : `${admin}/`).toString();
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  } catch (err) {
    throw new TrellisError('TRELLIS_ADMIN_UNREACHABLE', `cannot reach the control plane admin API at ${admin} (${errorMessage(err)}): is "trellis controlplane" running, and is --admin its admin port?`);
  }
  if (!response.ok) throw new TrellisError('TRELLIS_ADMIN_UNREACHABLE', `${url} answered HTTP ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}
