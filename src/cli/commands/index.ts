import type { Command } from 'commander';
import { registerAudit } from './audit.js';
import { registerAuthz } from './authz.js';
import { registerCa } from './ca.js';
import { registerCert } from './cert.js';
import { registerControlPlane } from './controlplane.js';
import { registerDemo } from './demo.js';
import { registerInit } from './init.js';
import { registerProxy } from './proxy.js';
import { registerRoute } from './route.js';
import { registerStatus } from './status.js';
import { registerToken } from './token.js';
import { registerTop } from './top.js';
import { registerValidate } from './validate.js';

/** Every command module registers itself here; keep the list in the order of `trellis --help`. */
export function registerCommands(program: Command): void {
  registerDemo(program);
  registerInit(program);
  registerValidate(program);
  registerAuthz(program);
  registerRoute(program);
  registerCa(program);
  registerToken(program);
  registerCert(program);
  registerControlPlane(program);
  registerProxy(program);
  registerStatus(program);
  registerAudit(program);
  registerTop(program);
}
