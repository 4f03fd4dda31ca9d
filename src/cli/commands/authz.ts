import type { Command } from 'commander';
import type { ConfigSet } from '../../api/config-set.js';
import { formatDiagnostic } from '../../api/diagnostics.js';
import { errorMessage } from '../../api/errors.js';
import { parseIp } from '../../api/ip.js';
import { loadConfigPaths } from '../../api/loader.js';
import { parsePortText } from '../../api/names.js';
import { JwksCache } from '../../dataplane/jwks.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { findWorkloadEntry, workloadFromEntry, type RegisteredWorkload } from '../../mesh/workloads.js';
import { checkInbound, compileWorkloadPolicy, workloadPolicy, type InboundDecision, type InboundRequest } from '../../policy/inbound.js';
import type { WorkloadJwtRules } from '../../policy/request-authn.js';
import { policyRuntime } from '../../dataplane/policy-runtime.js';
import { parseHeaderFlags, parseOutputFormat, printJson, printLine, usageError } from '../output.js';

/**
 * `trellis authz check`: asks the question the proxies ask — may this caller do this, here,
 * now? — against config files, with the same functions the data plane runs (mTLS mode, path
 * normalization, JWT verification, authorization). Exit 0 whenever it evaluated, whatever the
 * decision; 2 on invalid input, including invalid config.
 */

interface CheckOptions {
  filename?: string[];
  to?: string;
  from: string;
  sourceIp?: string;
  remoteIp?: string;
  port?: string;
  sni?: string;
  method?: string;
  path?: string;
  host?: string;
  header: string[];
  jwt?: string;
  tcp?: boolean;
  output: string;
}

export function registerAuthz(program: Command): void {
  const authz = program.command('authz').description('authorization: ask what the mesh would decide');
  authz
    .command('check')
    .description('decide one request against config files, and explain the decision')
    .option('-f, --filename <paths...>', 'YAML files or directories with the mesh config (repeatable)')
    .option('--to <namespace/workloadentry>', 'the destination: a WorkloadEntry in the config')
    .option('--from <spiffe-id|none>', 'the caller\'s mTLS identity, or "none" for plaintext', 'none')
    .option('--source-ip <ip>', 'the connecting peer\'s IP (default 127.0.0.1)')
    .option('--remote-ip <ip>', 'the original client IP, as from X-Forwarded-For (default: the source IP)')
    .option('--port <n>', 'destination port (default: the WorkloadEntry\'s first port, else 80)')
    .option('--sni <name>', 'TLS server name of the connection')
    .option('--method <method>', 'HTTP method (default GET)')
    .option('--path <path>', 'HTTP request target, with an optional ?query (default /)')
    .option('--host <host>', 'HTTP Host / :authority (default: the WorkloadEntry\'s address)')
    .option('--header <"Name: value">', 'HTTP request header (repeatable)', (value: string, all: string[]) => [...all, value], [])
    .option('--jwt <token>', 'a JWT, placed where the workload\'s RequestAuthentication looks first')
    .option('--tcp', 'a plain TCP connection instead of an HTTP request')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (options: CheckOptions) => {
      const format = parseOutputFormat(options.output);
      const paths = options.filename ?? [];
      if (paths.length === 0) throw usageError('authz check needs at least one -f PATH');
      if (options.to === undefined) throw usageError('authz check needs --to NAMESPACE/WORKLOADENTRY');
      checkTcpFlags(options);

      const loaded = await loadConfigPaths(paths);
      if (!loaded.config) {
        for (const d of loaded.errors) process.stderr.write(`${formatDiagnostic(d)}\n`);
        throw usageError(`the config is invalid (${loaded.errors.length} errors): nothing was evaluated`);
      }
      const workload = resolveWorkload(loaded.config, options.to);
      const policy = workloadPolicy(loaded.config, workload);
      const request = buildRequest(options, workload, policy.jwt);

      // Fetches jwksUri key sets as a proxy would (file:// and loopback URLs work offline).
      const runtime = policyRuntime(new JwksCache());
      const decision = await checkInbound(compileWorkloadPolicy(policy), request, runtime);
      const notes = noteFor(options, policy.jwt);
      if (format === 'json') printJson(decisionJson(decision, notes));
      else printText(decision, workload, request, notes);
      process.exitCode = 0;
    });
}

function checkTcpFlags(options: CheckOptions): void {
  if (options.tcp !== true) return;
  const used = (['method', 'path', 'host', 'jwt'] as const).filter((flag) => options[flag] !== undefined).map((flag) => `--${flag}`);
  if (options.header.length > 0) used.push('--header');
  if (used.length > 0) throw usageError(`--tcp checks a plain TCP connection: remove the HTTP flags ${used.join(', ')}`);
}

function resolveWorkload(config: ConfigSet, to: string): RegisteredWorkload {
  const parts = to.split('/');
  if (parts.length !== 2 || parts.some((p) => p === '')) throw usageError(`--to "${to}": expected NAMESPACE/WORKLOADENTRY`);
  const [namespace = '', name = ''] = parts;
  const entry = findWorkloadEntry(config, namespace, name);
  if (!entry) {
    const known = config.workloadEntries.map((e) => `${e.metadata.namespace ?? ''}/${e.metadata.name}`);
    throw usageError(`--to "${to}": no WorkloadEntry ${namespace}/${name} in the config${known.length > 0 ? ` (known: ${known.join(', ')})` : ' (it has no WorkloadEntry)'}`);
  }
  return workloadFromEntry(entry);
}

function buildRequest(options: CheckOptions, workload: RegisteredWorkload, jwtRules: WorkloadJwtRules): InboundRequest {
  const principal = parseFrom(options.from);
  const sourceIp = checkedIp('--source-ip', options.sourceIp ?? '127.0.0.1');
  const remoteIp = options.remoteIp === undefined ? undefined : checkedIp('--remote-ip', options.remoteIp);
  const port = options.port === undefined ? (Object.values(workload.ports)[0] ?? 80) : parsePortText(options.port);
  if (port === undefined) throw usageError(`--port "${options.port ?? ''}": a port is a number from 1 to 65535`);
  const destinationIp = workload.address !== undefined && parseIp(workload.address) ? workload.address : '127.0.0.1';
  const base: InboundRequest = {
    ...(principal === undefined ? {} : { sourcePrincipal: principal }),
    sourceIp,
    ...(remoteIp === undefined ? {} : { remoteIp }),
    destinationIp,
    destinationPort: port,
    ...(options.sni === undefined ? {} : { sni: options.sni }),
  };
  if (options.tcp === true) return base;

  const headers = parseHeaderFlags(options.header);
  let target = options.path ?? '/';
  if (options.jwt !== undefined) target = placeToken(options.jwt, jwtRules, headers, target);
  return { ...base, http: { method: options.method ?? 'GET', target, host: options.host ?? workload.address ?? workload.name, headers } };
}

/** `spiffe://td/ns/x/sa/y` → Istio's principal `td/ns/x/sa/y`; `none` → plaintext. */
function parseFrom(from: string): string | undefined {
  if (from === 'none') return undefined;
  try {
    return SpiffeId.parse(from).toIstioPrincipal();
  } catch (err) {
    throw usageError(`--from "${from}": ${errorMessage(err)} (use a SPIFFE ID such as spiffe://cluster.local/ns/default/sa/web, or "none")`);
  }
}

function checkedIp(flag: string, value: string): string {
  if (!parseIp(value)) throw usageError(`${flag} "${value}" is not an IPv4 or IPv6 address`);
  return value;
}

/** Puts the token where the first applicable JWT rule looks first, as a client following that rule would. */
function placeToken(token: string, rules: WorkloadJwtRules, headers: Map<string, string>, target: string): string {
  const rule = rules.rules[0]?.rule;
  const header = rule?.fromHeaders?.[0];
  if (header) {
    headers.set(header.name.toLowerCase(), `${header.prefix ?? ''}${token}`);
    return target;
  }
  const param = rule?.fromParams?.[0];
  if (param !== undefined) return `${target}${target.includes('?') ? '&' : '?'}${encodeURIComponent(param)}=${encodeURIComponent(token)}`;
  const cookie = rule?.fromCookies?.[0];
  if (cookie !== undefined) {
    const previous = headers.get('cookie');
    headers.set('cookie', previous === undefined ? `${cookie}=${token}` : `${previous}; ${cookie}=${token}`);
    return target;
  }
  headers.set('authorization', `Bearer ${token}`);
  return target;
}

function noteFor(options: CheckOptions, rules: WorkloadJwtRules): string[] {
  const notes: string[] = [];
  if (options.jwt !== undefined && rules.rules.length === 0) {
    notes.push('no RequestAuthentication applies to this workload, so the token was not verified and carries no identity');
  }
  return notes;
}

/** The `-o json` document: the issue's contract fields first, then details. */
export function decisionJson(decision: InboundDecision, notes: readonly string[] = []): Record<string, unknown> {
  return {
    decision: decision.decision,
    policy: decision.policy,
    action: decision.action,
    rule: decision.rule,
    dryRun: decision.dryRun,
    reason: decision.reason,
    mtlsMode: decision.mtlsMode,
    stage: decision.stage,
    ...(decision.httpStatus === undefined ? {} : { httpStatus: decision.httpStatus }),
    ...(decision.dryRunDecision === undefined ? {} : { dryRunDecision: decision.dryRunDecision }),
    audit: decision.audit,
    ...(decision.nearest === undefined ? {} : { nearest: decision.nearest }),
    ...(decision.path === undefined ? {} : { path: decision.path }),
    ...(decision.requestPrincipal === undefined ? {} : { requestPrincipal: decision.requestPrincipal }),
    ...(notes.length === 0 ? {} : { notes }),
  };
}

function printText(decision: InboundDecision, workload: RegisteredWorkload, request: InboundRequest, notes: readonly string[]): void {
  const what = request.http ? `${request.http.method} ${decision.path ?? request.http.target}` : 'TCP connection';
  const who = request.sourcePrincipal === undefined ? `${request.sourceIp} (plaintext)` : `spiffe://${request.sourcePrincipal}`;
  printLine(`${decision.decision}: ${what} → ${workload.namespace}/${workload.name} port ${request.destinationPort}, from ${who}`);
  printLine(`  ${decision.reason}`);
  printLine(`  mTLS mode on port ${request.destinationPort}: ${decision.mtlsMode}`);
  if (decision.requestPrincipal !== undefined) printLine(`  request principal (JWT): ${decision.requestPrincipal}`);
  for (const d of decision.dryRun) printLine(`  dry-run: ${d.policy} rule ${d.rule} ${d.effect} this request`);
  if (decision.dryRunDecision !== undefined && decision.dryRunDecision !== decision.decision) {
    printLine(`  dry-run: enforcing the dry-run policies would ${decision.dryRunDecision === 'DENY' ? 'deny' : 'allow'} this request`);
  }
  for (const a of decision.audit) printLine(`  audit: ${a.policy} rule ${a.rule} marks this request for auditing`);
  for (const note of notes) printLine(`  note: ${note}`);
}
