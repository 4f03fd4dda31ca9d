import { Command, CommanderError } from 'commander';
import { errorMessage, isTrellisError } from '../api/errors.js';
import { registerCommands } from './commands/index.js';

/**
 * The `trellis` command. Each command lives in src/cli/commands and stays thin: it parses
 * flags, calls the modules that do the work, and prints. Exit codes: 0 success, 1 the
 * operation ran and failed (invalid config, refused request…), 2 invalid input; `route check`
 * also exits 3 when the request would not reach a destination (ROUTE_REFUSED_EXIT_CODE).
 */
export function buildProgram(): Command {
  const program = new Command('trellis')
    .description('Trellis — a zero-trust service mesh: SPIFFE identities, mTLS, Istio policy, no Kubernetes needed')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    const code = isTrellisError(err) ? ` [${err.code}]` : '';
    process.stderr.write(`trellis: ${errorMessage(err)}${code}\n`);
    return isTrellisError(err) && err.details['exitCode'] === 2 ? 2 : 1;
  }
}
