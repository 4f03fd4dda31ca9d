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
    .action(async (opts: { once?: boolean; state?: string; keep?: boolean }) => {
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
