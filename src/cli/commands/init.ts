import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parseConfigTexts } from '../../api/config-set.js';
import { formatDiagnostic } from '../../api/diagnostics.js';
import { errorMessage, TrellisError } from '../../api/errors.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { printLine, usageError } from '../output.js';

/**
 * `trellis init [DIR]`: a new mesh config directory for the embedded (file) store, closed by
 * default — mesh-wide STRICT mTLS, deny-by-default authorization, egress only to registered
 * services — with commented examples to start from. Refuses a non-empty directory unless
 * `--force` (then only the files it writes are replaced).
 */

const ROOT_NAMESPACE = 'istio-system';

export interface InitFile {
  name: string;
  content: string;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a new mesh config directory: STRICT mTLS, deny-by-default authorization, egress closed (REGISTRY_ONLY), commented examples')
    .argument('[dir]', 'the directory to create or fill', '.')
    .option('--trust-domain <name>', 'the mesh\'s SPIFFE trust domain (MeshConfig trustDomain)', 'cluster.local')
    .option('--force', 'write into a non-empty directory, replacing files of the same names')
    .action(async (dir: string, options: { trustDomain: string; force?: boolean }) => {
      checkTrustDomain(options.trustDomain);
      const files = initFiles(options.trustDomain);
      // The files must be a valid config set as written: checked before anything is written.
      const check = parseConfigTexts(files.filter((f) => f.name.endsWith('.yaml')).map((f) => ({ text: f.content, file: f.name })));
      if (check.errors.length > 0) {
        throw new TrellisError('TRELLIS_CONFIG_INVALID', `the generated config is invalid: ${check.errors.map(formatDiagnostic).join('; ')}`, { exitCode: 2 });
      }

      const existing = await entries(dir);
      if (existing.length > 0 && options.force !== true) {
        throw new TrellisError('TRELLIS_INIT_EXISTS', `${dir} is not empty (${describeEntries(existing)}): choose a new directory, or add --force to write the mesh files into it (files with the same names are replaced)`);
      }
      await mkdir(dir, { recursive: true });
      const replaced = new Set(existing);
      for (const file of files) await writeFile(join(dir, file.name), file.content, { mode: 0o644 });

      printLine(`Created a mesh config in ${resolve(dir)} (trust domain ${options.trustDomain}):`);
      for (const file of files) printLine(`  ${file.name.padEnd(26)}${replaced.has(file.name) ? ' (replaced)' : ''}${describeFile(file.name)}`);
      printLine('');
      printLine('Next:');
      printLine(`  trellis validate -f ${dir}`);
      printLine(`  trellis controlplane --config ${dir} --state ${stateHint(dir)}`);
      printLine(`  (see ${join(dir, 'README.md')} for the rest: workloads, tokens, proxies, route and authz checks)`);
    });
}

/** Where to keep the control plane's state: next to the config directory, never inside it. */
function stateHint(dir: string): string {
  const trimmed = dir.replace(/\/+$/, '');
  return trimmed === '.' || trimmed === '' ? '../mesh-state' : `${trimmed}-state`;
}

function checkTrustDomain(trustDomain: string): void {
  try {
    SpiffeId.forServiceAccount(trustDomain, ROOT_NAMESPACE, 'default');
  } catch (err) {
    throw usageError(`--trust-domain "${trustDomain}": ${errorMessage(err)}`);
  }
}

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') return [];
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOTDIR') {
      throw new TrellisError('TRELLIS_INIT_EXISTS', `${dir} exists and is not a directory`);
    }
    throw err;
  }
}

function describeEntries(names: readonly string[]): string {
  const shown = names.slice(0, 3).join(', ');
  return names.length > 3 ? `${shown} and ${names.length - 3} more` : shown;
}

function describeFile(name: string): string {
  switch (name) {
    case 'mesh.yaml':
      return ' MeshConfig: defaultAuthorization DENY, outboundTrafficPolicy REGISTRY_ONLY';
    case 'peer-authentication.yaml':
      return ` PeerAuthentication ${ROOT_NAMESPACE}/default: STRICT mTLS mesh-wide`;
    case 'examples.yaml':
      return ' commented examples: WorkloadEntry, ServiceEntry, AuthorizationPolicy, DestinationRule, VirtualService';
    default:
      return ' how to use this directory';
  }
}

/** The files `trellis init` writes; pure, for tests. */
export function initFiles(trustDomain: string): InitFile[] {
  return [
    { name: 'README.md', content: readme(trustDomain) },
    { name: 'mesh.yaml', content: meshYaml(trustDomain) },
    { name: 'peer-authentication.yaml', content: PEER_AUTHENTICATION },
    { name: 'examples.yaml', content: examplesYaml(trustDomain) },
  ];
}

function meshYaml(trustDomain: string): string {
  return `# Trellis-only, mesh-wide settings (trellis.dev/v1alpha1 MeshConfig). Closed by default:
# - defaultAuthorization DENY: a workload that no ALLOW policy covers refuses every request;
# - outboundTrafficPolicy REGISTRY_ONLY: proxies send only to registered services (WorkloadEntry +
#   ServiceEntry, or a MESH_EXTERNAL ServiceEntry for a host outside the mesh); anything else
#   gets 502. Use ALLOW_ANY to let unknown hosts through (Istio's default).
# The trust domain and the root namespace name every identity: they cannot change once the
# control plane has created its CA.
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata:
  name: mesh
spec:
  trustDomain: ${trustDomain}
  rootNamespace: ${ROOT_NAMESPACE}
  defaultAuthorization: DENY
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
`;
}

const PEER_AUTHENTICATION = `# Mesh-wide STRICT mTLS: a PeerAuthentication in the root namespace without a selector applies to
# every workload. Every connection between workloads is mutually authenticated with SPIFFE
# identities; plaintext is refused. Narrow it per namespace or workload with more
# PeerAuthentications (PERMISSIVE while migrating a plaintext client).
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: ${ROOT_NAMESPACE}
spec:
  mtls:
    mode: STRICT
`;

function examplesYaml(trustDomain: string): string {
  return `# Examples to start from: uncomment, rename, and adapt. Every .yaml file in this directory is
# part of the mesh config; the control plane reloads it on every change.
#
# A workload (one running instance of an application, with its sidecar) and the service it
# belongs to. The WorkloadEntry's address is where other sidecars reach this one; its port
# names map the service ports to the ports this sidecar listens on.
#
# apiVersion: networking.istio.io/v1
# kind: WorkloadEntry
# metadata:
#   name: web-1
#   namespace: shop
# spec:
#   address: 127.0.0.1
#   serviceAccount: web
#   labels: {app: web, version: v1}
#   ports: {http: 18080}
# ---
# apiVersion: networking.istio.io/v1
# kind: ServiceEntry
# metadata:
#   name: web
#   namespace: shop
# spec:
#   hosts: [web.shop.svc.cluster.local]
#   location: MESH_INTERNAL
#   resolution: STATIC
#   ports:
#   - {number: 8080, name: http, protocol: HTTP}
#   workloadSelector:
#     labels: {app: web}
# ---
# With defaultAuthorization DENY, nobody may call web until a policy allows it:
#
# apiVersion: security.istio.io/v1
# kind: AuthorizationPolicy
# metadata:
#   name: web-viewer
#   namespace: shop
# spec:
#   selector:
#     matchLabels: {app: web}
#   action: ALLOW
#   rules:
#   - from:
#     - source:
#         principals: ["${trustDomain}/ns/shop/sa/frontend"]
#     to:
#     - operation:
#         methods: ["GET"]
# ---
# Egress is closed (REGISTRY_ONLY): a host outside the mesh must be registered to be reachable.
#
# apiVersion: networking.istio.io/v1
# kind: ServiceEntry
# metadata:
#   name: httpbin
#   namespace: shop
# spec:
#   hosts: [httpbin.org]
#   location: MESH_EXTERNAL
#   resolution: DNS
#   ports:
#   - {number: 80, name: http, protocol: HTTP}
# ---
# Traffic management: the versions of web as subsets, and 10% of its requests to v2. Check where
# a request would go with
#   trellis route check -f . --from shop/web-1 --host web
#
# apiVersion: networking.istio.io/v1
# kind: DestinationRule
# metadata:
#   name: web
#   namespace: shop
# spec:
#   host: web
#   subsets:
#   - {name: v1, labels: {version: v1}}
#   - {name: v2, labels: {version: v2}}
# ---
# apiVersion: networking.istio.io/v1
# kind: VirtualService
# metadata:
#   name: web
#   namespace: shop
# spec:
#   hosts: [web]
#   http:
#   - route:
#     - destination: {host: web, subset: v1}
#       weight: 90
#     - destination: {host: web, subset: v2}
#       weight: 10
`;
}

function readme(trustDomain: string): string {
  return `# Trellis mesh config

This directory is the configuration of a Trellis mesh (trust domain \`${trustDomain}\`), in Istio's
YAML. \`trellis init\` created it closed by default:

| File | What it sets |
|---|---|
| \`mesh.yaml\` | \`MeshConfig\`: trust domain, root namespace \`${ROOT_NAMESPACE}\`, \`defaultAuthorization: DENY\` (no request is allowed until an AuthorizationPolicy allows it), \`outboundTrafficPolicy: REGISTRY_ONLY\` (egress only to registered services). |
| \`peer-authentication.yaml\` | Mesh-wide STRICT mTLS. |
| \`examples.yaml\` | Commented examples: a WorkloadEntry and its ServiceEntry, an AuthorizationPolicy, an external ServiceEntry, a DestinationRule and a VirtualService. |

Every \`.yaml\` file here (and in subdirectories) is loaded as one set; files and directories
whose names start with \`.\` are skipped.

## Use it

\`\`\`sh
trellis validate -f .                                  # every error with file:line
trellis controlplane --config . --state ../mesh-state  # the control plane; it creates the mesh CA
trellis status                                         # is the config live and valid?
\`\`\`

Then, for each workload (uncomment and adapt \`examples.yaml\` first), a sidecar and its application:

\`\`\`sh
export TRELLIS_JOIN_TOKEN=$(trellis token create --state ../mesh-state --workload shop/web-1)
trellis run --mesh ../mesh-state --workload shop/web-1 --app-port 8080 -- ./my-app --port 8080
\`\`\`

Before you apply a change, ask what the mesh would do:

\`\`\`sh
trellis authz check -f . --to shop/web-1 --from spiffe://${trustDomain}/ns/shop/sa/frontend --path /
trellis route check -f . --from shop/web-1 --host web --path /
\`\`\`

The control plane watches this directory: an edit goes live when the whole set is valid, and is
refused (\`trellis status\` shows why) otherwise. Keep the state directory (the mesh CA's private key)
out of this directory and out of version control.
`;
}
