import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { parseDuration } from '../../api/duration.js';
import { type CaStatus, MeshCA } from '../../identity/ca.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { parseOutputFormat, printJson, printLine, usageError } from '../output.js';

/** `trellis ca …`: create, show, rotate and revoke in a mesh CA directory. */
export function registerCa(program: Command): void {
  const ca = program.command('ca').description('manage the mesh certificate authority');

  ca.command('init')
    .description('create a mesh CA: a self-signed root, or an intermediate under your own root')
    .requiredOption('--dir <dir>', 'directory for the CA state (created, mode 0700)')
    .option('--trust-domain <name>', 'SPIFFE trust domain', 'cluster.local')
    .option('--root-cert <file>', 'your CA certificate (PEM, followed by its chain up to the self-signed root): Trellis creates an intermediate under it')
    .option('--root-key <file>', 'the private key of --root-cert (PEM); it is not stored')
    .option('--ca-ttl <duration>', 'lifetime of the signing CA (default 87600h self-signed, 8760h intermediate)')
    .option('--svid-ttl <duration>', 'default lifetime of workload certificates', '1h')
    .option('--max-svid-ttl <duration>', 'longest lifetime a workload may ask for', '24h')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { dir: string; trustDomain: string; rootCert?: string; rootKey?: string; caTtl?: string; svidTtl: string; maxSvidTtl: string; output: string }) => {
      const format = parseOutputFormat(opts.output);
      if ((opts.rootCert === undefined) !== (opts.rootKey === undefined)) throw usageError('--root-cert and --root-key go together');
      const meshCa = await MeshCA.init(opts.dir, {
        trustDomain: opts.trustDomain,
        ...(opts.rootCert ? { rootCertPem: readFileSync(opts.rootCert, 'utf8') } : {}),
        ...(opts.rootKey ? { rootKeyPem: readFileSync(opts.rootKey, 'utf8') } : {}),
        ...(opts.caTtl ? { caTtlMs: parseDuration(opts.caTtl) } : {}),
        defaultSvidTtlMs: parseDuration(opts.svidTtl),
        maxSvidTtlMs: parseDuration(opts.maxSvidTtl),
        actor: operator(),
      });
      printStatus(await meshCa.status(), format, `Created a mesh CA in ${opts.dir}`);
    });

  ca.command('show')
    .description('show the CA: trust domain, signing certificate, bundle roots, rotation, revocations')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { dir: string; output: string }) => {
      printStatus(await MeshCA.open(opts.dir).status(), parseOutputFormat(opts.output));
    });

  ca.command('rotate')
    .description('rotate the root: the new root joins the bundle now and signs after the grace period')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('--grace <duration>', 'time for every workload to learn the new root before it signs (default: the longest lifetime among unexpired SVIDs, at least the default SVID lifetime)')
    .option('--root-cert <file>', 'an operator root (PEM, followed by its chain if it is not self-signed): the new signing CA is an intermediate under it')
    .option('--root-key <file>', 'the private key of --root-cert')
    .option('--self-signed', 'move a CA that runs under an operator root to a new self-signed root')
    .option('--ca-ttl <duration>', 'lifetime of the new signing CA (default 87600h self-signed, 8760h intermediate)')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { dir: string; grace?: string; rootCert?: string; rootKey?: string; selfSigned?: boolean; caTtl?: string; output: string }) => {
      const format = parseOutputFormat(opts.output);
      if ((opts.rootCert === undefined) !== (opts.rootKey === undefined)) throw usageError('--root-cert and --root-key go together');
      if (opts.selfSigned && opts.rootCert) throw usageError('--self-signed and --root-cert exclude each other');
      const status = await MeshCA.open(opts.dir).rotate({
        ...(opts.grace ? { graceMs: parseDuration(opts.grace) } : {}),
        ...(opts.selfSigned ? { selfSigned: true } : {}),
        ...(opts.caTtl ? { caTtlMs: parseDuration(opts.caTtl) } : {}),
        ...(opts.rootCert ? { rootCertPem: readFileSync(opts.rootCert, 'utf8') } : {}),
        ...(opts.rootKey ? { rootKeyPem: readFileSync(opts.rootKey, 'utf8') } : {}),
        actor: operator(),
      });
      printStatus(status, format, 'Rotation started');
    });

  ca.command('revoke')
    .description('revoke a certificate by serial, or every certificate of an identity')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('--serial <hex>', 'serial number of one certificate')
    .option('--identity <spiffe-id>', 'revoke every certificate of this identity and refuse new ones')
    .option('--lift', 'with --identity: allow new certificates for it again (revoked ones stay revoked)')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { dir: string; serial?: string; identity?: string; lift?: boolean; output: string }) => {
      const format = parseOutputFormat(opts.output);
      if ((opts.serial === undefined) === (opts.identity === undefined)) throw usageError('give exactly one of --serial or --identity');
      if (opts.lift && !opts.identity) throw usageError('--lift goes with --identity');
      const meshCa = MeshCA.open(opts.dir);
      const before = (await meshCa.revocations()).sequence;
      const list = opts.serial
        ? await meshCa.revokeSerial(opts.serial, operator())
        : opts.lift
          ? await meshCa.liftIdentityRevocation(SpiffeId.parse(opts.identity as string), operator())
          : await meshCa.revokeIdentity(SpiffeId.parse(opts.identity as string), operator());
      if (format === 'json') return printJson(list.toJson());
      const what = opts.serial ? `certificate ${opts.serial}` : opts.identity;
      const changed = list.sequence !== before;
      const verb = opts.lift ? (changed ? 'Lifted the revocation of' : 'Nothing to lift: no revocation blocks') : changed ? 'Revoked' : 'Already revoked:';
      printLine(`${verb} ${what}. Revocation list version ${list.sequence}: ${list.toJson().serials.length} certificate(s), ${list.toJson().identities.length} identity(ies).`);
    });
}

export function operator(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

function printStatus(status: CaStatus, format: 'text' | 'json', heading?: string): void {
  if (format === 'json') return printJson(status);
  if (heading) printLine(heading);
  printLine(`Trust domain:   ${status.trustDomain}`);
  printLine(`Mode:           ${status.mode === 'self-signed' ? 'self-signed root' : 'intermediate under an operator root'}`);
  printLine(`Signing CA:     ${status.signing.subject}`);
  printLine(`  serial        ${status.signing.serial}`);
  printLine(`  valid         ${status.signing.notBefore} → ${status.signing.notAfter}`);
  printLine(`  sha256        ${status.signing.fingerprint}`);
  printLine(`Trust bundle:   version ${status.bundleSequence}, ${status.roots.length} root(s)`);
  for (const root of status.roots) {
    const removal = root.removeAfter ? `, leaves the bundle after ${root.removeAfter}` : '';
    printLine(`  [${root.state}] ${root.subject} (sha256 ${root.fingerprint.slice(0, 16)}…, expires ${root.notAfter}${removal})`);
  }
  if (status.pendingRotation) printLine(`Rotation:       new root signs from ${status.pendingRotation.activateAt}`);
  printLine(`SVID lifetime:  ${status.defaultSvidTtl} by default, at most ${status.maxSvidTtl}`);
  printLine(`Revocations:    ${status.revocations.serials} certificate(s), ${status.revocations.identities.length} identity(ies)${status.revocations.identities.length ? `: ${status.revocations.identities.join(', ')}` : ''}`);
  printLine(`Join tokens:    ${status.activeJoinTokens} unused and unexpired`);
}
