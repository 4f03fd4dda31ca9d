/**
 * metadata.creationTimestamp for resources written without one: the time the store first saw
 * them, persisted in the state directory so Istio's "oldest wins" rules give the same answer
 * after a restart. A resource that disappears loses its stamp; re-created, it is new.
 */
import { join } from 'node:path';
import type { ConfigSet } from '../api/config-set.js';
import { resourceId, type ResourceMeta } from '../api/resources.js';
import { readFileIfExists, writeFileAtomic } from '../identity/files.js';

export const CREATION_STAMPS_FILE = 'creation-timestamps.json';

type Stamps = Record<string, string>;

export class CreationStamps {
  private readonly path: string;
  private stamps: Stamps;

  constructor(stateDir: string) {
    this.path = join(stateDir, CREATION_STAMPS_FILE);
    this.stamps = load(this.path);
  }

  /** Returns the set with every missing creationTimestamp filled in, and saves new stamps. */
  apply(config: ConfigSet, now: Date): ConfigSet {
    const next: Stamps = {};
    const stamp = <R extends { kind: string; metadata: ResourceMeta }>(resource: R): R => {
      if (resource.metadata.creationTimestamp !== undefined) return resource;
      const id = resourceId(resource.kind, resource.metadata);
      const at = this.stamps[id] ?? now.toISOString();
      next[id] = at;
      return { ...resource, metadata: { ...resource.metadata, creationTimestamp: at } };
    };
    const stamped: ConfigSet = {
      ...config,
      ...(config.meshConfig === undefined ? {} : { meshConfig: stamp(config.meshConfig) }),
      authorizationPolicies: config.authorizationPolicies.map(stamp),
      peerAuthentications: config.peerAuthentications.map(stamp),
      requestAuthentications: config.requestAuthentications.map(stamp),
      workloadEntries: config.workloadEntries.map(stamp),
      serviceEntries: config.serviceEntries.map(stamp),
      virtualServices: config.virtualServices.map(stamp),
      destinationRules: config.destinationRules.map(stamp),
      sidecars: config.sidecars.map(stamp),
      rateLimits: config.rateLimits.map(stamp),
      notHandled: config.notHandled.map(stamp),
    };
    if (JSON.stringify(sorted(next)) !== JSON.stringify(sorted(this.stamps))) {
      writeFileAtomic(this.path, `${JSON.stringify(sorted(next), null, 2)}\n`);
    }
    this.stamps = next;
    return stamped;
  }
}

function load(path: string): Stamps {
  const text = readFileIfExists(path);
  if (text === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && !Number.isNaN(Date.parse(entry[1]))));
  } catch {
    // A damaged file only loses first-seen times; the resources get new ones.
    return {};
  }
}

function sorted(stamps: Stamps): Stamps {
  return Object.fromEntries(Object.entries(stamps).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
