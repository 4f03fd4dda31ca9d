import type { ConfigDiagnostic, FieldPath } from '../diagnostics.js';
import { hostCovers, resolveHost } from '../hosts.js';
import { isDns1123Label } from '../names.js';
import type { ParsedDocument } from '../parse.js';
import { resourceId, type DestinationRuleResource, type HandledResource, type SidecarResource, type VirtualServiceResource } from '../resources.js';
import type { Destination } from '../schemas/traffic.js';
import { ResourceChecker } from './checker.js';
import { exportedTo } from './traffic-values.js';
import { appliesToMesh } from './virtual-service.js';

/**
 * Checks across traffic resources, reported on the resource that is wrong:
 * - a VirtualService destination subset that no visible DestinationRule for that host defines;
 * - two VirtualServices for sidecars claiming the same host where both are visible (Istio keeps
 *   the oldest and silently ignores the other; in a file-based config that is a mistake);
 * - two DestinationRules for the same host in one namespace without workloadSelector;
 * - more than one Sidecar without workloadSelector in one namespace.
 * Hosts are compared after Istio's short-name resolution (`reviews` in namespace `default` is
 * `reviews.default.svc.cluster.local`). The newer resource (by creationTimestamp, else the one
 * loaded later) is the one reported.
 */
export function checkTrafficReferences(all: readonly ParsedDocument[]): ConfigDiagnostic[] {
  const out: ConfigDiagnostic[] = [];
  // A resource defined twice is already an error (TRELLIS_CONFIG_DUPLICATE): check the first only.
  const ids = new Set<string>();
  const documents = all.filter((doc) => {
    const id = resourceId(doc.resource.kind, doc.resource.metadata);
    if (ids.has(id)) return false;
    ids.add(id);
    return true;
  });
  const ofKind = <R extends HandledResource>(kind: R['kind']): { doc: ParsedDocument; resource: R; order: number }[] =>
    documents.flatMap((doc, order) => (doc.handled && doc.resource.kind === kind ? [{ doc, resource: doc.resource as R, order }] : []));
  const virtualServices = ofKind<VirtualServiceResource>('VirtualService');
  const destinationRules = ofKind<DestinationRuleResource>('DestinationRule');
  const sidecars = ofKind<SidecarResource>('Sidecar');

  const report = (doc: ParsedDocument, path: FieldPath, message: string, code: 'TRELLIS_CONFIG_CONFLICT' | 'TRELLIS_CONFIG_UNKNOWN_SUBSET'): void => {
    const checker = new ResourceChecker(doc.source, resourceId(doc.resource.kind, doc.resource.metadata));
    checker.error(path, message, code);
    out.push(...checker.diagnostics);
  };

  // VirtualServices claiming the same host for sidecars.
  const claims: { host: string; visible: ReadonlySet<string> | '*'; entry: (typeof virtualServices)[number]; index: number }[] = [];
  for (const entry of [...virtualServices].sort(olderFirst)) {
    const { resource } = entry;
    if (!appliesToMesh(resource.spec)) continue;
    const namespace = resource.metadata.namespace ?? 'default';
    const visible = exportedTo(namespace, resource.spec.exportTo);
    (resource.spec.hosts ?? []).forEach((raw, index) => {
      const host = resolveHost(raw, namespace);
      const other = claims.find((c) => c.host === host && c.entry !== entry && overlaps(c.visible, visible));
      if (other) {
        const at = other.entry.resource.source;
        report(
          entry.doc,
          ['spec', 'hosts', index],
          `host "${host}" is already routed by VirtualService ${other.entry.resource.metadata.namespace ?? 'default'}/${other.entry.resource.metadata.name} (${at.file}:${at.line}) in the same namespaces: Istio would use only one of them — merge the routes into one VirtualService`,
          'TRELLIS_CONFIG_CONFLICT',
        );
        return;
      }
      claims.push({ host, visible, entry, index });
    });
  }

  // DestinationRules for the same host in one namespace.
  const ruleIndex = destinationRules.map((entry) => {
    const namespace = entry.resource.metadata.namespace ?? 'default';
    const selector = entry.resource.spec.workloadSelector !== undefined;
    return {
      entry,
      namespace,
      host: resolveHost(entry.resource.spec.host, namespace),
      visible: selector ? new Set([namespace]) : exportedTo(namespace, entry.resource.spec.exportTo),
      subsets: (entry.resource.spec.subsets ?? []).map((s) => s.name),
      selector,
    };
  });
  const seenRules: typeof ruleIndex = [];
  for (const rule of [...ruleIndex].sort((a, b) => olderFirst(a.entry, b.entry))) {
    if (!rule.selector) {
      const other = seenRules.find((r) => !r.selector && r.namespace === rule.namespace && r.host === rule.host);
      if (other) {
        const at = other.entry.resource.source;
        report(
          rule.entry.doc,
          ['spec', 'host'],
          `DestinationRule ${other.namespace}/${other.entry.resource.metadata.name} (${at.file}:${at.line}) already applies to "${rule.host}" in namespace ${rule.namespace}: keep one DestinationRule per host (or give one a workloadSelector)`,
          'TRELLIS_CONFIG_CONFLICT',
        );
        continue;
      }
    }
    seenRules.push(rule);
  }

  // Sidecars without workloadSelector: at most one per namespace.
  const defaults = new Map<string, (typeof sidecars)[number]>();
  for (const entry of [...sidecars].sort(olderFirst)) {
    if (entry.resource.spec.workloadSelector !== undefined) continue;
    const namespace = entry.resource.metadata.namespace ?? 'default';
    const other = defaults.get(namespace);
    if (other) {
      const at = other.resource.source;
      report(
        entry.doc,
        ['metadata', 'name'],
        `Sidecar ${namespace}/${other.resource.metadata.name} (${at.file}:${at.line}) already applies to every workload of namespace ${namespace}: a namespace has at most one Sidecar without workloadSelector`,
        'TRELLIS_CONFIG_CONFLICT',
      );
      continue;
    }
    defaults.set(namespace, entry);
  }

  // Subsets named by VirtualService destinations.
  for (const { doc, resource } of virtualServices) {
    const namespace = resource.metadata.namespace ?? 'default';
    const check = (path: FieldPath, destination: Destination): void => {
      // Invalid names are reported by the resource's own checks.
      if (destination.subset === undefined || !isDns1123Label(destination.subset)) return;
      const host = resolveHost(destination.host, namespace);
      const visible = ruleIndex.filter((r) => r.visible === '*' || r.visible.has(namespace));
      let rules = visible.filter((r) => r.host === host);
      if (rules.length === 0) {
        const covering = visible.filter((r) => hostCovers(r.host, host));
        const longest = Math.max(-1, ...covering.map((r) => r.host.length));
        rules = covering.filter((r) => r.host.length === longest);
      }
      if (rules.length === 0) {
        report(doc, [...path, 'subset'], `subset "${destination.subset}" of host "${host}": no DestinationRule for this host (visible in namespace ${namespace}) defines subsets — add one with subset "${destination.subset}"`, 'TRELLIS_CONFIG_UNKNOWN_SUBSET');
        return;
      }
      const subsets = [...new Set(rules.flatMap((r) => r.subsets))];
      if (subsets.includes(destination.subset)) return;
      const names = rules.map((r) => `${r.namespace}/${r.entry.resource.metadata.name}`).join(', ');
      report(
        doc,
        [...path, 'subset'],
        `subset "${destination.subset}" is not defined for host "${host}": DestinationRule ${names} defines ${subsets.length === 0 ? 'no subsets' : subsets.map((s) => `"${s}"`).join(', ')}`,
        'TRELLIS_CONFIG_UNKNOWN_SUBSET',
      );
    };
    resource.spec.http?.forEach((route, i) => {
      const path = ['spec', 'http', i];
      route.route?.forEach((d, j) => check([...path, 'route', j, 'destination'], d.destination));
      if (route.mirror !== undefined) check([...path, 'mirror'], route.mirror);
      route.mirrors?.forEach((m, j) => check([...path, 'mirrors', j, 'destination'], m.destination));
    });
    for (const kind of ['tcp', 'tls'] as const) {
      resource.spec[kind]?.forEach((route, i) => route.route?.forEach((d, j) => check(['spec', kind, i, 'route', j, 'destination'], d.destination)));
    }
  }
  return out;
}

function overlaps(a: ReadonlySet<string> | '*', b: ReadonlySet<string> | '*'): boolean {
  if (a === '*' || b === '*') return true;
  for (const namespace of a) if (b.has(namespace)) return true;
  return false;
}

/** Istio's precedence: the oldest resource wins; without timestamps, the one loaded first. */
function olderFirst(a: { resource: HandledResource; order: number }, b: { resource: HandledResource; order: number }): number {
  const ta = a.resource.metadata.creationTimestamp === undefined ? undefined : Date.parse(a.resource.metadata.creationTimestamp);
  const tb = b.resource.metadata.creationTimestamp === undefined ? undefined : Date.parse(b.resource.metadata.creationTimestamp);
  if (ta !== undefined && tb !== undefined && ta !== tb) return ta - tb;
  return a.order - b.order;
}
