/**
 * What a config version changed, for the audit log: every resource added, removed or modified
 * between two accepted sets, by `Kind namespace/name`. Pure. A resource counts as modified when
 * its apiVersion, metadata or spec changed; moving it within a file (its source position) does not.
 */
import { type ConfigSet, configResources } from '../api/config-set.js';
import { formatDiagnostic } from '../api/diagnostics.js';
import { resourceId } from '../api/resources.js';
import type { ConfigAuditRecord, ConfigChanges } from '../telemetry/audit/record.js';
import type { ConfigStore } from './config-store.js';

/** Longest list of resource IDs or errors in one record; the rest is summarized. */
const MAX_LISTED = 100;

interface Described {
  readonly kind: string;
  readonly apiVersion: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec?: unknown;
}

function resourcesOf(config: ConfigSet | undefined): Map<string, string> {
  const map = new Map<string, string>();
  if (config === undefined) return map;
  for (const resource of configResources(config) as Described[]) {
    map.set(resourceId(resource.kind, resource.metadata), JSON.stringify([resource.apiVersion, resource.metadata, resource.spec ?? null]));
  }
  return map;
}

export function configChanges(previous: ConfigSet | undefined, next: ConfigSet): ConfigChanges {
  const before = resourcesOf(previous);
  const after = resourcesOf(next);
  const added: string[] = [];
  const modified: string[] = [];
  for (const [id, content] of after) {
    const old = before.get(id);
    if (old === undefined) added.push(id);
    else if (old !== content) modified.push(id);
  }
  const removed = [...before.keys()].filter((id) => !after.has(id));
  const sort = (ids: string[]): string[] => ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { added: sort(added), removed: sort(removed), modified: sort(modified) };
}

function capped(items: readonly string[]): string[] {
  return items.length <= MAX_LISTED ? [...items] : [...items.slice(0, MAX_LISTED), `… ${items.length - MAX_LISTED} more`];
}

/**
 * Audits a store's accepted and refused versions: who (the store, e.g. `files:/etc/trellis`),
 * what (resources added, removed, modified; or the errors), which version. The version live at
 * subscription time (if any) is the baseline; the first accepted version lists every resource.
 * Returns the unsubscribe function.
 */
export function recordConfigAudit(store: ConfigStore, record: (record: ConfigAuditRecord) => void): () => void {
  let previous = store.current();
  const actor = (): string => store.status().source;
  const offChange = store.onChange((state) => {
    const changes = configChanges(previous?.config, state.config);
    record({
      kind: 'config',
      time: state.acceptedAt.toISOString(),
      event: 'changed',
      actor: actor(),
      version: state.version,
      ...(previous === undefined ? {} : { previousVersion: previous.version }),
      changes: { added: capped(changes.added), removed: capped(changes.removed), modified: capped(changes.modified) },
    });
    previous = state;
  });
  const offRefused = store.onRefused?.((refusal) => {
    record({
      kind: 'config',
      time: refusal.at.toISOString(),
      event: 'refused',
      actor: actor(),
      version: refusal.version,
      ...(refusal.liveVersion === undefined ? {} : { previousVersion: refusal.liveVersion }),
      errors: capped(refusal.errors.filter((e) => e.severity === 'error').map(formatDiagnostic)),
      reason: refusal.liveVersion === undefined ? 'no config is live yet' : `version ${refusal.liveVersion} stays live`,
    });
  });
  return () => {
    offChange();
    offRefused?.();
  };
}
