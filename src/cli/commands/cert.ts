import { mkdirSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDuration } from '../../api/duration.js';
import { TrustBundle } from '../../identity/bundle.js';
import { MeshCA } from '../../identity/ca.js';
import { type RevocationFile, revocationListOf } from '../../identity/ca-state.js';
import { type CertificateReport, inspectCertificate } from '../../identity/inspect.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { SVID_FILES, writeSvidFiles } from '../../identity/svid.js';
import { describeVerification, verifySvid } from '../../identity/verify.js';
import { createKeyAndCsr } from '../../identity/workload-key.js';
import { parseCertificatesPem } from '../../identity/x509.js';
import { parseOutputFormat, printJson, printLine, usageError } from '../output.js';

/** `trellis cert issue|inspect`: workload certificates. */
export function registerCert(program: Command): void {
  const cert = program.command('cert').description('workload certificates (X.509-SVIDs)');

  cert
    .command('issue')
    .description('generate a key here, send a CSR with a join token, and write key.pem, cert.pem and bundle.pem')
    .requiredOption('--ca-dir <dir>', 'CA directory')
    .requiredOption('--token <token>', 'join token from "trellis token create"')
    .requiredOption('--out <dir>', 'where to write key.pem (0600), cert.pem (leaf + chain), bundle.pem and bundle.json')
    .option('--ttl <duration>', "certificate lifetime (default: the CA's default)")
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { caDir: string; token: string; out: string; ttl?: string; output: string }) => {
      const format = parseOutputFormat(opts.output);
      const ca = MeshCA.open(opts.caDir);
      const id = await ca.joinTokenIdentity(opts.token);
      const { keyPem, csrPem } = await createKeyAndCsr(id);
      const issued = await ca.signCsr(csrPem, { kind: 'join-token', token: opts.token }, opts.ttl ? { ttlMs: parseDuration(opts.ttl) } : {});
      mkdirSync(opts.out, { recursive: true, mode: 0o700 });
      writeSvidFiles(opts.out, { keyPem, chainPem: issued.chainPem }, issued.bundle);
      const result = { identity: issued.id.toString(), serial: issued.serial, notBefore: issued.notBefore.toISOString(), notAfter: issued.notAfter.toISOString(), dir: opts.out, files: Object.values(SVID_FILES) };
      if (format === 'json') return printJson(result);
      printLine(`Issued ${result.identity}`);
      printLine(`  serial  ${result.serial}`);
      printLine(`  valid   ${result.notBefore} → ${result.notAfter}`);
      printLine(`  wrote   ${opts.out}/{${result.files.join(',')}}  (the private key never left this machine)`);
    });

  cert
    .command('inspect')
    .description('show a certificate: identity, serial, validity, issuer, and any X509-SVID rule it breaks')
    .argument('<file>', 'PEM file (the first certificate is inspected, the rest are its chain)')
    .option('--bundle <file>', 'also verify the chain against this trust bundle (bundle.json or PEM)')
    .option('--revocations <file>', "with --bundle: the CA's revocations.json, so revoked certificates fail")
    .option('--trust-domain <name>', 'trust domain the bundle belongs to (default: the certificate’s own)')
    .option('-o, --output <format>', 'text or json', 'text')
    .action((file: string, opts: { bundle?: string; revocations?: string; trustDomain?: string; output: string }) => {
      const format = parseOutputFormat(opts.output);
      const chain = parseCertificatesPem(readFileSync(file, 'utf8'), file);
      const report = inspectCertificate(chain[0]!);
      if (opts.revocations && !opts.bundle) throw usageError('--revocations needs --bundle');
      let verification: { valid: boolean; identity?: string; reason?: string; message?: string } | undefined;
      if (opts.bundle) {
        const text = readFileSync(opts.bundle, 'utf8');
        const trustDomain = opts.trustDomain ?? (report.spiffeId ? SpiffeId.parse(report.spiffeId).trustDomain : 'cluster.local');
        const bundle = text.trimStart().startsWith('{') ? TrustBundle.fromSpiffeJson(trustDomain, text) : TrustBundle.fromPem(trustDomain, text);
        const revocations = opts.revocations ? revocationListOf(JSON.parse(readFileSync(opts.revocations, 'utf8')) as RevocationFile) : undefined;
        const result = verifySvid(chain, bundle, revocations);
        verification = result.ok ? { valid: true, identity: result.id.toString() } : { valid: false, reason: result.reason, message: result.message };
        if (format === 'text') printReport(report, describeVerification(result));
      } else if (format === 'text') {
        printReport(report);
      }
      if (format === 'json') printJson({ ...report, ...(verification ? { verification } : {}) });
      if (report.spiffeProblems.length > 0 || verification?.valid === false) process.exitCode = 1;
    });
}

function printReport(report: CertificateReport, verification?: string): void {
  printLine(`SPIFFE ID:   ${report.spiffeId ?? '(none)'}`);
  printLine(`Kind:        ${report.kind === 'leaf' ? 'leaf (workload identity)' : 'signing (CA)'}`);
  printLine(`Subject:     ${report.subject || '(empty)'}`);
  printLine(`Issuer:      ${report.issuer}`);
  printLine(`Serial:      ${report.serial}`);
  printLine(`Valid:       ${report.notBefore} → ${report.notAfter} (${report.validity})`);
  printLine(`Key:         ${report.keyAlgorithm}`);
  printLine(`Key usage:   ${report.keyUsage.join(', ') || '(none)'}${report.extendedKeyUsage.length ? `; extended: ${report.extendedKeyUsage.join(', ')}` : ''}`);
  printLine(`SHA-256:     ${report.fingerprintSha256}`);
  printLine(`SPIFFE:      ${report.spiffeProblems.length === 0 ? 'conforms to the X509-SVID standard' : `breaks ${report.spiffeProblems.length} rule(s):`}`);
  for (const problem of report.spiffeProblems) printLine(`  - ${problem}`);
  if (verification) printLine(`Chain:       ${verification}`);
}
