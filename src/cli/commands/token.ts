import { join } from 'node:path';
import type { Command } from 'commander';
import { formatDiagnostic } from '../../api/diagnostics.js';
import { parseDuration } from '../../api/duration.js';
import { TrellisError } from '../../api/errors.js';
import { loadConfigPaths } from '../../api/loader.js';
import { readControlPlaneRecord } from '../../controlplane/controlplane.js';
import { MeshCA } from '../../identity/ca.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { buildRegistry, findWorkload, workloadIdentity } from '../../mesh/registry.js';
import { parseOutputFormat, printJson, printLine, usageError } from '../output.js';
import { operator } from './ca.js';

/** `trellis token create`: a single-use join token bound to one identity. */
export function registerToken(program: Command): void {
  const token = program.command('token').description('join tokens: how a new workload proves its identity to the CA');

  token
    .command('create')
    .description('print a random, single-use, expiring join token bound to one SPIFFE ID (only its hash is stored)')
    .option('--ca-dir <dir>', 'CA directory (with --identity)')
    .option('--identity <spiffe-id>', 'the identity the token proves, e.g. spiffe://cluster.local/ns/default/sa/web')
    .option('--state <dir>', "a control plane's state directory (with --workload): its CA and config are used")
    .option('--workload <namespace/name>', 'the WorkloadEntry whose identity the token proves (with --state)')
    .option('--ttl <duration>', 'how long the token can be used', '10m')
    .option('-o, --output <format>', 'text (the token alone, for scripts) or json', 'text')
    .action(async (opts: { caDir?: string; identity?: string; state?: string; workload?: string; ttl: string; output: string }) => {
      const format = parseOutputFormat(opts.output);
      const { caDir, id } = await resolveTarget(opts);
      const { token: value, expiresAt } = await MeshCA.open(caDir).createJoinToken(id, parseDuration(opts.ttl), operator());
      if (format === 'json') return printJson({ token: value, identity: id.toString(), expiresAt: expiresAt.toISOString() });
      printLine(value);
      process.stderr.write(`join token for ${id.toString()}, single use, expires ${expiresAt.toISOString()}\n`);
    });
}

async function resolveTarget(opts: { caDir?: string; identity?: string; state?: string; workload?: string }): Promise<{ caDir: string; id: SpiffeId }> {
  const direct = opts.caDir !== undefined || opts.identity !== undefined;
  const viaState = opts.state !== undefined || opts.workload !== undefined;
  if (direct === viaState) throw usageError('give either --ca-dir and --identity, or --state and --workload');
  if (direct) {
    if (opts.caDir === undefined || opts.identity === undefined) throw usageError('--ca-dir and --identity go together');
    return { caDir: opts.caDir, id: SpiffeId.parse(opts.identity) };
  }
  if (opts.state === undefined || opts.workload === undefined) throw usageError('--state and --workload go together');
  return workloadTarget(opts.state, opts.workload);
}

/** The CA directory and SPIFFE ID for a WorkloadEntry of the control plane whose state dir is given. */
export async function workloadTarget(stateDir: string, workloadRef: string): Promise<{ caDir: string; id: SpiffeId }> {
  const opts = { state: stateDir, workload: workloadRef };
  if (!/^[^/\s]+\/[^/\s]+$/.test(opts.workload)) throw usageError(`--workload ${opts.workload}: expected NAMESPACE/NAME of a WorkloadEntry`);
  const record = readControlPlaneRecord(opts.state);
  const configDirs = record.configDirs ?? [record.configDir];
  const where = configDirs.join(', ');
  const loaded = await loadConfigPaths(configDirs);
  if (!loaded.config) {
    throw new TrellisError('TRELLIS_CONFIG_INVALID', `the config in ${where} is invalid:\n${loaded.errors.map(formatDiagnostic).join('\n')}`);
  }
  const workload = findWorkload(buildRegistry(loaded.config), opts.workload);
  if (workload === undefined) {
    throw new TrellisError('TRELLIS_UNKNOWN_WORKLOAD', `no WorkloadEntry ${opts.workload} in ${where}: check the namespace and name`, { exitCode: 2 });
  }
  // The CA's trust domain (recorded by the control plane) is the mesh's when the MeshConfig names none.
  const trustDomain = loaded.config.meshConfig?.spec.trustDomain ?? record.trustDomain;
  return { caDir: join(opts.state, 'ca'), id: SpiffeId.parse(workloadIdentity(trustDomain, workload.namespace, workload.serviceAccount)) };
}
