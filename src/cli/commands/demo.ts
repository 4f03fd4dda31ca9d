import type { Command } from 'commander';
import { identityDemo } from '../demo/identity-demo.js';
import { meshDemo } from '../demo/mesh-demo.js';

/** `trellis demo` (the bookinfo mesh) and `trellis demo identity` (the identity layer alone). */
export function registerDemo(program: Command): void {
  const demo = program.command('demo').description('run the demo mesh (bookinfo) or the identity walkthrough');

  demo
    .command('mesh', { isDefault: true })
    .description('start a control plane and the bookinfo app with sidecars, make allowed and denied calls, stay up until Ctrl-C')
    .option('--once', 'run the calls once and exit (exit code 1 if any step misbehaved)')
    .option('--state <dir>', 'keep the control plane state and logs here (default: a temporary directory, removed at exit)')
    .option('--keep', 'keep the temporary state directory')
    .option('--tracing-endpoint <url>', 'export every proxy\'s spans (all requests sampled) to this OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces')
    .option('--tracing-protocol <protocol>', 'OTLP encoding with --tracing-endpoint: http/protobuf (default) or http/json')
    .action(async (opts: { once?: boolean; state?: string; keep?: boolean; tracingEndpoint?: string; tracingProtocol?: string }) => {
      process.exitCode = await meshDemo(opts);
    });

  demo
    .command('identity')
    .description('walk through identities alone: a mesh CA, two workloads, mTLS between them, a revocation')
    .option('--keep', 'keep the temporary directory for inspection')
    .action(async (opts: { keep?: boolean }) => {
      await identityDemo(opts);
    });
}
