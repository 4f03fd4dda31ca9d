import type { Command } from 'commander';
import { registerValidate } from './validate.js';

/** Every command module registers itself here; keep the list in the order of `trellis --help`. */
export function registerCommands(program: Command): void {
  registerValidate(program);
}
