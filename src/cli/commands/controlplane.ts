import { once } from 'node:events';
import type { Command } from 'commander';
import { DEFAULT_ADMIN_PORT, startControlPlane } from '../../controlplane/controlplane.js';
import { DEFAULT_DISCOVERY_PORT } from '../../mesh/discovery-protocol.js';
import { usageError } from '../output.js';

/** `trellis controlplane` (also `trellis up`): runs the control plane until SIGTERM or SIGINT. */
export function registerControlPlane(program: Command): void {
  program
    .command('controlplane')
    .alias('up')
    .description('run the control plane: watch config directories, run the mesh CA, serve discovery to proxies (logs are JSON on stdout)')
    .requiredOption('--config <dir>', 'directory of Istio/Trellis YAML, watched for changes; repeat it to merge several directories into one config (a resource defined in two of them is an error)', collect)
    .requiredOption('--state <dir>', 'state directory: the mesh CA (<state>/ca) and first-seen timestamps; created if missing')
    .option('--discovery-port <port>', 'discovery port (gRPC over mTLS)', String(DEFAULT_DISCOVERY_PORT))
    .option('--admin-port <port>', 'admin API port (HTTP, loopback only); it also serves Prometheus metrics at /metrics', String(DEFAULT_ADMIN_PORT))
    .option('--metrics-port <port>', 'an extra listener for Prometheus metrics only, e.g. with --metrics-host for a Prometheus on another host (0: any free port; default: none, scrape the admin port)')
    .option('--metrics-host <address>', 'address the --metrics-port listener binds', '127.0.0.1')
    .option('--host <address>', 'address the discovery port listens on', '127.0.0.1')
    .option('--trust-domain <name>', 'trust domain for a new CA when the config has no MeshConfig trustDomain (default cluster.local)')
    .action(async (opts: { config: string[]; state: string; discoveryPort: string; adminPort: string; host: string; trustDomain?: string; metricsPort?: string; metricsHost: string }) => {
      const cp = await startControlPlane({
        configDir: opts.config,
        stateDir: opts.state,
        host: opts.host,
        discoveryPort: parsePort(opts.discoveryPort, '--discovery-port'),
        adminPort: parsePort(opts.adminPort, '--admin-port'),
        ...(opts.metricsPort === undefined ? {} : { metrics: { host: opts.metricsHost, port: parsePort(opts.metricsPort, '--metrics-port') } }),
        ...(opts.trustDomain === undefined ? {} : { trustDomain: opts.trustDomain }),
      });
      await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
      await cp.stop();
    });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function parsePort(value: string, flag: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) throw usageError(`${flag} ${value}: expected a port number from 0 to 65535`);
  return port;
}
