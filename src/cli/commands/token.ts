import type { Command } from 'commander';
import { parseDuration } from '../../api/duration.js';
import { MeshCA } from '../../identity/ca.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { parseOutputFormat, printJson, printLine } from '../output.js';
import { operator } from './ca.js';

/** `trellis token create`: a single-use join token bound to one identity. */
export function registerToken(program: Command): void {
  const token = program.command('token').description('join tokens: how a new workload proves its identity to the CA');

  token
    .command('create')
    .description('print a random, single-use, expiring join token bound to one SPIFFE ID (only its hash is stored)')
    .requiredOption('--ca-dir <dir>', 'CA directory')
    .requiredOption('--identity <spiffe-id>', 'the identity the token proves, e.g. spiffe://cluster.local/ns/default/sa/web')
    .option('--ttl <duration>', 'how long the token can be used', '10m')
    .option('-o, --output <format>', 'text (the token alone, for scripts) or json', 'text')
    .action(async (opts: { caDir: string; identity: string; ttl: string; output: string }) => {
      const format = parseOutputFormat(opts.output);
      const id = SpiffeId.parse(opts.identity);
      const { token: value, expiresAt } = await MeshCA.open(opts.caDir).createJoinToken(id, parseDuration(opts.ttl), operator());
      if (format === 'json') return printJson({ token: value, identity: id.toString(), expiresAt: expiresAt.toISOString() });
      printLine(value);
      process.stderr.write(`join token for ${id.toString()}, single use, expires ${expiresAt.toISOString()}\n`);
    });
}
